"""Whole-word pipelines: a stream whose batches carry `word_ids` (or a run with `wwm=True`) is
gated with the whole-word gate's counting and checks (`wwm_counts`, `wwm_checks`), not the
token-level ones, whose laws (one draw per position) a correct whole-word masker breaks.

`word_ids` are int `[batch, seq]` as `mlm_ref.words` makes them: equal non-negative ids along a
row form a word, -1 (or any negative id) is outside words ([CLS], [SEP], padding); what
`MLMCollator` takes per example and `mlm_bert`'s batches carry.

The pipeline's own checks (repeats, shared selections) run on a *word view* of the rows: one
position per word, its first piece, eligible when the whole word is, selected when the word is.
Under the whole-word contract those are independent Bernoulli(p) draws, one per word, so the
birthday bound (first-piece outcomes have the token-level probabilities) and the
hypergeometric shared-selection counts hold exactly as at token level.
"""

from __future__ import annotations

import copy

import numpy as np

from mlm_ref.config import MaskingConfig

from ..token.invariants import counted_invariants
from .collect import Rows, Stream
from ..engine.primitives import Check
from ..words.word_batches import word_starts
from ..words.wwm_checks import wwm_checks
from ..words.wwm_counts import WWM_INVARIANTS, WordCounts

__all__ = ["stream_words", "word_view", "word_counts", "word_checks", "WORD_INVARIANTS"]

# the whole-word invariants a pipeline's stream can break (the rest hold by construction: the
# gate recovers originals from the labels and never hands the pipeline an input)
WORD_INVARIANTS = ("positions outside words never selected", "ineligible words never selected",
                   "words all-or-nothing")


def stream_words(stream: Stream, rows: Rows) -> np.ndarray | None:
    """Every row's word ids `[rows, seq]` (-1 beyond a batch's width), or None when some batch
    carries none."""
    if not stream.batches or not all("word_ids" in b.fields for b in stream.batches):
        return None
    out = np.full(rows.orig.shape, -1, np.int64)
    for i, b in enumerate(stream.batches):
        start, n = rows.start[i]
        w = b.fields["word_ids"]
        out[start:start + n, :w.shape[1]] = w
    return out


def _word_tables(rows: Rows, words: np.ndarray):
    """Per position: is it a word's first piece, is its word eligible, is its word selected."""
    start = word_starts(words.T).T                                     # [rows, seq]
    run = np.cumsum(start.ravel()) - 1
    inside = (words >= 0).ravel()
    n_runs = int(start.sum())
    bad = np.bincount(run[inside], (~rows.eligible).ravel()[inside], n_runs) > 0
    chosen = np.bincount(run[inside], rows.sel.ravel()[inside], n_runs) > 0
    word_ok = np.zeros(inside.size, bool)
    word_sel = np.zeros(inside.size, bool)
    word_ok[inside], word_sel[inside] = ~bad[run[inside]], chosen[run[inside]]
    return start, word_ok.reshape(words.shape), word_sel.reshape(words.shape)


def word_view(rows: Rows, words: np.ndarray) -> Rows:
    """The rows with one position per word (its first piece): eligible when the word is,
    selected when any piece of it is (all-or-nothing is an exact check of its own)."""
    start, ok, chosen = _word_tables(rows, words)
    view = copy.copy(rows)
    view.eligible = start & ok
    view.sel = start & ok & chosen
    return view


def word_counts(stream: Stream, rows: Rows, words: np.ndarray, config: MaskingConfig):
    """The stream counted as the whole-word gate counts a masker's calls: one call per batch,
    every batch padded to the largest (padding lies outside words)."""
    seq = max(rows.seq, 2)
    width = max([n for _, n in rows.start] + [2])
    calls = max(2, len(rows.start))
    h = WordCounts(config, seq, width, calls)
    pad = config.padding_token
    for c in range(calls):
        x = np.full((width, seq), pad, np.int64)
        out, y, w = x.copy(), x.copy(), np.full((width, seq), -1, np.int64)
        if c < len(rows.start):
            start, n = rows.start[c]
            part = slice(start, start + n)
            x[:n, :rows.seq], out[:n, :rows.seq] = rows.orig[part], rows.out[part]
            y[:n, :rows.seq] = np.where(rows.sel[part], rows.orig[part], pad)
            w[:n, :rows.seq] = words[part]
        x, out, y, w = (np.ascontiguousarray(a.T) for a in (x, out, y, w))   # [seq, batch]
        h.update(x, w, x, w, out, y)
    h.shape, h.calls = (seq, width), calls
    return h


def word_checks(h: WordCounts, config: MaskingConfig, subject: str) -> list[Check]:
    """The whole-word invariants a stream can break and every whole-word statistical check
    that needs no replayed call."""
    out = [c for c in counted_invariants(h, subject, WWM_INVARIANTS) if c.name in WORD_INVARIANTS]
    return out + [c for c in wwm_checks(h, config, subject) if "replay" not in c.name]
