"""Masked-language-model masking, the readable NumPy reference.

BERT learns by filling in blanks. Before each training step, some tokens of the input are
hidden and the model is asked to predict them from both sides of their context. This module
decides *which* tokens are hidden and *what* the model sees in their place.

**Why 15%.** Only the hidden positions produce a training signal, so hiding more gives more
signal per sequence; but every hidden token also removes context the model needs to predict
the others. BERT's authors settled on hiding each eligible token with probability
`masking_prob = 0.15`. Each position is decided by its own coin flip, so a sequence of 100
tokens has 15 selected on average, sometimes 11, sometimes 20: the count is binomial, not fixed.

**Why 80/10/10.** If every selected token became `[MASK]`, the model would only ever learn to
predict at `[MASK]` positions, a token it never sees when it is fine-tuned or used. So a selected
position is, exclusively, one of three things:

* replaced by `[MASK]` with probability `1 - randomize_prob - no_change_prob` (0.8),
* replaced by a token drawn uniformly from the vocabulary with probability `randomize_prob`
  (0.1): the model can no longer trust that a visible token is genuine, and must use the
  context to check every token, not only the masked ones,
* left unchanged with probability `no_change_prob` (0.1): this biases the representation of
  real tokens towards their actual identity, since the model is sometimes asked to predict a
  token it can see.

The three are one draw from a three-way distribution, not independent coin flips: the
widely copied PyTorch version draws "random" and "unchanged" separately, and overlapping draws
turn 80/10/10 into 81/9/10.

**Which tokens are eligible.** Padding is not text, `[MASK]` is already a mask, and tokens such
as `[CLS]` and `[SEP]` (`no_mask_tokens`) carry structure that a second task may rely on; none of
them is ever selected.

**Why the labels are padding elsewhere.** The loss is computed only where something was hidden.
The labels `y` hold the original token at selected positions and `padding_token` everywhere
else, so a loss with `ignore_index=padding_token` trains exactly on the selected positions —
including the unchanged ones, whose input looks untouched.

The caller's array is never written to: `x_masked` and `y` are new arrays.

**Memory.** The draws are made a slice of `CHUNK` positions at a time (the same numbers, in the
same order, as one draw over the whole batch), so beyond the two outputs only a few bytes per
position are held: docs/contract.md states the bound, `verify/bench/memory.py` measures it.
"""

from __future__ import annotations

import numpy as np

from .config import MaskerBase, MaskingConfig
from .exact import mask_tokens_exact
from .validation import as_generator, check_input, check_no_compat, special_ids
from .wwm import mask_words, mask_words_exact

__all__ = ["MLM", "mask_tokens", "as_generator", "MASK", "RANDOM", "UNCHANGED", "NOT_SELECTED",
           "CHUNK"]

# The category of each position: one of the three of a selected position, or none.
NOT_SELECTED, MASK, RANDOM, UNCHANGED = 0, 1, 2, 3

# Positions per slice of a draw: large enough that the per-slice overhead vanishes, small
# enough that a slice's float64 draws (512 KiB) are nothing next to a large batch.
CHUNK = 2**16


def mask_tokens(x, config: MaskingConfig, *, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Mask a batch of token ids with NumPy's generator (the native path).

    Args:
        x: integer token ids of any shape with rank >= 1; documented layout `[seq_len, batch]`.
        config: the masking parameters.
        rng: a `numpy.random.Generator`, or a non-negative int seed for
            `numpy.random.default_rng` (None draws fresh entropy).

    Returns:
        `(x_masked, y)`: new arrays with the dtype and shape of `x`.
    """
    x = check_input(x, config)
    rng = as_generator(rng)

    # 1. Selection: every position flips its own coin, eligible or not (row-major order).
    # 2. Eligibility: padding, [MASK] and the no_mask_tokens are never selected.
    selected = _uniform_below(rng, x.shape, config.masking_prob)
    selected &= _eligible(x, config)

    # 3. Category: one more uniform per selected position (row-major order) picks exactly one
    #    of mask, random and unchanged, so the three are exclusive and have exactly their
    #    configured probabilities.
    category = _categories(rng, np.count_nonzero(selected), config)     # [n_selected]

    # 4. Outputs. A "mask" position shows [MASK]; "unchanged" positions keep their token, as
    #    unselected ones do; a "random" position shows an id drawn for it (row-major order).
    #    The labels hold the original token at every selected position, padding elsewhere.
    #    (The selected positions only are worked on: beyond the outputs, the call holds one
    #    byte per position, `selected`.)
    shown = x[selected]                                                  # [n_selected]
    shown[category == MASK] = config.mask_token
    to_random = category == RANDOM
    shown[to_random] = _random_ids(rng, np.count_nonzero(to_random), config, x.dtype)
    x_masked = x.copy()
    x_masked[selected] = shown
    y = np.where(selected, x, x.dtype.type(config.padding_token))
    return x_masked, y


def _eligible(x: np.ndarray, config: MaskingConfig) -> np.ndarray:
    """True where `x` may be selected, a slice at a time (`np.isin`'s temporaries take up to
    8 bytes per id: the index of a table lookup)."""
    special = np.array(special_ids(config, np.iinfo(x.dtype).max), x.dtype)
    flat = x.reshape(-1)
    out = np.empty(flat.size, dtype=bool)
    for start in range(0, flat.size, CHUNK):
        out[start:start + CHUNK] = np.isin(flat[start:start + CHUNK], special, invert=True)
    return out.reshape(x.shape)


def _uniform_below(rng: np.random.Generator, shape, threshold: float) -> np.ndarray:
    """`rng.random(shape) < threshold`, drawn a slice at a time: the same uniforms."""
    n = int(np.prod(shape, dtype=np.int64))
    below = np.empty(n, dtype=bool)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        below[start:stop] = rng.random(stop - start) < threshold
    return below.reshape(shape)


def _categories(rng: np.random.Generator, n: int, config: MaskingConfig) -> np.ndarray:
    """`n` categories, each from one uniform `c`: random below `randomize_prob`, unchanged
    below `randomize_prob + no_change_prob`, mask above."""
    random_below = config.randomize_prob
    unchanged_below = config.randomize_prob + config.no_change_prob
    out = np.empty(n, dtype=np.int8)
    for start in range(0, n, CHUNK):
        c = rng.random(min(n, start + CHUNK) - start)
        out[start:start + c.size] = np.where(c < random_below, RANDOM,
                                             np.where(c < unchanged_below, UNCHANGED, MASK))
    return out


def _random_ids(rng: np.random.Generator, n: int, config: MaskingConfig, dtype) -> np.ndarray:
    """`n` ids drawn uniformly from `0 .. n_tokens-1` minus `random_exclude`."""
    out = np.empty(n, dtype=dtype)
    for start in range(0, n, CHUNK):
        t = rng.integers(0, config.n_random, size=min(n, start + CHUNK) - start,
                         dtype=np.int64)
        # Draw the t-th allowed id: walking the excluded ids upwards, every excluded id at or
        # below the running value pushes it one further. Sorted order makes one pass enough.
        for excluded in config.random_exclude:
            t += t >= excluded
        out[start:start + t.size] = t
    return out


class MLM(MaskerBase):
    """BERT's masked-language-model masking (NumPy); the parameters are `MaskerBase`'s.

    Call it as `x_masked, y = mlm(x, rng=seed_or_generator)`; `key=` selects the exact mode,
    whose masks are bit-identical across the NumPy, PyTorch and JAX backends. `word_ids=w`
    masks whole words (`mlm_ref.wwm`), in either mode.
    """

    def __call__(self, x, *, word_ids=None, rng=None, key=None) -> tuple[np.ndarray, np.ndarray]:
        """Mask `x`; see `mask_tokens` (native), `mask_tokens_exact` (`key=`) and, with
        `word_ids=`, `mlm_ref.wwm.mask_words` and `mask_words_exact`.

        Raises:
            ValueError: both `rng=` and `key=`; a whole-word option without `word_ids`.
        """
        if key is not None and rng is not None:
            raise ValueError("pass either rng= (native mode) or key= (exact mode), not both")
        if word_ids is not None:
            if key is not None:
                return mask_words_exact(x, word_ids, self.config, key=key)
            return mask_words(x, word_ids, self.config, rng=rng)
        check_no_compat(self.config)
        if key is not None:
            return mask_tokens_exact(x, self.config, key=key)
        return mask_tokens(x, self.config, rng=rng)

    def __repr__(self) -> str:
        return f"mlm_ref.MLM({self.config})"
