"""Exact mode in NumPy: the masks of docs/exact-mode.md, bit for bit.

The draws are JAX's: `split(key, 3)` gives one key for selection, one for the category and one
for the random id, each expanded over the whole shape by threefry2x32 (`mlm_ref.threefry`, a
NumPy port of `jax.random`). Every position draws all three values whether or not it is
selected; that wastes a little work but makes each position's outcome a function of the key and
its flat index alone, which is what lets three frameworks on two kinds of device agree.

It is also what lets this module work a slice of positions at a time: slice `[start, stop)` of
the flattened batch hashes the counters `start .. stop-1` and nothing else, so the outputs are
the same bits as one pass over the whole batch, while the draws never take more memory than one
slice needs (docs/exact-mode.md states the bound).
"""

from __future__ import annotations

import numpy as np

from . import threefry
from .config import MaskingConfig
from .validation import check_input, special_ids

__all__ = ["mask_tokens_exact", "mask_from_bits", "CHUNK"]

# Positions per slice: each holds about 40 bytes of draws per position (a few MiB in all).
CHUNK = 2**16


def mask_tokens_exact(x, config: MaskingConfig, *, key) -> tuple[np.ndarray, np.ndarray]:
    """Mask `x` in exact mode: the same key gives the same outputs in every backend.

    Args:
        x: integer token ids, rank >= 1.
        config: the masking parameters.
        key: an int seed (meaning `jax.random.key(seed)`) or raw threefry key data `uint32[2]`
            (the rule of `mlm_ref.keys`).

    Returns:
        `(x_masked, y)` with the dtype and shape of `x`.
    """
    x = check_input(x, config)
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key), 3)
    k_hi, k_lo = threefry.split(k_tok, 2)          # randint's two keys, as JAX splits them
    flat = x.reshape(-1)                           # row-major order (a copy if x is strided)
    x_masked, y = np.empty_like(flat), np.empty_like(flat)
    special = np.array(special_ids(config, np.iinfo(x.dtype).max), dtype=x.dtype)
    for start in range(0, flat.size, CHUNK):
        s = slice(start, min(flat.size, start + CHUNK))
        x_masked[s], y[s] = _mask_slice(flat[s], s, (k_sel, k_cat, k_hi, k_lo), special, config)
    return x_masked.reshape(x.shape), y.reshape(x.shape)


def _mask_slice(x: np.ndarray, s: slice, keys, special: np.ndarray, config: MaskingConfig):
    """Exact mode on the positions `s` of the flattened batch, which hold `x`."""
    bits = [threefry.bits_at(k, s.start, s.stop) for k in keys]  # k_sel, k_cat, k_hi, k_lo
    return mask_from_bits(x, *bits, special, config)


def mask_from_bits(x: np.ndarray, sel, cat, hi, lo, special: np.ndarray,
                   config: MaskingConfig):
    """Exact mode's outcomes from the four draws' bits, elementwise (any shape, like `x`).

    Args:
        x: token ids; `sel`, `cat`, `hi`, `lo`: the uint32 bits of `k_sel`, `k_cat` and
            randint's two keys at `x`'s positions (all four are overwritten).
        special: the ineligible ids, in `x`'s dtype.

    Returns:
        `(x_masked, y)`, like `x`.
    """
    p_select, p_random, p_random_or_keep = config.exact_thresholds()
    u = threefry.uniform_from_bits(sel)                             # float32, like x
    c = threefry.uniform_from_bits(cat)                             # float32, like x
    t = threefry.randint_from_bits(hi, lo, 0, config.n_random).astype(np.int64)
    for excluded in config.random_exclude:  # the t-th id not in random_exclude
        t += t >= excluded

    selected = ~np.isin(x, special) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    # every operand in x's dtype: mixing int64 and uint64 would round through float64
    x_masked = np.where(to_mask, x.dtype.type(config.mask_token),
                        np.where(to_random, t.astype(x.dtype), x))
    y = np.where(selected, x, x.dtype.type(config.padding_token))
    return x_masked, y
