"""A small, correct whole-word masker in NumPy, written from the WWM contract, to develop and
calibrate the WWM gate against before the backends' whole-word mode is merged.

The contract (docs/statistics.md, "Whole-word masking"): a word is a maximal run of equal
non-negative `word_ids` along axis 0 of one column; negative ids are outside any word. A word is
eligible when none of its pieces is padding, `[MASK]` or a no-mask id; each eligible word is
selected with probability `masking_prob` by its own draw, and a selected word gets one category
for all its pieces: `[MASK]`, an independent uniform random id per piece, or unchanged.

`CorrectWWM` is a factory with the module description's keywords returning
`fn(x, word_ids=w, seed=s)` (the gate's protocol for outside maskers, NumPy int64
`[seq_len, batch]`). Every planted defect in `tests/wwm_broken.py` overrides one method.
"""

from __future__ import annotations

import numpy as np

from verify.words.wwm_counts import word_runs


class CorrectWWM:
    """A correct whole-word masker (NumPy)."""

    def __init__(self, *, padding_token, mask_token, no_mask_tokens=(), n_tokens,
                 masking_prob=0.15, randomize_prob=0.1, no_change_prob=0.1):
        self.pad, self.mask, self.n_tokens = padding_token, mask_token, n_tokens
        self.ineligible = np.asarray(sorted({*no_mask_tokens, padding_token, mask_token}))
        self.p, self.r, self.n = masking_prob, randomize_prob, no_change_prob

    def words(self, x, w):
        """Run index per position (column-major, -1 outside words) and the number of runs."""
        return word_runs(w)

    def select(self, rng, run, n_runs, eligible_word, length):
        """Selected words: one Bernoulli(p) per word."""
        return eligible_word & (rng.random(n_runs) < self.p)

    def categories(self, rng, run, n_runs):
        """Per position (to_random, to_mask): one three-way draw per word."""
        c = rng.random(n_runs)[np.maximum(run, 0)]
        return c < self.r, c >= self.r + self.n

    def random_ids(self, rng, size):
        return rng.integers(0, self.n_tokens, size)

    def __call__(self, x, *, word_ids, seed):
        rng = np.random.default_rng(seed)
        xf = x.T.ravel()                                           # column-major
        run, n_runs = self.words(x, word_ids)
        inside = run >= 0
        length = np.bincount(run[inside], minlength=n_runs)
        bad = np.bincount(run[inside], np.isin(xf[inside], self.ineligible), n_runs)
        selected_word = self.select(rng, run, n_runs, bad == 0, length)
        selected = inside & selected_word[np.maximum(run, 0)]
        to_random, to_mask = self.categories(rng, run, n_runs)
        out = np.where(selected & to_random, self.random_ids(rng, xf.size),
                       np.where(selected & to_mask, self.mask, xf))
        y = np.where(selected, xf, self.pad)
        back = lambda a: a.reshape(x.shape[::-1]).T.astype(x.dtype)  # noqa: E731
        return back(out), back(y)
