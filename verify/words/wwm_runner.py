"""The whole-word-masking (WWM) gate: run whole-word maskers, decide every check under one Holm
budget, report as the token-level harness does.

`check_wwm_maskers(["numpy", "torch", "jax"], config, tokens=2e7)` feeds each masker
`PairWords` batches (or any `source` with the same interface, such as real text from
`verify.words.text_words`), the maskers side by side, call by call, so that each input is made
and laid out (`WordLayout`) once for all of them; counts on the host (`wwm_counts`), builds the
exact invariants and statistical checks (`wwm_checks`) and returns a `WWMReport`: the same
table, JSON and verdicts as `verify.check_maskers`, with the WWM checks. Call 0 is made twice
with the same seed (the determinism check); a masker that raises stops its run there (the
others go on) and fails "masker runs without error".
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine.frameworks import torch_on_one_core
from ..engine import DEFAULT_ALPHA
from ..engine import guard
from ..engine.resolve import by_config, distinct_names
from ..engine.primitives import holm
from ..token.verdicts import Report
from ..engine.arguments import check_run_arguments, check_testable, check_timeout, derive_seed
from .pair_words import PAIR_SOURCE, PairWords
from .wwm_adapters import WordAdapter, resolve_wwm
from .wwm_protocol import WWM_LAYOUTS
from .wwm_checks import wwm_checks, wwm_invariant_checks
from .wwm_counts import OUTCOMES, WordCounts
from .word_batches import WordLayout

__all__ = ["check_wwm_maskers", "run_wwm_masker", "run_wwm_side_by_side", "WWMReport",
           "WWM_CHUNK"]

WWM_CHUNK = 1 << 17   # tokens per call
SEQ_LEN = 128         # as the token-level gate's inputs


@dataclasses.dataclass
class WWMReport(Report):
    """A `Report` of the WWM gate (`counts` hold `WordCounts`)."""

    source: str = PAIR_SOURCE
    gate: str = "wwm"

    @property
    def inconclusive(self) -> list[str]:
        """Maskers that showed no eligible or no selected word (where some should be)."""
        out = []
        for name, h in self.counts.items():
            errors = h.host_problems.get("masker runs without error")
            if h.eligible_words == 0 or errors or (
                    self.config.masking_prob > 0 and h.selected_words == 0):
                out.append(name)
        return [n for n in out if not any(c.failed for c in self.checks if c.subject == n)]

    def __str__(self) -> str:
        return f"whole-word masking gate, inputs: {self.source}\n" + super().__str__()

    def to_dict(self) -> dict:
        d = Report.to_dict(dataclasses.replace(self, counts={}))
        d["mode"], d["source"], d["runs"] = "wwm", self.source, self.runs
        d["effective"] = {name: _effective(self.config, h) for name, h in self.counts.items()}
        return d


def _effective(cfg: MaskingConfig, h: WordCounts) -> dict:
    """Observed word selection rate and word outcome shares beside the contract's."""
    n_sel = int(h.outcomes.sum())
    return {"word selection": {"observed": h.selected_words / max(h.eligible_words, 1),
                               "expected": cfg.masking_prob, "n": h.eligible_words},
            "word outcomes": {o: {"observed": float(h.outcomes[:, i].sum() / max(n_sel, 1)),
                                  "expected": float(h.expected[:, i].sum() / max(n_sel, 1))}
                              for i, o in enumerate(OUTCOMES)},
            "selection by word length": (h.by_length[:, 1] / np.maximum(
                h.by_length.sum(1), 1)).tolist()}


def _shape(tokens: int, chunk: int) -> tuple[int, int, int]:
    batch = max(2, min(chunk, tokens) // SEQ_LEN)
    return SEQ_LEN, batch, max(2, -(-tokens // (SEQ_LEN * batch)))


def run_wwm_masker(adapter: WordAdapter, *, tokens: int, seed: int, source=None,
                   chunk: int | None = None, timeout: float | None = None) -> WordCounts:
    """Feed `adapter` batches totalling at least `tokens`; its `WordCounts`.

    Args:
        source: `source(call) -> WordBatch` of shape `[SEQ_LEN, batch]` and with a `batch`
            attribute; default `PairWords` of this config, seed and size.
        timeout: seconds one masker call may take (None: no limit); an overrun fails the
            check "masker runs without error" (`verify.engine.guard`).
    """
    return run_wwm_side_by_side([adapter], tokens=tokens, seed=seed, source=source,
                                chunk=chunk, timeout=timeout)[0]


def run_wwm_side_by_side(adapters: list, *, tokens: int, seed: int, source=None,
                         chunk: int | None = None, timeout: float | None = None) -> list:
    """`run_wwm_masker` for several adapters of one config, call by call: each input is made
    once and its `WordLayout` built once for all of them (every masker gets the inputs and
    seeds it would get alone; a masker that fails stops, the others go on). Their
    `WordCounts`, in order; `seconds` is each masker's own time (its calls and counting)."""
    cfg = adapters[0].config
    if source is None:
        seq_len, batch, calls = _shape(tokens, chunk or WWM_CHUNK)
        source = PairWords(cfg, seq_len, batch, seed)
    else:
        seq_len, batch = source.seq_len, source.batch
        calls = max(2, -(-tokens // (seq_len * batch)))
    counts = [WordCounts(cfg, seq_len, batch, calls) for _ in adapters]
    live = list(range(len(adapters)))
    layout = None
    with torch_on_one_core():  # a torch masker's calls too: they stalled on a busy machine
        for t in range(calls):
            if not live:
                break
            b = source(t)
            layout = WordLayout.reuse(layout, b.x, b.word_ids, cfg)
            for i in list(live):
                start = time.perf_counter()
                if not _step(adapters[i], counts[i], b, derive_seed(
                        seed, "wwm masker:" + adapters[i].name, t), t, timeout, layout):
                    live.remove(i)
                counts[i].seconds += time.perf_counter() - start
    for c in counts:
        c.calls = calls
    return counts


def _step(adapter: WordAdapter, counts: WordCounts, b, s: int, t: int,
          timeout: float | None, layout: WordLayout) -> bool:
    """Call `adapter` on batch `b` with seed `s` (twice for call 0: the determinism check) and
    count the call; False when the masker failed (recorded in `counts`: its run stops)."""
    try:
        x_after, w_after, out, y, problems = _call(adapter, b, s, t, timeout)
        if not problems and t == 0:
            out, y = np.array(out, copy=True), np.array(y, copy=True)  # the buffers may be reused
            _, _, out2, y2, _ = _call(adapter, b, s, t, timeout)
            if not (np.array_equal(out, out2) and np.array_equal(y, y2)):
                counts.problem("same seed gives same output", "two calls with the same "
                               "seed and input gave different outputs")
    except Exception as e:  # noqa: BLE001 (a masker that raises fails a check)
        counts.problem("masker runs without error", guard.reason(e))
        return False
    if problems:
        for p in problems:
            counts.problem("outputs keep shape, dtype and device", p)
        return False
    counts.update(b.x, b.word_ids, x_after, w_after, out, y, layout=layout)
    return True


def _call(adapter: WordAdapter, batch, seed: int, index: int, timeout: float | None):
    """One masker call under the guard (`verify.engine.guard.run`)."""
    return guard.run(adapter, batch, seed, what=f"the masker (call {index})", timeout=timeout,
                     name=adapter.name, tokens=index * batch.x.size)


def _laid_out(adapters: list, layout: str) -> list:
    """Copies of `adapters` fed in `layout` (the caller's adapters stay as they were)."""
    if layout not in WWM_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(WWM_LAYOUTS)}, got {layout!r}")
    ours = [a.name for a in adapters if a.backend is not None]
    if layout != "seq-batch" and ours:
        raise ValueError(f"--layout {layout} is for outside maskers; {', '.join(ours)} "
                         f"take [seq_len, batch]")
    out = [copy.copy(a) for a in adapters]
    for a in out:
        a.layout = layout
    return out


def check_wwm_maskers(maskers, config: MaskingConfig, *, tokens: int = 1 << 20, seed: int = 0,
                      alpha: float = DEFAULT_ALPHA, source=None, chunk: int | None = None,
                      skipped: dict | None = None, source_name: str = PAIR_SOURCE,
                      layout: str = "seq-batch", timeout: float | None = None) -> WWMReport:
    """Check whole-word maskers against the WWM contract; one Holm budget for all.

    Args:
        maskers: `numpy`, `torch`, `jax`, `hf-wwm`, `MODULE:ATTR` (a factory) or callables
            `fn(x, word_ids=w, seed=s)` (`verify.words.wwm_adapters`).
        config: the parameters to check against.
        tokens: tokens fed to each masker (rounded up to whole calls).
        seed: seeds the inputs and every masker call.
        alpha: family-wise false-alarm probability of the run.
        source: the batches (default `PairWords`); `source_name` names them in the report.
        chunk: tokens per call of the synthetic source (default 131,072).
        skipped: `{name: reason}` of maskers left out, listed in the report.
        layout: `seq-batch`, or `batch-seq` to feed outside maskers `[batch, seq_len]`
            (`wwm_protocol`); our backends take `[seq_len, batch]` only.
        timeout: seconds one masker call may take (None: no limit; `verify.engine.guard`).

    Raises:
        TypeError, ValueError: a bad argument, before any masker runs.
    """
    tokens, seed, alpha = check_run_arguments(tokens=tokens, seed=seed, alpha=alpha)
    if not isinstance(config, MaskingConfig):
        raise TypeError(f"config must be a MaskingConfig, got {type(config).__name__}")
    check_testable(config)
    check_timeout(timeout)
    adapters = _laid_out(distinct_names([resolve_wwm(m, config, timeout=timeout)
                                         for m in maskers]), layout)
    results = {}
    for group in by_config(adapters):
        ran = run_wwm_side_by_side(group, tokens=tokens, seed=seed, source=source, chunk=chunk,
                                   timeout=timeout)
        results.update((a.name, c) for a, c in zip(group, ran))
    results = {a.name: results[a.name] for a in adapters}
    checks = []
    for name, h in results.items():
        checks += wwm_invariant_checks(h, name) + wwm_checks(h, config, name)
    holm(checks, alpha)
    return WWMReport(config=config, alpha=alpha, seed=seed, tokens=tokens, device="cpu",
                     checks=checks, skipped=dict(skipped or {}), counts=results,
                     source=source_name)

