"""Counting what a whole-word masker did, one call at a time, on the host.

The WWM contract (docs/statistics.md, "Whole-word masking") works on *words*: maximal runs of
equal non-negative `word_ids` along axis 0 of one column. A word is *eligible* when none of its
pieces is padding, `[MASK]` or a no-mask id; it is *selected* when its pieces carry labels
(labels other than `padding_token`). The harness sees only `(x, word_ids, x_masked, y)`, and
decodes per selected word how its pieces came out: each piece is `mask` (output `[MASK]`),
`original` (output equals input) or `other`; the word is **all [MASK]**, **all original**,
**all other** or **mixed**.

Under the contract a selected word of L pieces, d of them drawable as random ids, comes out

* all [MASK] with probability `mask + random * hm^L` (hm = 1/V' when `[MASK]` is drawable),
* all original with `unchanged + random * h^L` when all L are drawable (h = 1/V'), else
  `unchanged`,
* all other with `random * (1 - hm - h)^d * (1 - hm)^(L - d)`,
* mixed with the rest (`random` times a term of order L/V': two random draws that happen to
  hit `[MASK]` or the original).

`word_outcome_probs` computes these from `MaskingConfig.category_probs()`, `n_random` and
`is_random_id` (for L = 1 they are `MaskingConfig.outcome_probs`, with mixed = 0). A masker that
draws the category per piece (Google's `create_pretraining_data.py`) puts 1 - 0.8^L - ... of
its multi-piece words in "mixed"; one that always writes `[MASK]` (Hugging Face) has no
"all original" or "all other" words.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from .wwm_joint import JointCounts
from .word_batches import (LENGTH_CLASSES, POS_BUCKETS, SelectedPieces, WordLayout,
                           drawable_ids, segment_sums, word_runs)

__all__ = ["WordCounts", "WWM_INVARIANTS", "LENGTH_CLASSES", "POS_BUCKETS",
           "word_outcome_probs", "word_runs", "OUTCOMES"]

OUTCOMES = ("all [MASK]", "all original", "all other", "mixed")
WWM_INVARIANTS = {
    "input not mutated": "positions of the caller's input (ids or word ids) changed by the call",
    "labels are padding or the original": "labels neither padding_token nor the input token",
    "unselected positions unchanged": "positions with a padding label whose output changed",
    "positions outside words never selected": "positions with a negative word id and a label",
    "ineligible words never selected": "pieces with a label in a word holding padding, [MASK] "
                                       "or a no-mask id",
    "words all-or-nothing": "words with some but not all pieces labelled",
    "replacements are [MASK], original or a drawable id":
        "selected outputs outside {mask_token, original} and outside the random-id range",
}


def word_outcome_probs(cfg: MaskingConfig, length, drawable) -> np.ndarray:
    """`[..., 4]` probabilities (all [MASK], all original, all other, mixed) of a selected word
    of `length` pieces, `drawable` of whose originals can be drawn as random ids."""
    length, drawable = np.asarray(length, np.float64), np.asarray(drawable, np.float64)
    mask, random, unchanged = cfg.category_probs()
    h = 1.0 / cfg.n_random
    hm = h if cfg.is_random_id(cfg.mask_token) else 0.0
    all_mask = mask + random * hm ** length
    all_orig = unchanged + random * np.where(drawable == length, h ** length, 0.0)
    all_other = random * (1 - hm - h) ** drawable * (1 - hm) ** (length - drawable)
    mixed = np.maximum(0.0, 1.0 - all_mask - all_orig - all_other)
    return np.stack([all_mask, all_orig, all_other, mixed], axis=-1)


class WordCounts:
    """Running sums for one masker over a WWM run.

    Args:
        config: the masking parameters.
        seq_len, batch, calls: the run's shape.
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, calls: int):
        self.config, self.seq_len, self.batch, self.calls = config, seq_len, batch, calls
        v = config.n_tokens
        self.invariants = dict.fromkeys(WWM_INVARIANTS, 0)
        self.host_problems: dict[str, list[str]] = {}
        self.by_length = np.zeros((LENGTH_CLASSES, 2), np.int64)   # eligible words: unsel, sel
        self.by_pos = np.zeros((POS_BUCKETS, 2), np.int64)
        self.by_call = np.zeros((calls, 2), np.int64)
        self.seq_hist = np.zeros((seq_len + 1, seq_len + 1), np.int64)  # [eligible, selected]
        self.pairs = {"nbr": np.zeros((2, 2), np.int64), "replay": np.zeros((2, 2), np.int64)}
        self.outcomes = np.zeros((LENGTH_CLASSES, 4), np.int64)      # selected words
        self.expected = np.zeros((LENGTH_CLASSES, 4), np.float64)    # sums of probabilities
        self.first_piece = np.zeros((2, 3), np.int64)   # [original drawable?, mask/orig/other]
        self.last_piece = np.zeros((2, 3), np.int64)    # words of 2+ pieces only
        self.other_hist = np.zeros(v + 1, np.int64)     # visible random ids (last bin: rest)
        self.orig_hist = np.zeros(v + 1, np.int64)      # drawable originals, selected pieces
        self.selected_pieces = 0
        self.equal_neighbours = np.zeros(2, np.int64)   # adjacent 'other' pieces of a word:
        #                                                 (pairs, of those equal ids)
        self.joint = JointCounts(config, LENGTH_CLASSES)              # joint laws (wwm_joint)
        self.seconds, self.shape = 0.0, (seq_len, batch)
        self._prev = None   # (call, selected-word flags) of the last call
        self._layout = None  # the last call's WordLayout (a replay has the same input)
        self._call = 0
        self._exclude = np.asarray(config.random_exclude, np.int64)

    def problem(self, check: str, message: str):
        """Record a breach seen on the host (shape, dtype, determinism, errors)."""
        self.host_problems.setdefault(check, []).append(message)

    def update(self, x, w, x_after, w_after, out, y, layout: WordLayout | None = None):
        """Add one call; every array `[seq_len, batch]` int64 NumPy (`x`, `w`: the harness's
        copies of the input; `x_after`, `w_after`: the caller's arrays after the call).
        `layout`: the input's `WordLayout` when the caller has it (checked against `x`, `w`;
        made here otherwise, and kept for the replay)."""
        cfg, inv = self.config, self.invariants
        lay = self._layout = WordLayout.reuse(
            self._layout if layout is None else layout, x, w, cfg)
        inv["input not mutated"] += int(np.count_nonzero(x_after != x)
                                        + np.count_nonzero(w_after != w))
        xf, of, yf = lay.xf, out.T.ravel(), y.T.ravel()                # column-major
        labelled = yf != cfg.padding_token
        inv["labels are padding or the original"] += _nz(labelled & (yf != xf))
        inv["unselected positions unchanged"] += _nz(~labelled & (of != xf))
        inv["positions outside words never selected"] += _nz(labelled & ~lay.inside)
        lab = lay.per_word(labelled)
        inv["ineligible words never selected"] += int(lab[~lay.eligible].sum())
        inv["words all-or-nothing"] += _nz((lab > 0) & (lab < lay.length))
        is_mask, is_orig = of == cfg.mask_token, of == xf
        drawable_out = drawable_ids(of, cfg, self._exclude)
        inv["replacements are [MASK], original or a drawable id"] += _nz(
            labelled & ~is_mask & ~is_orig & ~drawable_out)
        sel = (lab == lay.length) & lay.eligible
        self._selection(lay, sel)
        p = SelectedPieces.of(lay, sel, is_mask, is_orig)
        k_mask, k_orig = segment_sums(p.code == 0, p.first), segment_sums(p.code == 1, p.first)
        k_other = p.length - k_mask - k_orig
        cls = np.select([k_mask == p.length, k_orig == p.length, k_other == p.length],
                        [0, 1, 2], 3)                                  # per selected word
        lc = lay.lc[sel]
        self.outcomes += np.bincount(lc * 4 + cls, minlength=4 * LENGTH_CLASSES).reshape(
            LENGTH_CLASSES, 4)
        np.add.at(self.expected, lc, word_outcome_probs(cfg, p.length, lay.drawable[sel]))
        self._end_pieces(p)
        self._random_ids(lay, p, of, drawable_out)
        self.selected_pieces += int(p.at.size)
        self.joint.update(lay, sel, cls, p, call=self._call, out=of)
        self._call += 1

    def _selection(self, lay: WordLayout, sel: np.ndarray):
        """Selection of eligible words by length, first position, call and sequence; of
        neighbouring eligible words of one column (consecutive runs), and of the same word in
        a replayed call."""
        hit = np.bincount(lay.lc[sel], minlength=LENGTH_CLASSES)[:LENGTH_CLASSES]
        self.by_length += np.stack([lay.by_length_total - hit, hit], axis=1)
        hit = np.bincount(lay.pos_bucket[sel], minlength=POS_BUCKETS)[:POS_BUCKETS]
        self.by_pos += np.stack([lay.by_pos_total - hit, hit], axis=1)
        n_sel = _nz(sel)
        self.by_call[self._call] += [lay.n_eligible - n_sel, n_sel]
        k_seq = np.bincount(lay.col[sel], minlength=lay.batch)
        np.add.at(self.seq_hist, (lay.eligible_per_col, k_seq), 1)
        self.pairs["nbr"] += _pair(sel[lay.nbr[0]], sel[lay.nbr[1]])
        if self._prev is not None and self._call % 2 == 1 and self._prev[0] == self._call - 1:
            prev = self._prev[1]
            if prev.shape == sel.shape:
                e = lay.eligible
                self.pairs["replay"] += _pair(prev[e], sel[e])
        self._prev = (self._call, sel)

    def _end_pieces(self, p: SelectedPieces):
        """Outcomes of the first and last pieces of selected words, drawable ids or not."""
        last = (p.first + p.length - 1)[p.length >= 2]
        for table, at in ((self.first_piece, p.first), (self.last_piece, last)):
            table += np.bincount(p.drawable[at] * 3 + p.code[at], minlength=6).reshape(2, 3)

    def _random_ids(self, lay: WordLayout, p: SelectedPieces, of, drawable_out):
        """Visible random ids against the originals of every selected piece, and equal
        random ids of neighbouring pieces of one word (last bins: every other position)."""
        v, size = self.config.n_tokens, of.size
        visible = (p.code == 2) & drawable_out[p.at]
        shown = of[p.at]
        for hist, ids in ((self.other_hist, shown[visible]),
                          (self.orig_hist, lay.xf[p.at][p.drawable])):
            counts = np.bincount(ids, minlength=v + 1)
            counts[v] += size - ids.size
            hist += counts
        pair = ((np.diff(p.at) == 1) & (lay.run[p.at][1:] == lay.run[p.at][:-1])
                & visible[:-1] & visible[1:])
        self.equal_neighbours += [_nz(pair), _nz(pair & (shown[:-1] == shown[1:]))]

    @property
    def eligible_words(self) -> int:
        return int(self.by_length.sum())

    @property
    def selected_words(self) -> int:
        return int(self.by_length[:, 1].sum())


def _nz(flags: np.ndarray) -> int:
    return int(np.count_nonzero(flags))


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bincount(a.astype(np.int64) * 2 + b, minlength=4).reshape(2, 2)
