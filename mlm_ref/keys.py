"""What `key=` may be, written once: the key rule of exact mode for every backend.

A key is either

* an **int seed** `K`: a Python int that fits in int64 (as JAX requires), a NumPy integer of
  any width, or a 0-d integer array. It means `jax.random.key(K)` in JAX's default 32-bit mode,
  whose key data is `(0, K mod 2**32)`, negative seeds included; or
* **raw key data**: an integer array-like of shape `(2,)`, e.g. `jax.random.key_data(k)`, a
  legacy `jax.random.PRNGKey(...)`, a list, a NumPy array or a tensor. uint32 words are taken
  as they are and int32 words as the uint32 with the same bits (their value mod 2**32); other
  integer dtypes must hold values in `[0, 2**32)`.

Everything else is refused: `None`, bools and non-integer values (`3.0`, `"0"`, float arrays)
with `TypeError`; a seed outside int64, key data of another shape or with words out of range
with `ValueError`. The JAX backend also accepts a typed JAX key.

`key_words` applies the rule to values on the host. `check_key_meta` applies the part of it that
needs no values to an array whose values cannot be read without a cost (on an accelerator) or
at all (traced by `jax.jit`); such key data is taken modulo 2**32, unchecked.
"""

from __future__ import annotations

import numbers

import numpy as np

from .validation import check_word

__all__ = ["key_words", "check_key_meta", "fold_indices", "KEY_FORMS"]

MASK32 = 0xFFFFFFFF
KEY_FORMS = "an int seed or two uint32 words of key data"


def key_words(key) -> tuple[int, int]:
    """The two uint32 words of a key given on the host, by the rule of the module docstring.

    Args:
        key: an int seed or raw key data (anything `np.asarray` turns into integers).

    Returns:
        `(k0, k1)`, Python ints in `[0, 2**32)`.

    Raises:
        TypeError: `None`, a bool, or anything that is not integers.
        ValueError: a Python int seed outside int64; key data not of shape (2,) or with a word
            outside `[0, 2**32)` (int32 words excepted: they are bit patterns).
    """
    if key is None:
        raise TypeError(f"key is required: {KEY_FORMS}")
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"key must be {KEY_FORMS}, got the bool {key!r}")
    if isinstance(key, numbers.Integral):
        if isinstance(key, int) and not -(2**63) <= key < 2**63:
            raise ValueError(f"key: an int seed must fit in int64 (as in JAX), got {key}")
        return 0, int(key) & MASK32
    try:
        data = np.asarray(key)
    except Exception as e:  # e.g. a typed JAX key or a tensor on an accelerator
        raise TypeError(f"key must be {KEY_FORMS}, got {type(key).__name__}") from e
    if data.dtype == object and data.shape == (2,) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            for v in data.tolist()):
        values = [int(v) for v in data.tolist()]         # Python ints too large for int64
    else:
        if check_key_meta(data.shape, data.dtype.kind, str(data.dtype)) == "seed":
            return 0, int(data) & MASK32
        if data.dtype == np.int32:
            return tuple(int(v) & MASK32 for v in data.tolist())
        values = [int(v) for v in data.tolist()]
    if not all(0 <= v <= MASK32 for v in values):
        raise ValueError(f"key data must be two uint32 words, each in [0, 2**32), "
                         f"got {values}")
    return values[0], values[1]


def check_key_meta(shape: tuple, kind: str, dtype_name: str) -> str:
    """The rule's checks that need no values: `"seed"` for a 0-d key, `"data"` for `(2,)`.

    Args:
        shape: the key array's shape.
        kind: its dtype's NumPy kind character (`"i"`, `"u"`, `"b"`, `"f"`, ...).
        dtype_name: the dtype as the caller's framework spells it (for messages).

    Raises:
        TypeError: not an integer dtype.
        ValueError: a shape other than `()` and `(2,)`.
    """
    if kind not in "iu" or kind == "":
        raise TypeError(f"key must be {KEY_FORMS}, got an array of dtype {dtype_name}")
    shape = tuple(shape)
    if shape == ():
        return "seed"
    if shape != (2,):
        raise ValueError(f"key data must be two uint32 words (shape (2,)), "
                         f"got shape {shape}")
    return "data"


def fold_indices(key, indices, fold_in):
    """`derive_key`, written once: fold each index into `key` in turn with the backend's
    `fold_in`, `fold_in(fold_in(key, i0), i1)`... (e.g. the training step, then the rank).

    Raises:
        ValueError: an index that is not an integer in `[0, 2**32)`.
    """
    for index in indices:
        key = fold_in(key, check_word(index, "indices"))
    return key
