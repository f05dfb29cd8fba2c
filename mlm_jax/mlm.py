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
from mlm_ref.validation import check_no_compat, special_ids

from .inputs import check_input
from .keys import as_key
from .wwm import mask_words

__all__ = ["MLM", "mask_tokens", "mask_tokens_jit", "check_input"]

# A handful of excluded ids are skipped with compares; more are looked up in a table.
_MAX_EXCLUDE_COMPARES = 16


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
