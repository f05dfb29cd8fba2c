"""Keys for the JAX backend: `key=` as a typed JAX key, and derived per-step, per-rank keys.

`as_key` applies the key rule of `mlm_ref.keys` (the same accepted forms, exception types and
messages in every backend) and also accepts a typed JAX key. Under `jax.jit` or `jax.vmap` a key
given as raw key data or an int seed is a traced array whose values cannot be read: its dtype
and shape are checked as the rule says, and its words are converted with JAX ops (modulo
2**32), so `mlm(x, key=jax.random.PRNGKey(0))` works inside the caller's transformations too.

`derive_key(key, step, rank)` here, in `mlm_ref.threefry` and in `mlm_torch.threefry` give the
same key, so a data pipeline can derive each step's masking key the same way in every backend.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np

from mlm_ref.keys import check_key_meta, fold_indices, key_words

__all__ = ["as_key", "derive_key", "TRACER"]

# Traced values (inside a caller's jit or vmap) cannot be read; `jax.core.Tracer` is the public
# name, with the private module as a fallback should a later release move it.
TRACER = getattr(jax.core, "Tracer", None) or importlib.import_module("jax._src.core").Tracer


def as_key(key) -> jax.Array:
    """A typed JAX key from a typed key, raw `uint32[2]` threefry key data, or an int seed.

    Raises:
        TypeError: `None`, a bool, or a key that is not integers (`3.0`, `"0"`).
        ValueError: a key array of several typed keys, an int seed outside int64, or key data
            not of shape (2,) or with a word outside `[0, 2**32)`.
    """
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single key, got a key array of shape {key.shape}")
        return key
    if isinstance(key, TRACER):                  # values unknown until run time
        form = check_key_meta(key.shape, np.dtype(key.dtype).kind, str(key.dtype))
        words = jax.lax.convert_element_type(key, jnp.uint32)           # modulo 2**32
        if form == "seed":
            words = jnp.stack([jnp.zeros((), jnp.uint32), words])
        return jax.random.wrap_key_data(words, impl="threefry2x32")
    # What jax.random.key(seed) gives in JAX's default 32-bit mode, (0, seed mod 2**32), spelled
    # out so that the meaning of a seed does not change when x64 mode is on.
    words = np.array(key_words(key), dtype=np.uint32)
    return jax.random.wrap_key_data(jnp.asarray(words), impl="threefry2x32")


def derive_key(key, *indices: int) -> jax.Array:
    """Fold each index into `key` in turn: `fold_in(fold_in(key, i0), i1)`...

    Args:
        key: a JAX key, an int seed or raw `uint32[2]` threefry key data.
        *indices: non-negative integers below 2**32, e.g. the training step and the data rank.

    Returns:
        A typed JAX key.
    """
    return fold_indices(as_key(key), indices, jax.random.fold_in)
