"""Masked-language-model masking in JAX: a pure, jit-compiled function of the ids and a key.

The algorithm is the one taught in `mlm_ref.mlm`. In JAX randomness is an explicit argument, so
the native path *is* the exact path of the contract (section 4): `split(key, 3)` into a key for
selection, one for the category and one for the random id, each drawn over the whole shape.
The NumPy and PyTorch backends re-implement these draws and return the same bits for the same
key.

`mask_tokens` validates its inputs in Python, then calls `_mask_tokens`, which is jit-compiled
with the (hashable, frozen) config as a static argument: one compilation per config, shape and
dtype.
"""

from __future__ import annotations

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np

from mlm_ref.config import MaskingConfig

__all__ = ["MLM", "mask_tokens", "as_key", "check_input"]

# Traced values (inside a caller's jit) cannot be checked; `jax.core.Tracer` is the public
# name, with the private one as a fallback should a later release move it.
_TRACER = getattr(jax.core, "Tracer", None) or \
    importlib.import_module("jax._src.core").Tracer

# A handful of excluded ids are skipped with compares; more are looked up in a table.
_MAX_EXCLUDE_COMPARES = 16


def check_input(x, config: MaskingConfig, *, check_ids: bool = True) -> jax.Array:
    """Return `x` as a JAX array after checking it against the contract's input rules.

    Values can only be checked when `x` is concrete; under an outer `jax.jit` the negative-id
    check is skipped (a traced value cannot raise).

    Raises:
        TypeError: not an integer array, a dtype too small for the ids, or an int64 NumPy
            array while JAX's 64-bit mode is off (it would silently become int32).
        ValueError: rank 0, or negative token ids.
    """
    dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
        raise TypeError(f"x must hold integer token ids, got dtype {dtype}")
    x = jnp.asarray(x)
    if x.dtype != dtype:
        raise TypeError(f"x has dtype {dtype}, which JAX turns into {x.dtype} because 64-bit "
                        f"mode is off; enable it (jax.config.update('jax_enable_x64', True)) "
                        f"or pass {x.dtype} ids")
    if x.ndim == 0:
        raise ValueError("x must have rank >= 1 (documented layout [seq_len, batch]), "
                         "got a scalar")
    if np.iinfo(dtype).max < config.max_output_id:
        raise TypeError(f"x dtype {dtype} cannot hold token id {config.max_output_id} "
                        f"(n_tokens={config.n_tokens}, mask_token={config.mask_token}, "
                        f"padding_token={config.padding_token})")
    if check_ids and x.size and np.issubdtype(dtype, np.signedinteger):
        if isinstance(x, _TRACER):
            return x  # traced inside the caller's jit: values unknown until run time
        lowest = int(jnp.min(x))
        if lowest < 0:
            raise ValueError(f"x must hold non-negative token ids, found {lowest}")
    return x


def as_key(key) -> jax.Array:
    """A typed JAX key from a typed key, raw `uint32[2]` threefry key data, or an int seed."""
    if key is None:
        raise TypeError("key is required: a JAX key, an int seed or uint32[2] key data")
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"key must be a JAX key, an int seed or uint32[2] key data, got {key!r}")
    if isinstance(key, (int, np.integer)):
        # What jax.random.key(seed) gives in JAX's default 32-bit mode, (0, seed mod 2**32),
        # spelled out so that the meaning of a seed does not change when x64 mode is on.
        if not -2**63 <= int(key) < 2**63:
            raise ValueError(f"an int key (seed) must fit in int64, got {key}")
        key = [0, int(key) % 2**32]
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single key, got a key array of shape {key.shape}")
        return key
    data = np.asarray(key)
    if data.shape != (2,) or not np.issubdtype(data.dtype, np.integer) or \
            data.min() < 0 or data.max() > 0xFFFFFFFF:
        raise ValueError(f"raw key data must be two uint32 values (threefry2x32), "
                         f"got {key!r}")
    return jax.random.wrap_key_data(jnp.asarray(data, dtype=jnp.uint32), impl="threefry2x32")


def _eligible(x: jax.Array, config: MaskingConfig) -> jax.Array:
    # ids beyond the dtype's range cannot occur in x and cannot be represented in a compare
    fits = [t for t in config.ineligible_tokens if t <= np.iinfo(x.dtype).max]
    return ~jnp.isin(x, jnp.asarray(fits, dtype=x.dtype))


def _random_ids(key: jax.Array, shape, config: MaskingConfig) -> jax.Array:
    t = jax.random.randint(key, shape, 0, config.n_random, dtype=jnp.int32)
    if len(config.random_exclude) > _MAX_EXCLUDE_COMPARES:
        return jnp.asarray(config.random_ids(), dtype=jnp.int32)[t]
    for excluded in config.random_exclude:  # sorted: each excluded id at or below t pushes it
        t = t + (t >= excluded).astype(t.dtype)
    return t


@functools.partial(jax.jit, static_argnames="config")
def _mask_tokens(x: jax.Array, key: jax.Array, config: MaskingConfig):
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
    return _mask_tokens(x, as_key(key), config)


class MLM:
    """BERT's masked-language-model masking (JAX).

    Args:
        padding_token: id of `[PAD]`; never masked, and the label of unselected positions.
        mask_token: id of `[MASK]`.
        no_mask_tokens: ids never masked, such as `[CLS]` and `[SEP]`.
        n_tokens: vocabulary size, the range of random replacements.
        masking_prob: probability that an eligible token is selected (0.15).
        randomize_prob: probability that a selected token becomes a random token (0.1).
        no_change_prob: probability that a selected token is left unchanged (0.1).
        random_exclude: ids never drawn as random replacements (none by default).
        check_ids: check for negative ids on every (non-traced) call.

    Call it as `x_masked, y = mlm(x, key=key)`. The instance holds only the static config,
    so calling it inside your own `jax.jit` works.
    """

    def __init__(self, *, padding_token: int, mask_token: int, no_mask_tokens=(),
                 n_tokens: int, masking_prob: float = 0.15, randomize_prob: float = 0.1,
                 no_change_prob: float = 0.1, random_exclude=(), check_ids: bool = True):
        self.config = MaskingConfig(
            padding_token=padding_token, mask_token=mask_token, no_mask_tokens=no_mask_tokens,
            n_tokens=n_tokens, masking_prob=masking_prob, randomize_prob=randomize_prob,
            no_change_prob=no_change_prob, random_exclude=random_exclude)
        self.check_ids = bool(check_ids)

    def __call__(self, x, *, key):
        return mask_tokens(x, self.config, key=key, check_ids=self.check_ids)

    def __repr__(self) -> str:
        return f"mlm_jax.MLM({self.config}, check_ids={self.check_ids})"
