"""How the WWM gate calls an outside whole-word masker: keywords and layout.

The protocol (`docs/statistics.md`, "Whole-word masking"): `fn(x, word_ids=w, seed=s)` on NumPy
int64 arrays, returning `(x_masked, y)` of `x`'s shape and dtype. Attributes of `fn` ask for
more, or less:

* `wants_offsets = True`: also `offsets=`, int64, the character span `(start, end)` of each
  piece on a last axis of 2 (pieces of a word touch; a word starts after a gap; `(0, 0)`
  outside words in the default inputs);
* `wants_pieces = True`: also `pieces=`, an object array of str, the pieces spelled WordPiece
  style (`verify.words.pair_words.spell_pieces`: `##` continues a word; `[CLS]`, `[SEP]`,
  `[PAD]`, `</s>` are outside words), for a masker that reads words off the spellings;
* `derives_words = True`: `word_ids=None`, so the words the masker uses are the ones it derived
  from `pieces=` or `offsets=`: its derivation is what the gate tests.

The layout is `[seq_len, batch]` (the module description's) or, with `--layout batch-seq`,
`[batch, seq_len]` for every array (offsets `[batch, seq_len, 2]`); the outputs are expected
in the same layout and turned back here.
"""

from __future__ import annotations

import numpy as np

from .pair_words import spell_pieces

__all__ = ["call_external", "WWM_LAYOUTS"]

WWM_LAYOUTS = ("seq-batch", "batch-seq")


def call_external(masker, batch, x: np.ndarray, w: np.ndarray, seed: int, layout: str,
                  config):
    """`masker(x, word_ids=..., seed=seed, ...)` as its attributes ask; its result, with two
    arrays of `x`'s layout turned back to `[seq_len, batch]` (anything else as returned).

    Args:
        batch: the `WordBatch` (its `offsets`; its pieces are spelled from it).
        x, w: the caller's copies of the ids and word ids, `[seq_len, batch]`.
        layout: `seq-batch` or `batch-seq`.
        config: the run's `MaskingConfig` (which ids are `[CLS]`, `[SEP]`, `[PAD]`).
    """
    kw = {}
    if getattr(masker, "wants_offsets", False):
        kw["offsets"] = batch.offsets.copy()
    if getattr(masker, "wants_pieces", False):
        kw["pieces"] = _pieces(batch, config).copy()
    words = None if getattr(masker, "derives_words", False) else w
    if layout == "batch-seq":
        flip = {"offsets": (1, 0, 2), "pieces": (1, 0)}
        kw = {k: np.ascontiguousarray(v.transpose(flip[k])) for k, v in kw.items()}
        result = masker(np.ascontiguousarray(x.T), seed=seed, **kw,
                        word_ids=None if words is None else np.ascontiguousarray(words.T))
        if isinstance(result, (tuple, list)) and len(result) == 2:
            return tuple(a.T if isinstance(a, np.ndarray) and a.ndim == 2 else a
                         for a in result)
        return result
    return masker(x, word_ids=words, seed=seed, **kw)


def _pieces(batch, config) -> np.ndarray:
    """The batch's spelled pieces, made once per batch (a call and its replay share them)."""
    cached = getattr(batch, "pieces", None)
    if cached is None:
        cached = spell_pieces(batch, config)
        batch.pieces = cached
    return cached
