"""Stream derivation for exact mode: per-step and per-rank keys by successive `fold_in`.

`derive_key(key, step, rank)` here, in `mlm_ref.threefry` and in `mlm_torch.threefry` give the
same key, so a data pipeline can derive each step's masking key the same way in every backend.
"""

from __future__ import annotations

import jax

from .mlm import as_key

__all__ = ["derive_key"]


def derive_key(key, *indices: int) -> jax.Array:
    """Fold each index into `key` in turn: `fold_in(fold_in(key, i0), i1)`...

    Args:
        key: a JAX key, an int seed or raw `uint32[2]` threefry key data.
        *indices: non-negative integers below 2**32, e.g. the training step and the data rank.

    Returns:
        A typed JAX key.
    """
    key = as_key(key)
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**32:
            raise ValueError(f"indices must be integers in [0, 2**32), got {index!r}")
        key = jax.random.fold_in(key, index)
    return key
