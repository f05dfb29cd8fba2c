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
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine.arguments import derive_seed

__all__ = ["WordBatch", "SyntheticWords", "WORD_LENGTHS", "word_starts", "word_index",
           "column_cumsum"]

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
