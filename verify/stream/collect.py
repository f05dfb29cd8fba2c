"""What a data pipeline really produced: its batches, decoded into originals, outputs and
selections, one record per batch, for the checks of `verify.stream.pipeline_checks`.

A pipeline is a function `fn(*, epoch, rank, world_size)` returning an iterable of batches:
mappings with `input_ids` and `labels`, each `[batch, seq]` (torch or JAX tensors, NumPy arrays
or nested lists). The harness sees only those two: a position is *selected* when its label is
not the ignore value, and the original token is the label there and the input elsewhere (an
unselected position shows its original). The ignore value is -100 (Hugging Face,
`CrossEntropyLoss`) as soon as any batch of the run holds a -100 label, else `padding_token`
(the contract's `y`); under -100 a selected padding position is visible (its label is
`padding_token`), under the contract's convention it cannot be told from an unselected one.

`collect` calls the pipeline once per `(epoch, rank)`, epochs outermost. Under torchrun the
ranks are real processes: each rank calls the pipeline for its own rank and the records are
gathered to rank 0 (`torch.distributed.gather_object`), so rank 0 checks the stream all ranks
produced together, as one process checks a simulated world.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from mlm_ref.config import MaskingConfig

from ..cli import progress as progress_bar
from ..engine import guard

__all__ = ["Batch", "Stream", "Rows", "collect", "decode", "HF_IGNORE", "OPTIONAL"]

HF_IGNORE = -100
# keys a batch may carry besides input_ids and labels, and what the gate checks with them
OPTIONAL = ("attention_mask", "token_type_ids", "word_ids", "index")


@dataclasses.dataclass
class Batch:
    """One batch as the pipeline produced it, decoded (arrays `[batch, seq]`)."""

    epoch: int
    rank: int
    index: int                 # the batch's place in its (epoch, rank) stream
    input_ids: np.ndarray      # int64, what the model sees
    labels: np.ndarray         # int64, as given
    # the optional keys the batch carried (`OPTIONAL`): [batch, seq], `index` [batch]
    fields: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Stream:
    """Everything a run saw, and the problems met while seeing it."""

    batches: list[Batch]
    epochs: int
    world_size: int
    problems: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    ignore: int | None = None  # the label meaning "not selected" (None: padding_token)

    def problem(self, check: str, message: str) -> None:
        self.problems.setdefault(check, []).append(message)

    @property
    def tokens(self) -> int:
        return sum(b.input_ids.size for b in self.batches)


def _array(value, what: str) -> np.ndarray:
    if hasattr(value, "detach"):                      # torch
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype == bool:                               # a boolean attention mask, say
        a = a.astype(np.int64)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise TypeError(f"{what} must hold integers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{what} must be [batch, seq], got shape {a.shape}")
    return a.astype(np.int64)


def decode(batch, epoch: int, rank: int, index: int) -> Batch:
    """One batch of the pipeline as a `Batch`.

    Raises:
        TypeError: not a mapping, or ids that are not integers.
        KeyError: no `input_ids` or no `labels`.
        ValueError: arrays that are not `[batch, seq]` or differ in shape.
    """
    if not isinstance(batch, Mapping):
        raise TypeError(f"a batch must be a mapping with input_ids and labels, got "
                        f"{type(batch).__name__}")
    for key in ("input_ids", "labels"):
        if key not in batch:
            raise KeyError(f"a batch has no {key!r} (keys: {', '.join(map(str, batch))})")
    ids, labels = _array(batch["input_ids"], "input_ids"), _array(batch["labels"], "labels")
    if ids.shape != labels.shape:
        raise ValueError(f"input_ids {ids.shape} and labels {labels.shape} differ in shape")
    fields = {}
    for key in OPTIONAL:
        if key in batch and batch[key] is not None:
            value = batch[key]
            if key == "index":     # one example index per row
                if hasattr(value, "detach"):                  # torch
                    value = value.detach().cpu().numpy()
                value = _array(np.asarray(value).reshape(-1, 1), key)[:, 0]
                if value.shape != ids.shape[:1]:
                    raise ValueError(f"index has {value.shape[0]} entries, the batch "
                                     f"{ids.shape[0]} rows")
            else:
                value = _array(value, key)
                if value.shape != ids.shape:
                    raise ValueError(f"{key} {value.shape} and input_ids {ids.shape} differ "
                                     f"in shape")
            fields[key] = value
    return Batch(epoch, rank, index, ids, labels, fields)


def collect(fn, *, epochs: int, world_size: int, ranks=None, max_batches: int | None = None,
            progress: bool = False, name: str = "pipeline",
            timeout: float | None = None, seed: int | None = None) -> Stream:
    """Run the pipeline for every epoch and rank and keep what it produced.

    Args:
        fn: `fn(*, epoch, rank, world_size)` -> iterable of batches.
        epochs: epochs to run, 0 .. epochs-1.
        world_size: ranks to simulate in this process (ignored with `ranks`).
        ranks: `(rank, world)` of a torchrun process: this process runs its own rank and the
            records are gathered to rank 0 (the others get an empty `Stream`).
        max_batches: stop each `(epoch, rank)` stream after this many batches.
        progress: a progress bar (batches).
        name: the progress bar's label.
        timeout: seconds each call into the pipeline (the call itself, each next batch) may
            take; None: no limit.
        seed: passed to the pipeline as `seed=` when not None (the caller checked that the
            pipeline takes it).

    A pipeline that raises, exits, hangs past `timeout` (`verify.engine.guard`), or yields
    something that is not a batch, stops that `(epoch, rank)` stream; the problem is recorded
    under "pipeline runs without error" or "batches are input_ids and labels [batch, seq]",
    never raised.
    """
    mine = range(world_size) if ranks is None else [ranks[0]]
    world = world_size if ranks is None else ranks[1]
    stream = Stream([], epochs, world)
    bar = progress_bar(None, unit="batch", desc=name, enabled=progress)
    try:
        for epoch in range(epochs):
            for rank in mine:
                _one_stream(fn, stream, (epoch, rank, world), max_batches, bar, timeout, seed)
    finally:
        bar.close()
    if ranks is not None:
        stream = _gather(stream, ranks)
    if any((b.labels == HF_IGNORE).any() for b in stream.batches):
        stream.ignore = HF_IGNORE
    return stream


def _one_stream(fn, stream, at: tuple[int, int, int], max_batches, bar, timeout,
                seed) -> None:
    """The batches of one `(epoch, rank, world)`, every call into the pipeline guarded."""
    epoch, rank, world = at
    where = f"epoch {epoch}, rank {rank}"
    extra = {} if seed is None else {"seed": seed}
    shown = "".join(f", {k}={v}" for k, v in extra.items())
    call = f"pipeline(epoch={epoch}, rank={rank}, world_size={world}{shown})"
    try:
        batches = guard.run(fn, what=call, timeout=timeout, epoch=epoch, rank=rank,
                            world_size=world, **extra)
        for index, batch in enumerate(guard.iterate(batches, what=call, timeout=timeout)):
            if max_batches is not None and index >= max_batches:
                break
            try:
                stream.batches.append(decode(batch, epoch, rank, index))
            except (TypeError, KeyError, ValueError) as e:
                stream.problem("batches are input_ids and labels [batch, seq]",
                               f"{where}, batch {index}: {e}")
                return
            bar.update(1)
    except guard.UserCodeError as e:  # it exited, hung or raised a BaseException
        stream.problem("pipeline runs without error", " ".join(str(e).split())[:300])
    except Exception as e:  # noqa: BLE001 (a pipeline that raises fails a check, not the run)
        message = " ".join(str(e).split())[:300]            # one line, whatever it raised
        stream.problem("pipeline runs without error", f"{where}: {type(e).__name__}: {message}")


def _gather(stream: Stream, ranks) -> Stream:
    import torch.distributed as dist
    rank, world = ranks
    parts = [None] * world if rank == 0 else None
    dist.gather_object((stream.batches, stream.problems), parts, dst=0)
    if rank != 0:
        return Stream([], stream.epochs, world)
    merged = Stream([], stream.epochs, world)
    for batches, problems in parts:
        merged.batches += batches
        for check, messages in problems.items():
            merged.problems.setdefault(check, []).extend(messages)
    merged.batches.sort(key=lambda b: (b.epoch, b.rank, b.index))
    return merged


def selections(stream: Stream, config: MaskingConfig):
    """Per batch: `(original, output, selected)`, arrays `[batch, seq]`."""
    ignore = config.padding_token if stream.ignore is None else stream.ignore
    for b in stream.batches:
        sel = b.labels != ignore
        yield np.where(sel, b.labels, b.input_ids), b.input_ids, sel


class Rows:
    """The stream's rows, padded to the longest, `[rows, seq]`: originals, outputs, selected,
    eligible; and where each batch's rows lie."""

    def __init__(self, stream: Stream, config: MaskingConfig):
        batches = stream.batches
        self.seq = max((b.input_ids.shape[1] for b in batches), default=0)
        n = sum(b.input_ids.shape[0] for b in batches)
        pad = config.padding_token
        self.orig = np.full((n, self.seq), pad, np.int64)
        self.out = np.full((n, self.seq), pad, np.int64)
        self.labels = np.full((n, self.seq), pad, np.int64)
        self.sel = np.zeros((n, self.seq), bool)
        self.start, self.where = [], {}
        self.batch_of = np.repeat(np.arange(len(batches)),
                                  [b.input_ids.shape[0] for b in batches]).astype(np.int64)
        self.batches = batches
        ignore = pad if stream.ignore is None else stream.ignore
        r = 0
        for i, b in enumerate(batches):
            rows, s = b.input_ids.shape
            sel = b.labels != ignore
            self.orig[r:r + rows, :s] = np.where(sel, b.labels, b.input_ids)
            self.out[r:r + rows, :s] = b.input_ids
            self.labels[r:r + rows, :s] = b.labels
            self.sel[r:r + rows, :s] = sel
            self.start.append((r, rows))
            self.where[(b.epoch, b.rank, b.index)] = i
            r += rows
        special = np.array(sorted(config.ineligible_tokens), np.int64)
        self.eligible = ~np.isin(self.orig, special)
        self.ignore = ignore
        self.epoch = np.repeat([b.epoch for b in batches],
                               [b.input_ids.shape[0] for b in batches]).astype(np.int64)
        # the example a row holds: its `index` when every batch carries one, else its
        # original tokens (the same tokens are the same example)
        keys = np.ascontiguousarray(self.orig).view(np.dtype((np.void, 8 * self.seq))).ravel()
        self.fingerprint = np.unique(keys, return_inverse=True)[1].ravel() if n else \
            np.zeros(0, np.int64)
        self.indexed = bool(batches) and all("index" in b.fields for b in batches)
        self.example = np.unique(np.concatenate([b.fields["index"] for b in batches]),
                                 return_inverse=True)[1].ravel() if self.indexed and n \
            else self.fingerprint

    def locate(self, row: int) -> str:
        """Where a row of the stream came from: `epoch e, rank r, batch k, row j`."""
        b = self.batches[int(self.batch_of[row])]
        return f"epoch {b.epoch}, rank {b.rank}, batch {b.index}, row " \
               f"{int(row - self.start[int(self.batch_of[row])][0])}"

    def sighting(self) -> np.ndarray:
        """An id per row of (example, epoch): a sampler may show an example twice in one
        epoch (`DistributedSampler` pads the last batch so), and stateless streams mask both
        sightings alike, by design."""
        return self.example * (int(self.epoch.max(initial=0)) + 1) + self.epoch

    def slot_pairs(self, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of batches `first` and `second`, aligned row by row."""
        (a, na), (b, nb) = self.start[first], self.start[second]
        k = np.arange(min(na, nb))
        return a + k, b + k
