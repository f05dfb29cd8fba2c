"""A `DataLoader` collate function that masks from stateless streams (docs/pipelines.md).

`MLMCollator` pads tokenized examples to a `[batch, seq]` batch and masks each example with the
key `mlm_ref.streams` derives from `(seed, purpose, epoch, index)`, so an example's mask is the
same whatever the worker count, batch size, world size, `persistent_workers` or resumption. It
stands in for `transformers.DataCollatorForLanguageModeling` (labels -100 where not selected;
`MLMCollator.from_tokenizer` takes its parameters), and `EpochCallback` sets the epoch from a
`transformers.Trainer`. The examples are checked and padded by `mlm_ref.examples.collect`,
the same code as the JAX collator's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mlm_ref.config import MaskerBase
from mlm_ref.examples import check_epoch, collect
from mlm_ref.hf import WordStarts, params_from_tokenizer
from mlm_ref.validation import check_no_compat

from .streams import example_keys, mask_examples, mask_rows
from .wwm import mask_word_rows

__all__ = ["MLMCollator", "LABEL_CONVENTIONS", "EpochCallback", "WithIndex"]

LABEL_CONVENTIONS = ("hf", "padding_token")


class MLMCollator(MaskerBase):
    """Pad and mask a list of examples, each by its own stateless key.

    Args:
        seed: the run's seed (an int seed or key data, the rule of `mlm_ref.keys`).
        labels: `"hf"`: -100 where a position is not selected (what Hugging Face models and
            `CrossEntropyLoss` ignore by default); `"padding_token"`: the contract's `y`.
        purpose: the stream, `"mlm"` (default), `"nsp"`, `"eval"` or a uint32 tag.
        pad_to_multiple_of: round the padded length up to a multiple of this.
        word_starts: a `mlm_ref.hf.WordStarts`: whole-word masking of every batch, words read
            from the ids where the examples carry no `word_ids` (`from_tokenizer` sets it).
        **params: the masking parameters of `mlm_ref.config.MaskerBase`.

    Call it on examples, mappings with `input_ids` (ints in a list, tuple, array or 1-d
    tensor) and `index` (the example's index in the dataset), and optionally
    `attention_mask` (kept, and checked against the padding), `special_tokens_mask` (flagged
    tokens are never selected), `token_type_ids`, `word_ids` (ints, -1 or `None` outside
    words: then whole words are masked, each row exactly as `mlm_torch.wwm.mask_words_exact`
    masks it alone), `epoch` (the example's own, which wins) and any other key (passed
    through: `mlm_ref.examples`). It returns tensors: int64 `[batch, seq]` `input_ids`
    (masked), `attention_mask`, `labels`, `token_type_ids` when the examples have them, and
    the other keys. `set_epoch(epoch)` selects the epoch's masks; it is kept in shared
    memory, so `DataLoader` workers (persistent ones included) see it, as long as it is
    called before the epoch's iterator is created (as with `DistributedSampler.set_epoch`).
    Bad input raises `TypeError` or `ValueError` naming the example and the key.
    """

    def __init__(self, *, seed, labels: str = "hf", purpose="mlm",
                 pad_to_multiple_of: int | None = None, word_starts: WordStarts | None = None,
                 **params):
        super().__init__(**params)
        if labels not in LABEL_CONVENTIONS:
            raise ValueError(f"labels must be one of {LABEL_CONVENTIONS}, got {labels!r}")
        if pad_to_multiple_of is not None and (isinstance(pad_to_multiple_of, bool) or
                                               not isinstance(pad_to_multiple_of, int) or
                                               pad_to_multiple_of < 1):
            raise ValueError(f"pad_to_multiple_of must be a positive int, "
                             f"got {pad_to_multiple_of!r}")
        example_keys(seed, 0, [], purpose)                 # check seed and purpose now
        self.seed, self.labels, self.purpose = seed, labels, purpose
        self.pad_to_multiple_of, self.word_starts = pad_to_multiple_of, word_starts
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    @classmethod
    def from_tokenizer(cls, tokenizer, *, seed, mlm_probability: float = 0.15,
                       mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                       pad_to_multiple_of: int | None = None, whole_word_mask: bool = False,
                       **kwargs) -> "MLMCollator":
        """A collator that means what `DataCollatorForLanguageModeling(tokenizer, ...)` means.

        Args:
            tokenizer: a `transformers` tokenizer: its padding and mask tokens, its special ids
                (never masked) and its length (the range of random ids).
            seed: the run's seed.
            mlm_probability, mask_replace_prob, random_replace_prob: Hugging Face's meanings
                (shares of the selected tokens), converted by `mlm_ref.hf`.
            pad_to_multiple_of: as Hugging Face's.
            whole_word_mask: mask whole words, read from each example's `word_ids` or, without
                them, from the vocabulary's word markers (`##`, `▁`, `Ġ`).
            **kwargs: the other arguments of `MLMCollator` (`labels`, `purpose`, ...).
        """
        params = params_from_tokenizer(tokenizer, mlm_probability=mlm_probability,
                                       mask_replace_prob=mask_replace_prob,
                                       random_replace_prob=random_replace_prob)
        return cls(seed=seed, pad_to_multiple_of=pad_to_multiple_of,
                   word_starts=WordStarts(tokenizer) if whole_word_mask else None,
                   **params, **kwargs)

    @property
    def epoch(self) -> int:
        """The epoch whose masks the next batches get."""
        return int(self._epoch[0])

    def set_epoch(self, epoch) -> None:
        """Use `epoch`'s masks from now on (in the workers too); an integral float (`Trainer`'s
        `state.epoch`, 1.0) is accepted, 1.5 is not."""
        self._epoch[0] = check_epoch(epoch)

    def __call__(self, examples) -> dict[str, torch.Tensor]:
        c = collect(examples, self.config.padding_token,
                    pad_to_multiple_of=self.pad_to_multiple_of)
        x = torch.from_numpy(c.input_ids)                                # [batch, seq]
        words = c.word_ids
        if words is None and self.word_starts is not None:
            words = self.word_starts.word_ids(c.input_ids, self._in_word(c))
        if words is not None:
            x_masked, y = mask_word_rows(x, torch.from_numpy(words),
                                         self._keys(c.index, c.epochs), self.config)
        elif c.epochs is None:                          # the common case: one epoch, ids checked
            check_no_compat(self.config)
            x_masked, y = mask_examples(x, self.seed, self.epoch, c.index, self.config,
                                        self.purpose)
        else:
            check_no_compat(self.config)
            x_masked, y = mask_rows(x, self._keys(c.index, c.epochs), self.config,
                                    check_ids=False)
        if c.special is not None and c.special.any():    # flagged tokens: never selected
            special = torch.from_numpy(c.special)
            x_masked = torch.where(special, x, x_masked)
            y = y.masked_fill_(special, self.config.padding_token)
        if self.labels == "hf":
            y = y.masked_fill_(y == self.config.padding_token, -100)
        batch = {"input_ids": x_masked, "attention_mask": torch.from_numpy(c.attention_mask),
                 "labels": y}
        if c.token_type_ids is not None:
            batch["token_type_ids"] = torch.from_numpy(c.token_type_ids)
        for name, value in c.extra.items():
            batch[name] = _as_tensor(value)
        return batch

    def _keys(self, index: np.ndarray, epochs: np.ndarray | None) -> torch.Tensor:
        """Each example's key, int64 `[batch, 2]`: its own epoch if it has one, else the
        collator's; one vectorised derivation per distinct epoch."""
        if epochs is None:
            return example_keys(self.seed, self.epoch, index, self.purpose)
        keys = torch.empty(len(index), 2, dtype=torch.int64)
        for epoch in np.unique(epochs):
            rows = np.flatnonzero(epochs == epoch)
            keys[torch.from_numpy(rows)] = example_keys(self.seed, int(epoch), index[rows],
                                                        self.purpose)
        return keys

    def _in_word(self, c) -> np.ndarray:
        """Where a word can be: not padding, not a never-masked id, not flagged special."""
        x = c.input_ids
        out = (c.attention_mask != 0) & (x != self.config.padding_token)
        out &= ~np.isin(x, np.asarray(self.config.no_mask_tokens, dtype=np.int64))
        return out if c.special is None else out & ~c.special

    def row_keys(self, examples: list[dict]) -> torch.Tensor:
        """Each example's key, int64 [batch, 2]: its own `epoch` if it has one, else the
        collator's."""
        c = collect(examples, self.config.padding_token)
        return self._keys(c.index, c.epochs)

    def __repr__(self) -> str:
        return (f"mlm_torch.collate.MLMCollator({self.config}, seed={self.seed!r}, "
                f"labels={self.labels!r}, purpose={self.purpose!r}, epoch={self.epoch})")


def _as_tensor(value):
    """A passed-through key as a tensor (float64 as float32, as `torch.tensor` makes Python
    floats), or the list of values left alone."""
    if not isinstance(value, np.ndarray):
        return value
    return torch.from_numpy(value.astype(np.float32) if value.dtype == np.float64 else value)


class WithIndex(torch.utils.data.Dataset):
    """A map-style dataset whose examples carry their `index`: `{**dataset[i], "index": i}`.

    For datasets whose examples lack it (a `datasets.Dataset` can also add it with
    `dataset.map(lambda e, i: {"index": i}, with_indices=True)`); `Trainer` still needs
    `remove_unused_columns=False` for the key to reach the collator.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        return {**self.dataset[i], "index": int(i)}


def epoch_of(state_epoch) -> int:
    """The epoch that begins when `Trainer`'s `state.epoch` reads `state_epoch`: the whole
    number it is (1.0 after one epoch, up to rounding), or the epoch a resumed fraction lies in
    (1.5 resumes epoch 1)."""
    value = float(state_epoch or 0)
    nearest = round(value)
    return int(nearest if abs(value - nearest) < 1e-6 else math.floor(value))


def EpochCallback(collator):  # noqa: N802 (a factory that reads as the class it makes)
    """A `transformers.TrainerCallback` that calls `collator.set_epoch` at each epoch's start.

    `Trainer(..., data_collator=collator, callbacks=[EpochCallback(collator)])`. transformers
    is imported here, not with this module.
    """
    from transformers import TrainerCallback

    class _SetEpoch(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            collator.set_epoch(epoch_of(state.epoch))

    return _SetEpoch()
