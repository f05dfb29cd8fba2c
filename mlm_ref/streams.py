"""Stateless streams: each example's mask a pure function of (seed, purpose, epoch, index).

A data pipeline that masks with a generator carried from batch to batch gets masks that depend
on how the batches happened to be formed: the worker count, the batch size, the world size,
where a resumed run picked up. Here each example has its own exact-mode key,

    key(seed, purpose, epoch, index)
        = fold_in(fold_in(fold_in(key(seed), PURPOSES[purpose]), epoch), index)

with `key(seed)` the key rule of `mlm_ref.keys` (an int seed is `jax.random.key(seed)`, data
`(0, seed mod 2**32)`), `fold_in` JAX's threefry `fold_in`, and the purpose tag a fixed uint32
(`PURPOSES`: masking, next-sentence pairs and evaluation draw from different streams). An
example's mask then depends on nothing but those four values and its own tokens.

`mask_rows(x, row_keys, config)` masks a padded batch `[batch, seq]` whose rows have their own
keys, in one vectorised pass: row `r` comes out exactly as `mask_tokens_exact(x[r, :n], config,
key=row_keys[r])` masks that row alone, for every length `n` (a position's draws depend only on
its row's key and its index in the row, so padding after a row never changes the row's bits).
The PyTorch and JAX backends have their own `mask_rows`, with the same bits.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import threefry
from .config import MaskingConfig
from .exact import CHUNK, mask_from_bits
from .validation import check_input, check_word, special_ids

__all__ = ["PURPOSES", "purpose_tag", "stream_key", "example_keys", "check_indices",
           "mask_rows"]

# The purpose tags, fixed for good: changing one changes every mask drawn under it.
PURPOSES = {"mlm": 1, "nsp": 2, "eval": 3}


def purpose_tag(purpose) -> int:
    """The uint32 tag of a purpose: a name in `PURPOSES` or an int in `[0, 2**32)`.

    Raises:
        ValueError: an unknown name, or an int out of range.
        TypeError: neither a str nor an int.
    """
    if isinstance(purpose, str):
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {sorted(PURPOSES)} or a uint32 tag, "
                             f"got {purpose!r}")
        return PURPOSES[purpose]
    if isinstance(purpose, bool) or not isinstance(purpose, numbers.Integral):
        raise TypeError(f"purpose must be a name or a uint32 tag, got {purpose!r}")
    return check_word(purpose, "purpose")


def stream_key(seed, epoch: int, purpose="mlm") -> np.ndarray:
    """`fold_in(fold_in(key(seed), tag), epoch)`: the key the examples' indices fold into.

    Returns:
        uint32[2] key data.
    """
    return threefry.derive_key(seed, purpose_tag(purpose), check_word(epoch, "epoch"))


def check_indices(indices) -> np.ndarray:
    """Example indices as uint32 [n]: integers in `[0, 2**32)`, rank 0 or 1.

    Raises:
        TypeError: not integers. ValueError: out of range, or of rank 2 or more.
    """
    data = np.asarray(indices)
    if data.size == 0:
        return np.zeros(0, np.uint32)
    if data.dtype == np.bool_ or data.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {data.dtype}")
    if data.ndim > 1:
        raise ValueError(f"indices must be a list of integers, got shape {data.shape}")
    if data.min() < 0 or data.max() > 0xFFFFFFFF:
        raise ValueError("indices must lie in [0, 2**32)")
    return data.reshape(-1).astype(np.uint32)


def example_keys(seed, epoch: int, indices, purpose="mlm") -> np.ndarray:
    """The exact-mode keys of examples `indices` in `epoch`, one per example.

    Args:
        seed: the run's seed: an int seed or key data (the rule of `mlm_ref.keys`).
        epoch: integer in `[0, 2**32)`.
        indices: the examples' indices in the dataset, integers in `[0, 2**32)`.
        purpose: `"mlm"`, `"nsp"`, `"eval"` or a uint32 tag.

    Returns:
        uint32 [n, 2]: row `i` is `fold_in(stream_key(seed, epoch, purpose), indices[i])`.
    """
    base = stream_key(seed, epoch, purpose)
    idx = check_indices(indices)                                     # [n]
    y0, y1 = threefry.threefry2x32(base, np.zeros_like(idx), idx)   # fold_in, vectorised
    return np.stack([y0, y1], axis=1)                                # [n, 2]


def mask_rows(x, row_keys, config: MaskingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mask each row of a padded batch with its own key, in one vectorised pass.

    Args:
        x: token ids `[batch, seq]`, padded with `config.padding_token`.
        row_keys: key data `[batch, 2]` (e.g. `example_keys(...)`).
        config: the masking parameters.

    Returns:
        `(x_masked, y)` like `x`; row `r` equals `mask_tokens_exact(x[r], config,
        key=row_keys[r])`, and its first `n` positions equal those of `x[r, :n]` masked alone.

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    x = check_input(x, config)
    if x.ndim != 2:
        raise ValueError(f"x must be a padded batch [batch, seq], got shape {x.shape}")
    keys = np.asarray(row_keys)
    if keys.shape != (x.shape[0], 2):
        raise ValueError(f"row_keys must have shape {(x.shape[0], 2)}, got {keys.shape}")
    batch, seq = x.shape
    x_masked, y = np.empty_like(x), np.empty_like(x)
    if x.size == 0:
        return x_masked, y
    sub = threefry.split_rows(keys, 3)                               # [batch, 3, 2]
    tok = threefry.split_rows(sub[:, 2], 2)                          # randint's two keys
    keys4 = (sub[:, 0], sub[:, 1], tok[:, 0], tok[:, 1])             # sel, cat, hi, lo
    special = np.array(special_ids(config, np.iinfo(x.dtype).max), dtype=x.dtype)
    rows = max(1, CHUNK // seq)                                      # rows per slice
    for start in range(0, batch, rows):
        r = slice(start, min(batch, start + rows))
        bits = [threefry.row_bits(k[r], seq) for k in keys4]       # uint32 [rows, seq] each
        x_masked[r], y[r] = mask_from_bits(x[r], *bits, special, config)
    return x_masked, y
