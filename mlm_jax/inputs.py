"""The contract's input rules (`mlm_ref.validation`) applied to JAX arrays, for every entry point
of the JAX backend (token-level masking, whole-word masking, streams)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mlm_ref.config import MaskingConfig
from mlm_ref.validation import check_ids_meta, check_lowest_id

from .keys import TRACER

__all__ = ["check_input", "check_rows"]


def check_input(x, config: MaskingConfig, *, check_ids: bool = True) -> jax.Array:
    """Return `x` as a JAX array after checking it against the contract's input rules.

    The rules are `mlm_ref.validation`'s. Values can only be checked when `x` is concrete;
    under an outer `jax.jit` the negative-id check is skipped (a traced value cannot raise).

    Raises:
        TypeError: a torch tensor, not an integer array, a dtype too small for the ids, or an
            int64 NumPy array while JAX's 64-bit mode is off (it would silently become int32).
        ValueError: rank 0, or negative token ids.
    """
    if type(x).__module__.split(".")[0] == "torch":
        raise TypeError(f"x is a {type(x).__module__}.{type(x).__name__}; mlm_jax takes JAX or "
                        f"NumPy arrays (convert with x.numpy(), or use mlm_torch)")
    dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    integer = dtype != np.bool_ and np.issubdtype(dtype, np.integer)
    check_ids_meta(str(dtype), integer=integer,
                   max_value=int(np.iinfo(dtype).max) if integer else None,
                   ndim=np.ndim(x), config=config)
    x = jnp.asarray(x)
    if x.dtype != dtype:
        raise TypeError(f"x has dtype {dtype}, which JAX turns into {x.dtype} because 64-bit "
                        f"mode is off; enable it (jax.config.update('jax_enable_x64', True)) "
                        f"or pass {x.dtype} ids")
    if check_ids and x.size and np.issubdtype(dtype, np.signedinteger):
        if isinstance(x, TRACER):
            return x  # traced inside the caller's jit: values unknown until run time
        check_lowest_id(int(jnp.min(x)))
    return x


def check_rows(x, row_keys, config: MaskingConfig, *,
               check_ids: bool = True) -> tuple[jax.Array, jax.Array]:
    """Check a padded batch masked one key per row.

    Args:
        x: token ids `[batch, seq]`.
        row_keys: key data `[batch, 2]` (uint32 words, int32 bit patterns or int64 values).

    Returns:
        `(x, keys)`: `x` as `check_input` returns it, the keys as uint32 `[batch, 2]`.

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    x = check_input(x, config, check_ids=check_ids)
    if x.ndim != 2:
        raise ValueError(f"x must be a padded batch [batch, seq], got shape {x.shape}")
    if tuple(jnp.shape(row_keys)) != (x.shape[0], 2):
        raise ValueError(f"row_keys must have shape {(x.shape[0], 2)}, "
                         f"got {tuple(jnp.shape(row_keys))}")
    if not isinstance(row_keys, jax.Array):  # on the host: int64 words must not overflow
        row_keys = np.asarray(row_keys)
        row_keys = row_keys.astype(np.uint32) if row_keys.dtype.kind == "i" else row_keys
    return x, jax.lax.convert_element_type(jnp.asarray(row_keys), jnp.uint32)  # mod 2**32
