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

from .word_batches import word_starts
from .wwm_joint import JointCounts

__all__ = ["WordCounts", "WWM_INVARIANTS", "LENGTH_CLASSES", "POS_BUCKETS",
           "word_outcome_probs", "word_runs", "OUTCOMES"]

LENGTH_CLASSES = 8     # word lengths 1 .. 7 and 8+
POS_BUCKETS = 16       # buckets of the word's first position
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


def word_runs(word_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Run index of every position in column-major order (`[batch, seq_len]` raveled), -1
    outside words, and the number of runs (words)."""
    wt = np.asarray(word_ids).T                                         # [batch, seq_len]
    start = word_starts(wt.T).T.ravel()
    run = np.cumsum(start) - 1
    return np.where(wt.ravel() >= 0, run, -1), int(start.sum())


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
        self._call = 0
        self._ineligible = np.asarray(config.ineligible_tokens, np.int64)
        self._exclude = np.asarray(config.random_exclude, np.int64)

    def problem(self, check: str, message: str):
        """Record a breach seen on the host (shape, dtype, determinism, errors)."""
        self.host_problems.setdefault(check, []).append(message)

    def _drawable(self, t: np.ndarray) -> np.ndarray:
        ok = (t >= 0) & (t < self.config.n_tokens)
        return ok & ~np.isin(t, self._exclude) if self._exclude.size else ok

    def update(self, x, w, x_after, w_after, out, y):
        """Add one call; every array `[seq_len, batch]` int64 NumPy (`x`, `w`: the harness's
        copies of the input; `x_after`, `w_after`: the caller's arrays after the call)."""
        cfg, inv = self.config, self.invariants
        n, b = x.shape
        inv["input not mutated"] += int((x_after != x).sum() + (w_after != w).sum())
        xf, of, yf = x.T.ravel(), out.T.ravel(), y.T.ravel()             # column-major
        run, n_runs = word_runs(w)
        labelled = yf != cfg.padding_token
        inv["labels are padding or the original"] += int((labelled & (yf != xf)).sum())
        inv["unselected positions unchanged"] += int((~labelled & (of != xf)).sum())
        inside = run >= 0
        inv["positions outside words never selected"] += int((labelled & ~inside).sum())
        r = run[inside]
        cnt = lambda m: np.bincount(r, m[inside], n_runs).astype(np.int64)  # noqa: E731
        length = np.bincount(r, minlength=n_runs)                           # [words]
        bad = cnt(np.isin(xf, self._ineligible))
        lab = cnt(labelled)
        eligible, selected = bad == 0, lab == length
        inv["ineligible words never selected"] += int(lab[~eligible].sum())
        inv["words all-or-nothing"] += int(((lab > 0) & (lab < length)).sum())
        is_mask, is_orig = of == cfg.mask_token, of == xf
        drawable_out = self._drawable(of)
        inv["replacements are [MASK], original or a drawable id"] += int(
            (labelled & ~is_mask & ~is_orig & ~drawable_out).sum())
        # selection of eligible words: by length, first position, call, sequence
        e, sel = eligible, selected & eligible
        first = np.flatnonzero(np.diff(np.concatenate([[-1], run[inside]])) != 0)
        start_pos = (np.flatnonzero(inside)[first] % n)                      # [words]
        col = np.flatnonzero(inside)[first] // n                             # [words]
        lc = np.minimum(length, LENGTH_CLASSES) - 1
        self.by_length += _two(lc[e], sel[e], LENGTH_CLASSES)
        self.by_pos += _two(start_pos[e] * POS_BUCKETS // n, sel[e], POS_BUCKETS)
        self.by_call[self._call] += [int((e & ~sel).sum()), int(sel.sum())]
        m_seq = np.bincount(col[e], minlength=b)
        k_seq = np.bincount(col[e], sel[e], b).astype(np.int64)
        np.add.at(self.seq_hist, (m_seq, k_seq), 1)
        self._word_pairs(e, sel, col)
        piece_sel = np.zeros(xf.shape, bool)  # the pieces of selected words, and their outcomes
        piece_sel[inside] = sel[r]
        code = np.where(is_mask, 0, np.where(is_orig, 1, 2))                 # per position
        drawable_x = self._drawable(xf)
        k_mask, k_orig = cnt(is_mask & piece_sel), cnt(is_orig & piece_sel)
        k_other = lab - k_mask - k_orig
        d = cnt(drawable_x)
        cls = np.select([k_mask == length, k_orig == length, k_other == length], [0, 1, 2], 3)
        self.outcomes += np.stack([np.bincount(lc[sel], cls[sel] == j, LENGTH_CLASSES)
                                   for j in range(4)], axis=1).astype(np.int64)
        probs = word_outcome_probs(cfg, length[sel], d[sel])                 # [selected, 4]
        np.add.at(self.expected, lc[sel], probs)
        self._end_pieces(np.flatnonzero(inside), first, sel, length, drawable_x, code)
        self._random_ids(xf, of, piece_sel & (code == 2) & drawable_out, piece_sel & drawable_x,
                         inside[:-1] & (run[:-1] == run[1:]))
        self.selected_pieces += int(piece_sel.sum())
        self.joint.update(col=col, start=start_pos, eligible=e, sel=sel, cls=cls, lc=lc,
                          all_drawable=(d == length).astype(np.int64),
                          value=w.T.ravel()[inside][first], run=run, code=code,
                          piece_sel=piece_sel, drawable_x=drawable_x, call=self._call, out=of,
                          seq_len=n)
        self._call += 1

    def _end_pieces(self, at_word, first, sel, length, drawable_x, code):
        """Outcomes of the first and last pieces of selected words, drawable ids or not
        (`at_word`: the flat index of each position inside a word; `first`: of each word's
        first piece among those)."""
        pos_first = at_word[first]
        pos_last = at_word[np.append(first[1:], at_word.size) - 1]
        for table, at in ((self.first_piece, pos_first[sel]),
                          (self.last_piece, pos_last[sel & (length >= 2)])):
            np.add.at(table, (drawable_x[at].astype(np.int64), code[at]), 1)

    def _word_pairs(self, e, sel, col):
        """Selection of neighbouring eligible words of one column (consecutive runs), and of
        the same word in a replayed call."""
        both = e[:-1] & e[1:] & (col[:-1] == col[1:])
        self.pairs["nbr"] += _pair(sel[:-1][both], sel[1:][both])
        if self._prev is not None and self._call % 2 == 1 and self._prev[0] == self._call - 1:
            prev = self._prev[1]
            if prev.shape == sel.shape:
                self.pairs["replay"] += _pair(prev[e], sel[e])
        self._prev = (self._call, sel)

    def _random_ids(self, xf, of, visible, drawable_selected, same_word):
        """Visible random ids against the originals of every selected piece, and equal
        random ids of neighbouring pieces of one word."""
        v = self.config.n_tokens
        self.other_hist += np.bincount(np.where(visible, of, v), minlength=v + 1)
        self.orig_hist += np.bincount(np.where(drawable_selected, xf, v), minlength=v + 1)
        pair = same_word & visible[:-1] & visible[1:]
        self.equal_neighbours += [int(pair.sum()), int((pair & (of[:-1] == of[1:])).sum())]

    @property
    def eligible_words(self) -> int:
        return int(self.by_length.sum())

    @property
    def selected_words(self) -> int:
        return int(self.by_length[:, 1].sum())


def _two(group: np.ndarray, flag: np.ndarray, size: int) -> np.ndarray:
    """`[size, 2]` counts of (not flag, flag) per group."""
    total = np.bincount(group, minlength=size)[:size]
    hit = np.bincount(group, flag, size)[:size].astype(np.int64)
    return np.stack([total - hit, hit], axis=1)


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bincount(a.astype(np.int64) * 2 + b, minlength=4).reshape(2, 2)
