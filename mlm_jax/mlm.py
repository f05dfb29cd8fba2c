"""Masked-language-model masking in JAX: a pure, jit-compiled function of the ids and a key.

The algorithm is the one taught in `mlm_ref.mlm`. In JAX randomness is an explicit argument,
so the native path *is* the exact path of the contract (docs/exact-mode.md): `split(key, 3)`
into a key for selection, one for the category and one for the random id, each drawn over
the whole shape. The NumPy and PyTorch backends re-implement these draws and return the same
bits for the same key.

`mask_tokens` validates its inputs in Python, then calls `mask_tokens_jit`, which is
jit-compiled with the (hashable, frozen) config as a static argument: one compilation per
config, shape and dtype. Call `mask_tokens_jit(x, key, config)` directly, with a typed key
(`as_key`), to leave the checks out of a hot loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlm_ref.config import MaskerBase, MaskingConfig
from mlm_ref.validation import check_ids_meta, check_lowest_id, special_ids

from .keys import TRACER, as_key

__all__ = ["MLM", "mask_tokens", "mask_tokens_jit", "check_input"]

# A handful of excluded ids are skipped with compares; more are looked up in a table.
_MAX_EXCLUDE_COMPARES = 16


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


def _eligible(x: jax.Array, config: MaskingConfig) -> jax.Array:
    # ids beyond the dtype's range cannot occur in x and cannot be represented in a compare
    fits = special_ids(config, int(np.iinfo(x.dtype).max))
    return ~jnp.isin(x, jnp.asarray(fits, dtype=x.dtype))


def _random_ids(key: jax.Array, shape, config: MaskingConfig) -> jax.Array:
    t = jax.random.randint(key, shape, 0, config.n_random, dtype=jnp.int32)
    if len(config.random_exclude) > _MAX_EXCLUDE_COMPARES:
        return jnp.asarray(config.random_ids(), dtype=jnp.int32)[t]
    for excluded in config.random_exclude:  # sorted: each excluded id at or below t pushes it
        t = t + (t >= excluded).astype(t.dtype)
    return t


@functools.partial(jax.jit, static_argnames="config")
def mask_tokens_jit(x: jax.Array, key: jax.Array, config: MaskingConfig):
    """The jit-compiled core of `mask_tokens`, without its checks.

    Args:
        x: integer token ids (a JAX array), rank >= 1, already checked (`check_input`).
        key: a typed JAX key (`as_key` makes one from an int seed or raw key data).
        config: the masking parameters (static: one compilation per config, shape and dtype).

    Returns:
        `(x_masked, y)`: JAX arrays with the dtype and shape of `x`.
    """
    k_sel, k_cat, k_tok = jax.random.split(key, 3)
    p_select, p_random, p_random_or_keep = config.exact_thresholds()

    u = jax.random.uniform(k_sel, x.shape, jnp.float32)             # like x
    c = jax.random.uniform(k_cat, x.shape, jnp.float32)             # like x
    t = _random_ids(k_tok, x.shape, config).astype(x.dtype)         # like x

    selected = _eligible(x, config) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    x_masked = jnp.where(to_random, t, jnp.where(to_mask, jnp.asarray(config.mask_token,
                                                                       x.dtype), x))
    y = jnp.where(selected, x, jnp.asarray(config.padding_token, x.dtype))
    return x_masked, y


def mask_tokens(x, config: MaskingConfig, *, key, check_ids: bool = True):
    """Mask a batch of token ids; the same key gives the same masks in every backend.

    Args:
        x: integer token ids (a JAX or NumPy array), rank >= 1; layout `[seq_len, batch]`.
        config: the masking parameters.
        key: a JAX PRNG key, an int seed (meaning `jax.random.key(seed)`) or raw threefry
            key data `uint32[2]`.
        check_ids: raise on negative ids (only possible when `x` is concrete).

    Returns:
        `(x_masked, y)`: JAX arrays with the dtype and shape of `x`.
    """
    x = check_input(x, config, check_ids=check_ids)
    return mask_tokens_jit(x, as_key(key), config)


class MLM(MaskerBase):
    """BERT's masked-language-model masking (JAX).

    Args:
        **params: the masking parameters of `mlm_ref.config.MaskerBase`.
        check_ids: check for negative ids on every call (skipped when traced).

    Call it as `x_masked, y = mlm(x, key=key)`. The instance holds only the static config,
    so calling it inside your own `jax.jit` works.
    """

    def __init__(self, *, check_ids: bool = True, **params):
        super().__init__(**params)
        self.check_ids = bool(check_ids)

    def __call__(self, x, *, key):
        return mask_tokens(x, self.config, key=key, check_ids=self.check_ids)

    def __repr__(self) -> str:
        return f"mlm_jax.MLM({self.config}, check_ids={self.check_ids})"
