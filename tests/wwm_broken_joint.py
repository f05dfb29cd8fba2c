"""Whole-word maskers whose draws are not independent between words, that build words wrongly
from realistic word ids or pieces, or whose random draw avoids the original: one defect each,
each an override of `CorrectWWM` (`tests/wwm_maskers.py`), with the check that must name it.

Every marginal law of these maskers is exact (the share of each category, the word selection
rate, per length and position): only the joint laws of `verify.words.wwm_joint`, or the
realistic inputs of `verify.words.pair_words`, can see them.
"""

from __future__ import annotations

import numpy as np

from mlm_ref import word_ids_from_pieces
from .wwm_maskers import CorrectWWM


class _Shaped(CorrectWWM):
    """Remembers the call's shape and each run's column, first row and index in its column."""

    def __call__(self, x, *, word_ids, seed):
        self.shape, self.xf = x.shape, x.T.ravel()
        return super().__call__(x, word_ids=word_ids, seed=seed)

    def run_facts(self, run, n_runs):
        """(column, first row, index in its column) of every run."""
        inside = np.flatnonzero(run >= 0)
        first = inside[np.r_[True, run[inside][1:] != run[inside][:-1]]] if inside.size \
            else inside
        col, row = first // self.shape[0], first % self.shape[0]
        return col, row, np.arange(col.size) - np.searchsorted(col, col)


class SequenceCategory(_Shaped):
    """One 80/10/10 draw per sequence, shared by all its selected words."""

    def categories(self, rng, run, n_runs):
        c = rng.random(self.shape[1])[np.arange(run.size) // self.shape[0]]
        return c < self.r, c >= self.r + self.n


class DealtCategories(_Shaped):
    """Categories dealt to the selected words of a sequence, in order, from shuffled decks of
    ten (8 [MASK], 1 random, 1 unchanged): each word's category has the right law, but a
    sequence's are too regular (its [MASK] count is nearly fixed)."""

    def select(self, rng, run, n_runs, eligible_word, length):
        self.selected = super().select(rng, run, n_runs, eligible_word, length)
        return self.selected

    def categories(self, rng, run, n_runs):
        col, _, _ = self.run_facts(run, n_runs)
        sel = self.selected
        before = np.cumsum(sel) - sel                        # selected words before this one
        rank = before - before[np.searchsorted(col, col)] if col.size else before
        deck = np.argsort(rng.random((self.shape[1], self.shape[0] // 10 + 1, 10)), axis=2)
        card = deck.reshape(self.shape[1], -1)[col, rank] if col.size else np.zeros(0, int)
        c = (card + rng.random(card.size)) / 10                        # uniform per word
        c = c[np.maximum(run, 0)] if c.size else np.zeros(run.size)
        return c < self.r, c >= self.r + self.n


class RowCategory(_Shaped):
    """The category drawn per row, `[seq_len, 1]`, broadcast over the batch: words of one
    call starting on the same row share it."""

    def categories(self, rng, run, n_runs):
        _, row, _ = self.run_facts(run, n_runs)
        c = rng.random(self.shape[0])[row]
        c = c[np.maximum(run, 0)] if c.size else np.zeros(run.size)
        return c < self.r, c >= self.r + self.n


class IndexCategory(_Shaped):
    """The category drawn per word index (`[max_words, 1]`) and broadcast over the batch."""

    def categories(self, rng, run, n_runs):
        _, _, index = self.run_facts(run, n_runs)
        c = rng.random(self.shape[0])[index]
        c = c[np.maximum(run, 0)] if c.size else np.zeros(run.size)
        return c < self.r, c >= self.r + self.n


class RowSelection(_Shaped):
    """Selection drawn per row and broadcast over the batch (first piece's row decides)."""

    def select(self, rng, run, n_runs, eligible_word, length):
        _, row, _ = self.run_facts(run, n_runs)
        return eligible_word & (rng.random(self.shape[0])[row] < self.p)


class NeverOriginal(_Shaped):
    """A random piece is drawn from the V - 1 ids other than its original."""

    def random_ids(self, rng, size):
        ids = rng.integers(0, self.n_tokens - 1, size)
        return ids + (ids >= self.xf)


class PositionCategory(_Shaped):
    """[MASK] for 90% of the selected words that start in the first half of the sequence and
    70% in the second half (80% on average; random and unchanged share the rest equally)."""

    def categories(self, rng, run, n_runs):
        _, row, _ = self.run_facts(run, n_runs)
        mask = np.where(row < self.shape[0] // 2, 0.9, 0.7)
        c = rng.random(n_runs)
        to_mask = c < mask
        to_random = ~to_mask & (c < mask + (1 - mask) / 2)
        pick = np.maximum(run, 0)
        return to_random[pick], to_mask[pick]


class NeighbourCategory(_Shaped):
    """A selected word whose predecessor in the sequence is selected too becomes [MASK] with
    probability 0.5, any other with 0.853 (about 0.8 overall)."""

    def select(self, rng, run, n_runs, eligible_word, length):
        self.selected = super().select(rng, run, n_runs, eligible_word, length)
        return self.selected

    def categories(self, rng, run, n_runs):
        col, _, _ = self.run_facts(run, n_runs)
        after = np.r_[False, self.selected[:-1] & (col[1:] == col[:-1])]
        mask = np.where(after, 0.5, 0.853)
        c = rng.random(n_runs)
        to_mask = c < mask
        to_random = ~to_mask & (c < mask + (1 - mask) / 2)
        pick = np.maximum(run, 0)
        return to_random[pick], to_mask[pick]


class SeedlessCategories(CorrectWWM):
    """The categories come from a generator seeded once, not from the call's seed: a call and
    its replay give a word the same category."""

    def categories(self, rng, run, n_runs):
        return super().categories(np.random.default_rng(12345), run, n_runs)


class SeedlessRandomIds(CorrectWWM):
    """The random ids come from a generator seeded once: a replay repeats them."""

    def random_ids(self, rng, size):
        return super().random_ids(np.random.default_rng(12345), size)


class WordsByValue(CorrectWWM):
    """Words found as equal word ids of a column (`np.unique` per column): segment B's word k
    joins segment A's word k, and the halves of a word cut by [SEP] join."""

    def words(self, x, w):
        wt = np.asarray(w).T                                           # [batch, seq_len]
        key = np.where(wt >= 0, np.arange(wt.shape[0])[:, None] * (wt.max() + 1) + wt, -1)
        flat = key.ravel()
        uniq, run = np.unique(flat[flat >= 0], return_inverse=True)
        out = np.full(flat.size, -1)
        out[flat >= 0] = run
        return out, uniq.size


class _FromPieces(CorrectWWM):
    """Derives the words itself from WordPiece spellings (the gate passes no word ids)."""

    wants_pieces = True
    derives_words = True

    def __call__(self, x, *, word_ids, seed, pieces):
        assert word_ids is None
        return super().__call__(x, word_ids=self.derive(pieces), seed=seed)

    def derive(self, pieces):
        return word_ids_from_pieces([list(c) for c in pieces.T], "wordpiece")


class PiecesWords(_FromPieces):
    """Correct: words from the pieces' `##` marks, as `mlm_ref.word_ids_from_pieces` reads them."""


class OffsetsWords(CorrectWWM):
    """Correct: derives the words from the offsets alone, as a fast tokenizer's offset mapping
    gives them (a piece continues a word when it starts where the piece before it ended;
    `(0, 0)` is outside words)."""

    wants_offsets = True
    derives_words = True

    def __call__(self, x, *, word_ids, seed, offsets):
        assert word_ids is None
        start, end = offsets[..., 0], offsets[..., 1]
        outside = (start == 0) & (end == 0)
        prev_end = np.vstack([np.full((1, x.shape[1]), -1), end[:-1]])
        prev_outside = np.vstack([np.ones((1, x.shape[1]), bool), outside[:-1]])
        new = ~outside & ((start != prev_end) | prev_outside)
        w = np.where(outside, -1, np.cumsum(new, axis=0))
        return super().__call__(x, word_ids=w, seed=seed)


class PiecesRowMajor(_FromPieces):
    """Reads the `[seq_len, batch]` pieces row by row (a flattening in the wrong order): its
    "words" run across the columns of a row."""

    def derive(self, pieces):
        flat = word_ids_from_pieces(list(pieces.ravel()), "wordpiece")
        return flat.reshape(pieces.shape)


class BatchFirst(CorrectWWM):
    """Correct, for `[batch, seq_len]` inputs (`--layout batch-seq`); fed `[seq_len, batch]`
    it takes the batch axis for the sequence."""

    def __call__(self, x, *, word_ids, seed):
        out, y = super().__call__(x.T, word_ids=word_ids.T, seed=seed)
        return np.ascontiguousarray(out.T), np.ascontiguousarray(y.T)


BROKEN_JOINT = {
    "one category per sequence": SequenceCategory,
    "categories dealt from decks of ten": DealtCategories,
    "category per row, broadcast over the batch": RowCategory,
    "category per word index, broadcast over the batch": IndexCategory,
    "selection per row, broadcast over the batch": RowSelection,
    "random id never the original": NeverOriginal,
    "categories ignore the seed": SeedlessCategories,
    "category depends on the position": PositionCategory,
    "category depends on the previous word's selection": NeighbourCategory,
    "random ids ignore the seed": SeedlessRandomIds,
    "words by equal word id (B joins A)": WordsByValue,
    "pieces read row by row": PiecesRowMajor,
}

CAUGHT_BY_JOINT = {
    "one category per sequence": "word categories independent within a sequence",
    "categories dealt from decks of ten": "word categories independent within a sequence",
    "category per row, broadcast over the batch":
        "word categories independent across the sequences of a call (same first position)",
    "category per word index, broadcast over the batch":
        "word categories independent across the sequences of a call (same word index)",
    "selection per row, broadcast over the batch":
        "word selection independent across the sequences of a call (same first position)",
    "random id never the original": "random pieces of a word equal their original at rate 1/V'",
    "category depends on the position": "word category homogeneous over positions",
    "category depends on the previous word's selection":
        "word category independent of the neighbouring word's selection",
    "categories ignore the seed":
        "word categories independent of a replayed call (same input, new seed)",
    "random ids ignore the seed":
        "random ids of a word differ between replays (same input, new seed)",
    "words by equal word id (B joins A)":
        "word selection independent of the next word with the same word id",
    "pieces read row by row": "words all-or-nothing",
}
