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
"""

from __future__ import annotations

import numpy as np

from .config import MaskingConfig

__all__ = ["MLM", "mask_tokens", "check_input"]


def check_input(x, config: MaskingConfig) -> np.ndarray:
    """Return `x` as an ndarray after checking it against the contract's input rules.

    Raises:
        TypeError: not an integer array (booleans included), or a dtype too small for the ids.
        ValueError: rank 0, or negative token ids.
    """
    x = np.asarray(x)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"x must hold integer token ids, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError("x must have rank >= 1 (documented layout [seq_len, batch]), "
                         "got a scalar")
    if np.iinfo(x.dtype).max < config.max_output_id:
        raise TypeError(f"x dtype {x.dtype} cannot hold token id {config.max_output_id} "
                        f"(n_tokens={config.n_tokens}, mask_token={config.mask_token}, "
                        f"padding_token={config.padding_token})")
    if x.size and np.issubdtype(x.dtype, np.signedinteger) and x.min() < 0:
        raise ValueError(f"x must hold non-negative token ids, found {x.min()}")
    return x


def _random_ids(rng: np.random.Generator, n: int, config: MaskingConfig) -> np.ndarray:
    """`n` ids drawn uniformly from `0 .. n_tokens-1` minus `random_exclude`."""
    t = rng.integers(0, config.n_random, size=n, dtype=np.int64)
    # Draw the t-th allowed id: walking the excluded ids upwards, every excluded id at or
    # below the running value pushes it one further. Sorted order makes one pass enough.
    for excluded in config.random_exclude:
        t += t >= excluded
    return t


def mask_tokens(x, config: MaskingConfig, *, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Mask a batch of token ids with NumPy's generator (the native path).

    Args:
        x: integer token ids of any shape with rank >= 1; documented layout `[seq_len, batch]`.
        config: the masking parameters.
        rng: a `numpy.random.Generator`, or a seed for `numpy.random.default_rng`
            (None draws fresh entropy).

    Returns:
        `(x_masked, y)`: new arrays with the dtype and shape of `x`.
    """
    x = check_input(x, config)
    rng = _as_generator(rng)

    eligible = ~np.isin(x, config.ineligible_tokens)                  # like x
    selected = eligible & (rng.random(x.shape) < config.masking_prob)  # like x
    where = np.flatnonzero(selected)                                   # [n_selected]

    # One uniform per selected position picks its single category, so the categories are
    # exclusive and have exactly the configured probabilities.
    c = rng.random(where.size)                                         # [n_selected]
    to_random = c < config.randomize_prob
    to_mask = c >= config.randomize_prob + config.no_change_prob

    x_masked = x.copy()
    flat = x_masked.reshape(-1)  # a view: writes land in x_masked, never in x
    flat[where[to_mask]] = config.mask_token
    flat[where[to_random]] = _random_ids(rng, int(to_random.sum()), config)

    y = np.full_like(x, config.padding_token)
    y[selected] = x[selected]
    return x_masked, y


def _as_generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        if rng is not None and rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, "
                    f"got {type(rng).__name__}")


class MLM:
    """BERT's masked-language-model masking (NumPy).

    Args:
        padding_token: id of `[PAD]`; never masked, and the label of unselected positions.
        mask_token: id of `[MASK]`.
        no_mask_tokens: ids never masked, such as `[CLS]` and `[SEP]`.
        n_tokens: vocabulary size, the range of random replacements.
        masking_prob: probability that an eligible token is selected (0.15).
        randomize_prob: probability that a selected token becomes a random token (0.1).
        no_change_prob: probability that a selected token is left unchanged (0.1).
        random_exclude: ids never drawn as random replacements (none by default).

    Call it as `x_masked, y = mlm(x, rng=seed_or_generator)`; `key=` selects the exact mode,
    whose masks are bit-identical across the NumPy, PyTorch and JAX backends.
    """

    def __init__(self, *, padding_token: int, mask_token: int, no_mask_tokens=(),
                 n_tokens: int, masking_prob: float = 0.15, randomize_prob: float = 0.1,
                 no_change_prob: float = 0.1, random_exclude=()):
        self.config = MaskingConfig(
            padding_token=padding_token, mask_token=mask_token, no_mask_tokens=no_mask_tokens,
            n_tokens=n_tokens, masking_prob=masking_prob, randomize_prob=randomize_prob,
            no_change_prob=no_change_prob, random_exclude=random_exclude)

    def __call__(self, x, *, rng=None, key=None) -> tuple[np.ndarray, np.ndarray]:
        """Mask `x`; see `mask_tokens` (native) and `mask_tokens_exact` (`key=`)."""
        if key is not None:
            if rng is not None:
                raise ValueError("pass either rng= (native mode) or key= (exact mode), not both")
            from .exact import mask_tokens_exact
            return mask_tokens_exact(x, self.config, key=key)
        return mask_tokens(x, self.config, rng=rng)

    def __repr__(self) -> str:
        return f"mlm_ref.MLM({self.config})"
