"""JAX's threefry2x32 PRNG in NumPy, bit for bit (exact mode, docs/exact-mode.md).

`jax.random` with its default implementation is a counter-based generator: every output word
is `threefry2x32(key, counter)` for a counter derived from the output's position, so any
backend that can do unsigned 32-bit arithmetic can reproduce it. This module follows JAX's
default layout, `jax_threefry_partitionable=True` (the default since jax 0.5, still in 0.10),
and JAX's default 32-bit mode (`jax_enable_x64=False`). See docs/exact-prng.md.

Arithmetic is on `np.uint32` *arrays*, where additions wrap modulo 2**32 silently. NumPy warns
about overflow only for operations on scalars, so everything here runs on flat 1-d arrays and
is reshaped at the end, and the key schedule is computed with Python ints.

Keys are raw key data, `uint32[2]`, exactly `jax.random.key_data(k)`.
"""

from __future__ import annotations

import numpy as np

from .keys import fold_indices, key_words
from .validation import check_count, check_int32, check_shape, check_word

__all__ = ["threefry2x32", "key_data", "split", "fold_in", "derive_key", "random_bits",
           "uniform", "randint", "bits_at", "uniform_from_bits", "randint_from_bits",
           "split_rows", "row_bits"]

MASK32 = 0xFFFFFFFF
# Threefish's key-schedule parity constant, as used by Random123 for 32-bit words.
PARITY32 = 0x1BD11BDA
# Rotation distances of Threefry-2x32: rounds 1-4 of every even group use the first row,
# rounds of every odd group the second.
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _injections(key: np.ndarray) -> list[tuple[np.uint32, np.uint32]]:
    """The six key injections of the 20-round schedule, as `(add_to_x0, add_to_x1)` pairs.

    Injection `s` (0..5) adds `ks[s % 3]` to word 0 and `ks[(s + 1) % 3] + s` to word 1, where
    `ks = (k0, k1, k0 ^ k1 ^ PARITY32)`. Computed in Python ints so nothing warns on wrap.
    """
    if key.ndim == 2:  # m keys [m, 2], one per row of the counters: uint32 [m, 1] arrays
        k0, k1 = key[:, :1].astype(np.uint32), key[:, 1:].astype(np.uint32)
        ks = (k0, k1, k0 ^ k1 ^ np.uint32(PARITY32))
        return [(ks[s % 3], ks[(s + 1) % 3] + np.uint32(s)) for s in range(6)]  # wraps
    k0, k1 = int(key[0]), int(key[1])
    ks = (k0, k1, k0 ^ k1 ^ PARITY32)
    return [(np.uint32(ks[s % 3]), np.uint32((ks[(s + 1) % 3] + s) & MASK32))
            for s in range(6)]


def _threefry_flat(key: np.ndarray, x0: np.ndarray, x1: np.ndarray):
    """Threefry-2x32 with 20 rounds on two equal-length 1-d uint32 arrays (consumed).

    Args:
        key: uint32[2]; or uint32[m, 2], one key per row of `x0`, `x1` of shape [m, n].
        x0, x1: uint32[n] counter words; they are overwritten.

    Returns:
        `(y0, y1)`, uint32[n] each (the same buffers as `x0`, `x1`).
    """
    inj = _injections(key)
    x0 += inj[0][0]
    x1 += inj[0][1]
    tmp = np.empty_like(x1)                                          # [n], reused by every round
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 += x1                                                 # mix: add ...
            np.left_shift(x1, r, out=tmp)                            # ... rotate left by r ...
            x1 >>= 32 - r                                            # (uint32: a logical shift)
            x1 |= tmp
            x1 ^= x0                                                 # ... and xor
        x0 += inj[group + 1][0]
        x1 += inj[group + 1][1]
    return x0, x1


def threefry2x32(key, x0, x1) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 block function (20 rounds), vectorised over counter pairs.

    Args:
        key: anything `key_data` accepts.
        x0, x1: uint32-valued array-likes (broadcast together), the two counter words.

    Returns:
        `(y0, y1)`, two uint32 arrays of the broadcast shape.
    """
    key = key_data(key)
    x0, x1 = np.broadcast_arrays(_as_uint32(x0, "x0"), _as_uint32(x1, "x1"))
    shape = x0.shape
    y0, y1 = _threefry_flat(key, x0.ravel().copy(), x1.ravel().copy())
    return y0.reshape(shape), y1.reshape(shape)


def _as_uint32(x, name: str) -> np.ndarray:
    """`x` as a uint32 array, refusing values that do not fit instead of wrapping them."""
    x = np.asarray(x)
    if x.dtype != np.uint32:
        if x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() > MASK32)):
            raise ValueError(f"{name} must hold integers in [0, 2**32), got {x!r}")
        x = x.astype(np.uint32)
    return x


def key_data(key) -> np.ndarray:
    """Raw threefry key data `uint32[2]` from an int seed or from key data.

    The rule is `mlm_ref.keys` (the same in every backend): an int seed means
    `jax.random.key(seed)` under JAX's default 32-bit mode, `(0, seed mod 2**32)`; key data is
    two uint32 words (int32 words as bit patterns). With `jax_enable_x64` JAX would put
    `seed >> 32` in word 0 instead; the backends do not follow that switch.

    Args:
        key: an int seed or an array-like of two integers (e.g. `jax.random.key_data(k)` or
            `jax.random.PRNGKey(seed)`).

    Returns:
        uint32[2], a fresh array.
    """
    return np.array(key_words(key), dtype=np.uint32)


def _counters(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """The partitionable layout: element `i` (row-major) gets the 64-bit counter `i`.

    Returns:
        `(hi, lo)`, uint32[stop - start] each: the high and the low 32 bits of `start .. stop-1`.
    """
    if stop <= 2**32:
        return np.zeros(stop - start, np.uint32), np.arange(start, stop, dtype=np.uint32)
    i = np.arange(start, stop, dtype=np.uint64)
    return (i >> np.uint64(32)).astype(np.uint32), (i & np.uint64(MASK32)).astype(np.uint32)


def _hash_positions(key, shape) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Both output words of threefry over the counters of `shape`, flat."""
    key, shape = key_data(key), check_shape(shape)
    y0, y1 = _threefry_flat(key, *_counters(0, int(np.prod(shape, dtype=np.int64))))
    return shape, y0, y1


def bits_at(key, start: int, stop: int) -> np.ndarray:
    """`random_bits(key, shape).ravel()[start:stop]` for any shape of at least `stop` elements.

    A position's bits depend only on the key and its flat index, so a draw over a large shape
    can be computed a slice at a time, in memory proportional to the slice.

    Returns:
        uint32[stop - start].
    """
    start, stop = check_count(start, "start"), check_count(stop, "stop")
    y0, y1 = _threefry_flat(key_data(key), *_counters(start, max(start, stop)))
    y0 ^= y1
    return y0


def split(key, num: int = 2) -> np.ndarray:
    """`jax.random.split(key, num)` as key data: key `i` is both words of the hash of counter i.

    Args:
        key: anything `key_data` accepts.
        num: number of keys, >= 0.

    Returns:
        uint32[num, 2].
    """
    _, y0, y1 = _hash_positions(key, (check_count(num, "num"),))
    return np.stack([y0, y1], axis=1)                                # [num, 2]


def fold_in(key, data: int) -> np.ndarray:
    """`jax.random.fold_in(key, data)` as key data: the hash of the counter pair `(0, data)`.

    Args:
        key: anything `key_data` accepts.
        data: an integer in [0, 2**32).

    Returns:
        uint32[2].
    """
    data = check_word(data, "data")
    y0, y1 = threefry2x32(key, np.zeros(1, np.uint32), np.array([data], np.uint32))
    return np.concatenate([y0, y1])


def derive_key(key, *indices: int) -> np.ndarray:
    """Fold each index into `key` in turn, `fold_in(fold_in(key, i0), i1)`..., e.g. step, rank.

    Args:
        key: anything `key_data` accepts.
        *indices: integers in [0, 2**32).

    Returns:
        uint32[2]; `key_data(key)` itself when no index is given.
    """
    return fold_indices(key_data(key), indices, fold_in)


def random_bits(key, shape) -> np.ndarray:
    """`jax.random.bits(key, shape, jnp.uint32)`: the xor of the two words of each hash.

    Args:
        key: anything `key_data` accepts.
        shape: tuple of non-negative ints, `()` included.

    Returns:
        uint32 array of `shape`.
    """
    shape, y0, y1 = _hash_positions(key, shape)
    y0 ^= y1
    return y0.reshape(shape)


def uniform(key, shape) -> np.ndarray:
    """`jax.random.uniform(key, shape, jnp.float32)`: floats in [0, 1) from 23 random bits.

    The top 23 bits become the mantissa of a float in [1, 2) (exponent bits of 1.0); subtracting
    1 is exact. (JAX then computes `max(0, f * (1 - 0) + 0)`, which leaves `f` unchanged.)

    Args:
        key: anything `key_data` accepts.
        shape: tuple of non-negative ints.

    Returns:
        float32 array of `shape`, values in [0, 1) on a grid of 2**-23.
    """
    return uniform_from_bits(random_bits(key, shape))


def uniform_from_bits(bits: np.ndarray) -> np.ndarray:
    """uint32 bits (overwritten) -> float32 in [0, 1), as `jax.random.uniform` maps them."""
    bits >>= 9
    bits |= np.float32(1.0).view(np.uint32)                          # 0x3F800000
    floats = bits.view(np.float32)
    floats -= np.float32(1.0)
    return floats


def randint(key, shape, minval: int, maxval: int) -> np.ndarray:
    """`jax.random.randint(key, shape, minval, maxval, dtype=jnp.int32)`.

    JAX splits the key in two, draws 32 bits from each (`hi`, `lo`) and reduces the 64-bit
    number `hi * 2**32 + lo` modulo `span = maxval - minval` (1 when `maxval <= minval`) using
    `m = ((2**16 mod span)**2) mod span`, all in wrapping uint32 arithmetic:
    `((hi % span) * m + lo % span) % span`. The wraps are part of the result, so they are kept;
    one of them makes `m` zero for every span above 2**16 (the square is 2**32, which wraps to
    0), so there only `lo` matters.

    Args:
        key: anything `key_data` accepts.
        shape: tuple of non-negative ints.
        minval, maxval: ints in the int32 range (JAX, in its default 32-bit mode, raises
            OverflowError on others).

    Returns:
        int32 array of `shape`, in [minval, maxval) (all `minval` if `maxval <= minval`).
    """
    minval, maxval = check_int32(minval, "minval"), check_int32(maxval, "maxval")
    shape = check_shape(shape)
    k_hi, k_lo = split(key, 2)
    hi, lo = random_bits(k_hi, shape).ravel(), random_bits(k_lo, shape).ravel()
    return randint_from_bits(hi, lo, minval, maxval).reshape(shape)


def randint_from_bits(hi: np.ndarray, lo: np.ndarray, minval: int, maxval: int) -> np.ndarray:
    """`randint`'s values from the bits of its two keys, `split(key, 2)` (both overwritten).

    Returns:
        int32, shaped like `hi` (a view of its buffer).
    """
    span = np.uint32((maxval - minval) if maxval > minval else 1)
    multiplier = np.uint32((((2**16 % int(span)) ** 2) & MASK32) % int(span))  # wraps too
    hi %= span
    hi *= multiplier                                                 # may wrap, as in JAX
    lo %= span
    hi += lo                                                         # may wrap, as in JAX
    hi %= span
    out = hi.view(np.int32)                                          # offset < 2**32, as int32
    out += np.int32(minval)                                          # wraps back into range
    return out


def _row_keys(keys) -> np.ndarray:
    """Key data of m keys as uint32[m, 2], refusing anything else."""
    keys = np.asarray(keys)
    if keys.ndim != 2 or keys.shape[1] != 2:
        raise ValueError(f"row keys must be key data of shape [m, 2], got shape {keys.shape}")
    return _as_uint32(keys, "row keys")


def split_rows(keys, num: int = 2) -> np.ndarray:
    """`split(key, num)` of each of m keys, side by side: uint32 [m, num, 2]."""
    keys, num = _row_keys(keys), check_count(num, "num")
    lo = np.broadcast_to(np.arange(num, dtype=np.uint32), (len(keys), num)).copy()
    y0, y1 = _threefry_flat(keys, np.zeros_like(lo), lo)            # [m, num] each
    return np.stack([y0, y1], axis=-1)                               # [m, num, 2]


def row_bits(keys, n: int) -> np.ndarray:
    """`random_bits(key, (n,))` of each of m keys, side by side: uint32 [m, n]."""
    keys, n = _row_keys(keys), check_count(n, "n")
    lo = np.broadcast_to(np.arange(n, dtype=np.uint32), (len(keys), n)).copy()
    y0, y1 = _threefry_flat(keys, np.zeros_like(lo), lo)
    y0 ^= y1
    return y0
