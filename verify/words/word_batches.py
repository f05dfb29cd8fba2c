"""The inputs of the whole-word-masking (WWM) gate: batches of token ids with word ids.

A whole-word masker takes, beside the token ids `x` `[seq_len, batch]`, an integer array
`word_ids` of the same shape: a *word* is a maximal run of equal non-negative values along
axis 0 within one column, and a negative value marks a position outside any word (never
selected). `SyntheticWords` makes such batches in the style of `inputs.SyntheticBatches`:

* word lengths in pieces follow `WORD_LENGTHS` (1 to 10 pieces; most words are one piece, as
  in WordPiece-tokenized English, with a tail of long words so that a selection that depends
  on the length shows);
* each column is `[CLS]` (word id -1), two or three segments of words each closed by `[SEP]`
  (word id -1), then a padding tail (word id -1) of uniform length in half of the columns;
* ids inside words are uniform over the vocabulary, so padding, `[MASK]` and no-mask ids turn
  up inside words now and then (such a word is ineligible as a whole), and 1% of the pieces
  hold `[MASK]` on purpose; 1% of the positions between words are ordinary ids with word id -1
  (outside any word: never selected, although the id is eligible).

Character offsets `[seq_len, batch, 2]` come with every batch for maskers that find word
boundaries from offsets (Hugging Face): pieces of one word touch, words are one character
apart. **Replay**: as in `inputs`, call `2k + 1` feeds exactly the batch of call `2k`.
`verify.words.text_words` makes the same kind of batch from real text.

What the gate counts from an input alone (where the words are, how long, which are eligible,
which pairs of words the joint checks compare) is a `WordLayout`, built once per input: a call
and its replay share their input, and the runner feeds every masker the same inputs
(`WordLayout.reuse` compares contents, so a source that refills one array in place still gets
a fresh layout). `SelectedPieces` are the pieces of one call's selected words, on which the
outcome counts work.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine.arguments import derive_seed

__all__ = ["WordBatch", "SyntheticWords", "WORD_LENGTHS", "word_starts", "word_index",
           "column_cumsum", "WordLayout", "word_runs", "drawable_ids", "LENGTH_CLASSES",
           "POS_BUCKETS", "SelectedPieces", "segment_sums"]

# P(word has 1, 2, ... 10 pieces)
WORD_LENGTHS = np.array([0.55, 0.18, 0.1, 0.06, 0.04, 0.03, 0.02, 0.01, 0.006, 0.004])
WORD_LENGTHS = WORD_LENGTHS / WORD_LENGTHS.sum()
MASK_FRACTION = 0.01      # pieces that already hold [MASK]
OUTSIDE_FRACTION = 0.01   # ordinary ids with word id -1 between words


@dataclasses.dataclass
class WordBatch:
    """One batch: `x` int64 `[seq_len, batch]`, `word_ids` int64 of the same shape, and
    `offsets` int64 `[seq_len, batch, 2]` (character start and end of each piece)."""

    x: np.ndarray
    word_ids: np.ndarray
    offsets: np.ndarray


def word_starts(word_ids: np.ndarray) -> np.ndarray:
    """Where a word starts: a non-negative id that differs from the one above it in its column
    (or sits in row 0). bool, `word_ids`'s shape."""
    w = np.asarray(word_ids)
    start = w >= 0
    start[1:] &= w[1:] != w[:-1]
    return start


def word_index(ends: np.ndarray, n: int) -> np.ndarray:
    """Word index of each of the first `n` positions of each column's stream of words: `ends`
    `[batch, k]` the cumulative word lengths (strictly increasing); int64 `[n, batch]`, the
    number of words that end at or before each position (`searchsorted(ends[c], range(n),
    side="right")` for every column at once)."""
    ended = np.zeros((n, ends.shape[0]), np.int64)
    col, k = np.nonzero(ends < n)
    ended[ends[col, k], col] = 1          # strictly increasing ends: at most one per cell
    return column_cumsum(ended)


def column_cumsum(a: np.ndarray) -> np.ndarray:
    """`np.cumsum(a, axis=0)` of a 2-d integer array, row by row: the same numbers, an order of
    magnitude faster for `[seq_len, batch]` arrays (NumPy's axis-0 cumsum walks each column
    with a stride)."""
    out = np.array(a, copy=True)
    for i in range(1, out.shape[0]):
        np.add(out[i - 1], out[i], out=out[i])
    return out


class SyntheticWords:
    """`WordBatch`es `[seq_len, batch]`; calls `2k` and `2k + 1` share the batch of `(seed, k)`.

    Args:
        config: the masking parameters (vocabulary size and special ids).
        seq_len: sequence length (dimension 0).
        batch: sequences per call (dimension 1).
        seed: the run's seed.
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, seed: int):
        self.config, self.seq_len, self.batch, self.seed = config, seq_len, batch, seed
        self._last = None

    def __call__(self, call: int) -> WordBatch:
        """The batch of call `call` (the same object for a call and its replay: copy before
        handing it to a masker)."""
        if self._last is None or self._last[0] != call // 2:
            self._last = (call // 2, self._make(call // 2))
        return self._last[1]

    def _make(self, pair: int) -> WordBatch:
        cfg, n, b = self.config, self.seq_len, self.batch
        rng = np.random.default_rng(derive_seed(self.seed, "words", pair))
        # a long stream of word lengths per column, laid out until the column is full
        lengths = rng.choice(np.arange(1, WORD_LENGTHS.size + 1), size=(b, n), p=WORD_LENGTHS)
        ends = np.cumsum(lengths, axis=1)                                       # [batch, n]
        # word index of each position of each column (the first n pieces of its stream)
        pos = np.arange(n)
        w = word_index(ends, n)
        x = rng.integers(0, cfg.n_tokens, size=(n, b))
        x = np.where(rng.random((n, b)) < MASK_FRACTION, cfg.mask_token, x)
        outside = (rng.random((n, b)) < OUTSIDE_FRACTION) & word_starts(w)
        w = np.where(outside, -1, w)
        length = np.where(rng.random(b) < 0.5, n, rng.integers(2, n + 1, b))    # [batch]
        if cfg.no_mask_tokens:
            cls, sep = cfg.no_mask_tokens[0], cfg.no_mask_tokens[-1]
            cut = rng.integers(2, 4, b)
            specials = np.zeros((n, b), bool)
            specials[0] = True
            x[0] = cls
            for k in (1, 2, 3):
                end = np.where(k <= cut, length * k // cut - 1, -1)
                col = np.flatnonzero(end > 0)
                x[end[col], col] = sep
                specials[end[col], col] = True
            w = np.where(specials, -1, w)
        pad = pos[:, None] >= length[None, :]
        x = np.where(pad, cfg.padding_token, x)
        w = np.where(pad, -1, w)
        # offsets: pieces of a word touch; a word (or anything outside words) starts one
        # character after the previous piece ends
        piece_len = rng.integers(1, 5, size=(n, b))
        gap = np.where(word_starts(w) | (w < 0), 1, 0)
        end = column_cumsum(gap + piece_len)
        offsets = np.stack([end - piece_len, end], axis=-1)
        return WordBatch(x.astype(np.int64), w.astype(np.int64), offsets.astype(np.int64))


LENGTH_CLASSES = 8     # word lengths 1 .. 7 and 8+
POS_BUCKETS = 16       # buckets of the word's first position


def word_runs(word_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Run index of every position in column-major order (`[batch, seq_len]` raveled), -1
    outside words, and the number of runs (words)."""
    wt = np.asarray(word_ids).T                                         # [batch, seq_len]
    start = word_starts(wt.T).T.ravel()
    run = np.cumsum(start) - 1
    return np.where(wt.ravel() >= 0, run, -1), int(start.sum())


def drawable_ids(t: np.ndarray, config: MaskingConfig, exclude: np.ndarray) -> np.ndarray:
    """Which ids of `t` a random replacement can take (`exclude`: `config.random_exclude`)."""
    ok = (t >= 0) & (t < config.n_tokens)
    return ok & ~np.isin(t, exclude) if exclude.size else ok


class WordLayout:
    """The input-only terms of one input `x`, `word_ids` `[seq_len, batch]`.

    Per position (column-major): `xf` the ids, `run` the word (-1 outside), `inside`,
    `drawable_x`. Per word: `length`, `eligible`, `lc` (length class), `start` (first row),
    `col`, `value` (word id), `drawable` (pieces whose original can be drawn), `ordinal` (index
    in its column), `first` (flat position of its first piece), `stratum` (length class and
    whether every piece is drawable), `keys` (column, first row, ordinal). Pairs of words
    (index arrays): `nbr` (neighbouring eligible words of a column), `prev_eligible` (per eligible
    word, the eligible word before it in its column, or -1), `same_id` (a word and the
    next word of its column with the same word id, both eligible). Totals over eligible words
    by length class, position bucket and column.
    """

    def __init__(self, x: np.ndarray, word_ids: np.ndarray, config: MaskingConfig):
        self.config = config
        self.x, self.w = np.array(x, copy=True), np.array(word_ids, copy=True)
        n, b = self.x.shape
        self.seq_len, self.batch = n, b
        exclude = np.asarray(config.random_exclude, np.int64)
        self.xf = self.x.T.ravel()
        self.run, self.n_words = word_runs(self.w)
        self.inside = self.run >= 0
        at_word = np.flatnonzero(self.inside)
        r = self.run[self.inside]
        first = np.flatnonzero(np.diff(np.concatenate([[-1], r])) != 0)
        self.first = at_word[first]
        self.length = np.bincount(r, minlength=self.n_words)
        bad = np.bincount(r, np.isin(self.xf, np.asarray(config.ineligible_tokens, np.int64))[
            self.inside], self.n_words)
        self.eligible = bad == 0
        self.drawable_x = drawable_ids(self.xf, config, exclude)
        self.drawable = np.bincount(r, self.drawable_x[self.inside], self.n_words).astype(
            np.int64)
        self.lc = np.minimum(self.length, LENGTH_CLASSES) - 1
        self.start, self.col = self.first % n, self.first // n
        self.value = self.w.T.ravel()[self.first]
        self.ordinal = np.arange(self.n_words) - np.searchsorted(self.col, self.col)
        self.stratum = self.lc * 2 + (self.drawable == self.length)   # joint checks' strata
        self.keys = {"sequence": self.col, "position": self.start, "index": self.ordinal}
        self.key_sizes = {k: int(v.max()) + 1 if v.size else 0 for k, v in self.keys.items()}
        self._eligible_terms(n, b)
        self._tables: dict = {}

    def _eligible_terms(self, n: int, b: int):
        """Totals over eligible words, and the pairs of eligible words the checks compare."""
        e = self.eligible
        self.n_eligible = int(e.sum())
        self.pos_bucket = self.start * POS_BUCKETS // n
        self.by_length_total = np.bincount(self.lc[e], minlength=LENGTH_CLASSES)[:LENGTH_CLASSES]
        self.by_pos_total = np.bincount(self.pos_bucket[e], minlength=POS_BUCKETS)[:POS_BUCKETS]
        self.eligible_per_col = np.bincount(self.col[e], minlength=b)
        both = e[:-1] & e[1:] & (self.col[:-1] == self.col[1:])
        self.nbr = (np.flatnonzero(both), np.flatnonzero(both) + 1)
        idx = np.flatnonzero(e)                          # eligible words, column-major order
        same_col = self.col[idx[1:]] == self.col[idx[:-1]]
        self.prev_eligible = np.full(self.n_words, -1)   # the eligible word before, same column
        self.prev_eligible[idx[1:][same_col]] = idx[:-1][same_col]
        order = np.lexsort((np.arange(self.n_words), self.value, self.col))
        c, v, el = self.col[order], self.value[order], e[order]
        pair = (c[1:] == c[:-1]) & (v[1:] == v[:-1]) & el[1:] & el[:-1]
        self.same_id = (order[:-1][pair], order[1:][pair])

    def matches(self, x: np.ndarray, word_ids: np.ndarray) -> bool:
        """Whether this is the layout of `x`, `word_ids` (same shape and contents)."""
        return (x.shape == self.x.shape and word_ids.shape == self.w.shape
                and x.dtype == self.x.dtype and word_ids.dtype == self.w.dtype
                and np.array_equal(x, self.x) and np.array_equal(word_ids, self.w))

    @classmethod
    def reuse(cls, layout: WordLayout | None, x: np.ndarray, word_ids: np.ndarray,
              config: MaskingConfig) -> WordLayout:
        """`layout` when it is the layout of this input, else a new one."""
        if layout is not None and layout.config == config and layout.matches(x, word_ids):
            return layout
        return cls(x, word_ids, config)

    def eligible_tables(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the eligible words grouped by `keys[key]`: the float `[groups, length classes]`
        table of (group, length class), and the eligible words per group and per length
        class (made once per input, on first use)."""
        if key not in self._tables:
            e = self.eligible
            g, lc, size = self.keys[key][e], self.lc[e], self.key_sizes[key]
            m = np.bincount(g * LENGTH_CLASSES + lc, minlength=size * LENGTH_CLASSES)
            self._tables[key] = (m.reshape(size, LENGTH_CLASSES).astype(np.float64),
                                 np.bincount(g, minlength=size),
                                 np.bincount(lc, minlength=LENGTH_CLASSES))
        return self._tables[key]

    def per_word(self, flags: np.ndarray) -> np.ndarray:
        """int64 count per word of the positions inside it where `flags` (per position)."""
        return np.bincount(self.run[self.inside], flags[self.inside], self.n_words).astype(
            np.int64)


@dataclasses.dataclass
class SelectedPieces:
    """The pieces of one call's selected words, word by word in column-major order.

    Attributes:
        at: their flat positions (column-major).
        first: the index in `at` of each selected word's first piece.
        length: each selected word's length.
        code: per piece, 0 output `[MASK]`, 1 the original, 2 another id.
        drawable: per piece, whether its original can be drawn as a random id.
    """

    at: np.ndarray
    first: np.ndarray
    length: np.ndarray
    code: np.ndarray
    drawable: np.ndarray

    @classmethod
    def of(cls, layout: WordLayout, sel: np.ndarray, is_mask: np.ndarray,
           is_orig: np.ndarray) -> SelectedPieces:
        """The selected pieces of `layout`'s input given `sel` per word and the outputs'
        `is_mask`, `is_orig` per position."""
        at = np.flatnonzero(np.append(sel, False)[layout.run])    # run -1: the False
        length = layout.length[sel]
        code = np.where(is_mask[at], 0, np.where(is_orig[at], 1, 2))
        return cls(at, np.cumsum(length) - length, length, code, layout.drawable_x[at])


def segment_sums(flags: np.ndarray, first: np.ndarray) -> np.ndarray:
    """int64 sums of `flags` over the segments starting at `first` (non-empty, in order,
    covering `flags` to its end)."""
    if first.size == 0:
        return np.zeros(0, np.int64)
    return np.add.reduceat(flags.astype(np.int64), first)
