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
from jax.extend.random import threefry2x32_p

from mlm_ref.config import MaskerBase, MaskingConfig
from mlm_ref.validation import check_no_compat, special_ids

from .inputs import check_input
from .keys import as_key
from .wwm import mask_words

__all__ = ["MLM", "mask_tokens", "mask_tokens_jit", "check_input"]

# A handful of excluded ids are skipped with compares; more are looked up in a table.
_MAX_EXCLUDE_COMPARES = 16
# Positions from which a batch is masked a slice at a time, and the slice (memory: a slice's
# draws, ~40 bytes a position, instead of the whole batch's).
SLICED_ABOVE = 2**20
SLICE = 2**15


def _eligible(x: jax.Array, config: MaskingConfig) -> jax.Array:
    # ids beyond the dtype's range cannot occur in x and cannot be represented in a compare
    fits = special_ids(config, int(np.iinfo(x.dtype).max))
    return ~jnp.isin(x, jnp.asarray(fits, dtype=x.dtype))


def _random_ids(key: jax.Array, shape, config: MaskingConfig) -> jax.Array:
    return _past_excluded(jax.random.randint(key, shape, 0, config.n_random, dtype=jnp.int32),
                          config)


def _past_excluded(t: jax.Array, config: MaskingConfig) -> jax.Array:
    """Draws `t` in `[0, n_random)` as ids: the t-th id not in `random_exclude`."""
    if len(config.random_exclude) > _MAX_EXCLUDE_COMPARES:
        return jnp.asarray(config.random_ids(), dtype=jnp.int32)[t]
    for excluded in config.random_exclude:  # sorted: each excluded id at or below t pushes it
        t = t + (t >= excluded).astype(t.dtype)
    return t


@functools.partial(jax.jit, static_argnames="config")
def mask_tokens_jit(x: jax.Array, key: jax.Array, config: MaskingConfig):
    """The jit-compiled core of `mask_tokens`, without its checks.

    A batch of more than `SLICED_ABOVE` positions (and fewer than 2**31) is masked `SLICE`
    positions at a time, when JAX's threefry layout is the partitionable one (the default; the
    same bits: a draw depends on the key and the position's flat index only), so that beyond
    the outputs the call holds one slice's draws, not ~40 bytes per position.

    Args:
        x: integer token ids (a JAX array), rank >= 1, already checked (`check_input`).
        key: a typed JAX key (`as_key` makes one from an int seed or raw key data).
        config: the masking parameters (static: one compilation per config, shape and dtype).

    Returns:
        `(x_masked, y)`: JAX arrays with the dtype and shape of `x`.
    """
    if SLICED_ABOVE < x.size < 2**31 and jax.config.jax_threefry_partitionable:
        return _mask_sliced(x, key, config)
    k_sel, k_cat, k_tok = jax.random.split(key, 3)
    u = jax.random.uniform(k_sel, x.shape, jnp.float32)             # like x
    c = jax.random.uniform(k_cat, x.shape, jnp.float32)             # like x
    t = _random_ids(k_tok, x.shape, config).astype(x.dtype)         # like x
    return _outcomes(x, u, c, t, config)


def _outcomes(x, u, c, t, config: MaskingConfig):
    """`(x_masked, y)` from the three draws of every position of `x`."""
    p_select, p_random, p_random_or_keep = config.exact_thresholds()
    selected = _eligible(x, config) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    x_masked = jnp.where(to_random, t, jnp.where(to_mask, jnp.asarray(config.mask_token,
                                                                       x.dtype), x))
    y = jnp.where(selected, x, jnp.asarray(config.padding_token, x.dtype))
    return x_masked, y


def _mask_sliced(x: jax.Array, key: jax.Array, config: MaskingConfig):
    """`mask_tokens_jit`'s outputs, `SLICE` positions at a time in a `fori_loop` (`x.size >
    SLICE`). JAX's draws of a flat position i, in its partitionable threefry layout, are the
    hash of the counter pair `(i >> 32, i & 0xFFFFFFFF)` (the xor of the two output words),
    so a slice hashes its own counters; `uniform` and `randint` are then applied to those bits
    as `jax.random` applies them. The last slice ends at the last position and overlaps the
    one before it, which it rewrites with the same values."""
    k_sel, k_cat, k_tok = jax.random.split(key, 3)
    k_hi, k_lo = jax.random.split(k_tok)                 # randint's two keys, as JAX splits
    words = [jax.random.key_data(k) for k in (k_sel, k_cat, k_hi, k_lo)]     # uint32[2] each
    flat = x.reshape(-1)
    n = flat.size

    def bits(w, counters):
        y0, y1 = threefry2x32_p.bind(w[0], w[1], jnp.zeros_like(counters), counters)
        return y0 ^ y1

    def uniform(b):                                      # jax.random.uniform's mapping
        one = jnp.uint32(0x3F800000)                     # the bits of 1.0f
        return jax.lax.bitcast_convert_type((b >> 9) | one, jnp.float32) - 1.0

    def body(i, outs):
        start = jnp.minimum(i * SLICE, n - SLICE)
        xs = jax.lax.dynamic_slice(flat, (start,), (SLICE,))
        counters = start.astype(jnp.uint32) + jax.lax.iota(jnp.uint32, SLICE)   # n < 2**32
        t = _randint_bits(bits(words[2], counters), bits(words[3], counters), config.n_random)
        t = _past_excluded(t, config).astype(x.dtype)
        xm, y = _outcomes(xs, uniform(bits(words[0], counters)),
                          uniform(bits(words[1], counters)), t, config)
        return tuple(jax.lax.dynamic_update_slice(o, v, (start,)) for o, v in zip(outs, (xm, y)))

    xm, y = jax.lax.fori_loop(0, -(-n // SLICE), body, (jnp.empty_like(flat),) * 2)
    return xm.reshape(x.shape), y.reshape(x.shape)


def _randint_bits(higher: jax.Array, lower: jax.Array, maxval: int) -> jax.Array:
    """`jax.random.randint(key, shape, 0, maxval, jnp.int32)` from the bits of its two keys
    (uint32 arithmetic, wrapping, as JAX computes it; `maxval` below 2**31, and a span of 1
    when it is not positive, as in JAX)."""
    maxval = max(maxval, 1)
    span = jnp.uint32(maxval)
    multiplier = jnp.uint32((((2**16 % maxval) ** 2) & 0xFFFFFFFF) % maxval)
    offset = (higher % span) * multiplier + lower % span
    return (offset % span).astype(jnp.int32)


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

    Call it as `x_masked, y = mlm(x, key=key)`; `word_ids=w` masks whole words
    (`mlm_jax.wwm`). The instance holds only the static config, so calling it inside your own
    `jax.jit` works.
    """

    def __init__(self, *, check_ids: bool = True, **params):
        super().__init__(**params)
        self.check_ids = bool(check_ids)

    def __call__(self, x, *, word_ids=None, key):
        """Mask `x`; see `mask_tokens` and, with `word_ids=`, `mlm_jax.wwm.mask_words`.

        Raises:
            ValueError: a whole-word option (`wwm_category`, `wwm_selection`) without
                `word_ids`.
        """
        if word_ids is not None:
            return mask_words(x, word_ids, self.config, key=key, check_ids=self.check_ids)
        check_no_compat(self.config)
        return mask_tokens(x, self.config, key=key, check_ids=self.check_ids)

    def __repr__(self) -> str:
        return f"mlm_jax.MLM({self.config}, check_ids={self.check_ids})"
