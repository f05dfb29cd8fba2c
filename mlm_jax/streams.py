"""Stateless streams in JAX: per-example keys, and a padded batch masked one key per row.

The derivation and the purpose tags are `mlm_ref.streams`' (docs/contract.md, section
Streams): `key(seed, purpose, epoch, index) = fold_in(fold_in(fold_in(key(seed), tag), epoch),
index)`, here with `jax.random.fold_in` itself. `mask_rows` is `jax.vmap` of the backend's
masking over the rows and their keys: each row draws over its own positions only, exactly as
it would alone.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mlm_ref.config import MaskingConfig
from mlm_ref.streams import check_indices, purpose_tag
from mlm_ref.validation import check_word

from .keys import derive_key
from .inputs import check_rows
from .mlm import mask_tokens_jit

__all__ = ["example_keys", "mask_rows", "mask_rows_jit"]


def example_keys(seed, epoch: int, indices, purpose="mlm") -> jax.Array:
    """The exact-mode keys of examples `indices` in `epoch`, one per example.

    Args:
        seed: a JAX key, an int seed or key data (the rule of `mlm_ref.keys`).
        epoch: integer in `[0, 2**32)`.
        indices: the examples' indices (concrete integers in `[0, 2**32)`).
        purpose: `"mlm"`, `"nsp"`, `"eval"` or a uint32 tag.

    Returns:
        uint32 [n, 2] key data, equal to `mlm_ref.streams.example_keys(...)`.
    """
    tag, epoch = purpose_tag(purpose), check_word(epoch, "epoch")
    # an int seed is the common case, once per batch: its epoch key is kept
    base = _epoch_key(seed, tag, epoch) if type(seed) is int else derive_key(seed, tag, epoch)
    idx = jnp.asarray(check_indices(indices))                            # uint32 [n]
    return _fold_rows(base, idx)


@functools.lru_cache(maxsize=64)
def _epoch_key(seed: int, tag: int, epoch: int) -> jax.Array:
    """`fold_in(fold_in(key(seed), tag), epoch)`, kept (callers only read it)."""
    return derive_key(seed, tag, epoch)


@jax.jit
def _fold_rows(base: jax.Array, idx: jax.Array) -> jax.Array:
    """`fold_in(base, i)` for each index, as key data [n, 2]: one compiled call instead of a
    dispatch per operation."""
    return jax.vmap(lambda i: jax.random.key_data(jax.random.fold_in(base, i)))(idx)


@functools.partial(jax.jit, static_argnames="config")
def mask_rows_jit(x: jax.Array, row_keys: jax.Array, config: MaskingConfig):
    """`mask_rows` without its checks: `x` [batch, seq], `row_keys` uint32 [batch, 2]."""
    keys = jax.random.wrap_key_data(row_keys, impl="threefry2x32")      # [batch] typed keys
    return jax.vmap(lambda row, key: mask_tokens_jit(row, key, config))(x, keys)


def mask_rows(x, row_keys, config: MaskingConfig, *, check_ids: bool = True):
    """Mask each row of a padded batch with its own key, in one vectorised call.

    Args:
        x: token ids `[batch, seq]` (JAX or NumPy), padded with `config.padding_token`.
        row_keys: key data `[batch, 2]`, uint32 (or int32 bit patterns, or integers in
            `[0, 2**32)`), e.g. `example_keys(...)`.
        config: the masking parameters.
        check_ids: raise on negative ids (only when `x` is concrete).

    Returns:
        `(x_masked, y)`: JAX arrays like `x`; row `r` equals `mask_tokens(x[r], config,
        key=row_keys[r])`, and its first `n` positions those of `x[r, :n]` masked alone.

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    x, keys = check_rows(x, row_keys, config, check_ids=check_ids)
    return mask_rows_jit(x, keys, config)
