"""Whole-word maskers with one planted defect each, and the WWM check that must catch it.

Each overrides one method of `CorrectWWM` (`tests/wwm_maskers.py`), so a failure can only come
from the defect. Two are Google's `create_pretraining_data.py` (category per piece; a fixed
budget of round(n * p) pieces that skips words which would overflow it), one is Hugging Face's
whole-word mode (every selected word all `[MASK]`).
"""

from __future__ import annotations

import numpy as np

from .wwm_maskers import CorrectWWM


class PiecewiseCategories(CorrectWWM):
    """Google: the 80/10/10 category drawn per piece, so a word comes out half [MASK]."""

    def categories(self, rng, run, n_runs):
        c = rng.random(run.size)
        return c < self.r, c >= self.r + self.n


class BudgetSelection(CorrectWWM):
    """Google: per sequence, words in random order until round(n * p) pieces are chosen; a
    word that would overflow the budget is skipped (long words are picked less often)."""

    def select(self, rng, run, n_runs, eligible_word, length):
        selected = np.zeros(n_runs, bool)
        inside = run >= 0
        col = (np.flatnonzero(inside) // self.seq_len)[np.r_[0, np.flatnonzero(
            np.diff(run[inside])) + 1]] if n_runs else np.zeros(0, int)
        for c in np.unique(col):
            words = np.flatnonzero((col == c) & eligible_word)
            budget = max(1, round(self.tokens_of[c] * self.p))
            taken = 0
            for i in rng.permutation(words):
                if taken >= budget:
                    break
                if taken + length[i] > budget:
                    continue
                selected[i], taken = True, taken + length[i]
        return selected

    def __call__(self, x, *, word_ids, seed):
        self.seq_len = x.shape[0]
        self.tokens_of = (x != self.pad).sum(0)       # Google counts [CLS] and [SEP] too
        return super().__call__(x, word_ids=word_ids, seed=seed)


class AlwaysMask(CorrectWWM):
    """Hugging Face's whole-word mode: every selected word all [MASK]."""

    def categories(self, rng, run, n_runs):
        rng.random(n_runs)
        return np.zeros(run.size, bool), np.ones(run.size, bool)


class PieceSelection(CorrectWWM):
    """Selection drawn per piece: words come out partly selected."""

    def words(self, x, w):
        from verify.words.wwm_counts import word_runs
        run, _ = word_runs(w)
        piece = np.where(run >= 0, np.arange(run.size), -1)
        return piece, run.size


class HalfVocabularyRandomIds(CorrectWWM):
    """Random ids drawn from the lower half of the vocabulary only."""

    def random_ids(self, rng, size):
        return rng.integers(0, self.n_tokens // 2, size)


class SkewedWordRate(CorrectWWM):
    """Words selected at 0.14 instead of 0.15."""

    def select(self, rng, run, n_runs, eligible_word, length):
        return eligible_word & (rng.random(n_runs) < 0.14)


class LengthDependentSelection(CorrectWWM):
    """Words of 4+ pieces selected at 0.8 p (Google's budget effect, alone)."""

    def select(self, rng, run, n_runs, eligible_word, length):
        p = np.where(length >= 4, 0.8 * self.p, self.p)
        return eligible_word & (rng.random(n_runs) < p)


class FirstPieceSplit(CorrectWWM):
    """Word boundary wrong: the first piece of every word is a word of its own."""

    def words(self, x, w):
        from verify.words.wwm_counts import word_runs
        run, n_runs = word_runs(w)
        first = np.r_[True, run[1:] != run[:-1]] & (run >= 0)
        second = np.r_[False, (run[1:] == run[:-1]) & first[:-1]] & (run >= 0)
        new = first | second
        return np.where(run >= 0, np.cumsum(new) - 1, -1), int(new.sum())


class JoinedWithNext(CorrectWWM):
    """Word boundary wrong: every even word of a column is joined with the word after it (as
    Hugging Face joins punctuation glued to a word)."""

    def words(self, x, w):
        from verify.words.wwm_counts import word_runs
        run, n_runs = word_runs(w)
        return np.where(run >= 0, run // 2, -1), (n_runs + 1) // 2


class CopiedRandomId(CorrectWWM):
    """One random id per word, copied to each of its pieces."""

    def random_ids(self, rng, size):
        self._ids = rng.integers(0, self.n_tokens, size)
        return self._ids

    def __call__(self, x, *, word_ids, seed):
        from verify.words.wwm_counts import word_runs
        run, _ = word_runs(word_ids)
        out, y = super().__call__(x, word_ids=word_ids, seed=seed)
        first = np.maximum.accumulate(np.where(np.r_[True, run[1:] != run[:-1]],
                                               np.arange(run.size), 0))
        of = out.T.ravel()
        xf = x.T.ravel()
        random = (y.T.ravel() != self.pad) & (of != self.mask) & (of != xf)
        copied = np.where(random & (run >= 0), self._ids[first], of)
        return copied.reshape(x.shape[::-1]).T.astype(x.dtype), y


BROKEN = {
    "per-piece categories (Google)": PiecewiseCategories,
    "budget selection (Google)": BudgetSelection,
    "always [MASK] (Hugging Face)": AlwaysMask,
    "selection per piece": PieceSelection,
    "random ids from half the vocabulary": HalfVocabularyRandomIds,
    "word selection rate 0.14": SkewedWordRate,
    "selection depends on word length": LengthDependentSelection,
    "first piece split from its word": FirstPieceSplit,
    "word joined with the next": JoinedWithNext,
    "one random id copied to every piece": CopiedRandomId,
}

CAUGHT_BY = {
    "per-piece categories (Google)":
        "word outcome split (all [MASK], all original, all other, mixed)",
    "budget selection (Google)": "selected words per sequence ~ Binomial (dispersion)",
    "always [MASK] (Hugging Face)":
        "word outcome split (all [MASK], all original, all other, mixed)",
    "selection per piece": "words all-or-nothing",
    "random ids from half the vocabulary": "random ids uniform (ranges)",
    "word selection rate 0.14": "word selection rate",
    "selection depends on word length": "word selection flat across word lengths",
    "first piece split from its word": "words all-or-nothing",
    "word joined with the next": "word selection independent of the neighbouring word",
    "one random id copied to every piece": "random pieces of a word drawn independently",
}
