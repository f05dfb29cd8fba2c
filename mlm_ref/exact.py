"""Exact mode in NumPy: the masks of section 4 of the contract, bit for bit.

The draws are JAX's: `split(key, 3)` gives one key for selection, one for the category and one
for the random id, each expanded over the whole shape by threefry2x32 (`mlm_ref.threefry`, a
NumPy port of `jax.random`). Every position draws all three values whether or not it is
selected; that wastes a little work but makes each position's outcome a function of the key and
its index alone, which is what lets three frameworks on two kinds of device agree.
"""

from __future__ import annotations

import numpy as np

from . import threefry
from .config import MaskingConfig
from .mlm import check_input

__all__ = ["mask_tokens_exact"]


def mask_tokens_exact(x, config: MaskingConfig, *, key) -> tuple[np.ndarray, np.ndarray]:
    """Mask `x` in exact mode: the same key gives the same outputs in every backend.

    Args:
        x: integer token ids, rank >= 1.
        config: the masking parameters.
        key: an int seed (meaning `jax.random.key(seed)`) or raw threefry key data `uint32[2]`.

    Returns:
        `(x_masked, y)` with the dtype and shape of `x`.
    """
    x = check_input(x, config)
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key), 3)
    p_select, p_random, p_random_or_keep = config.exact_thresholds()

    u = threefry.uniform(k_sel, x.shape)                        # float32, like x
    c = threefry.uniform(k_cat, x.shape)                        # float32, like x
    t = threefry.randint(k_tok, x.shape, 0, config.n_random).astype(np.int64)
    for excluded in config.random_exclude:  # the t-th id not in random_exclude
        t += t >= excluded

    selected = ~np.isin(x, config.ineligible_tokens) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    x_masked = np.where(to_mask, config.mask_token, x)
    x_masked = np.where(to_random, t, x_masked).astype(x.dtype, copy=False)
    y = np.where(selected, x, config.padding_token).astype(x.dtype, copy=False)
    return x_masked, y
