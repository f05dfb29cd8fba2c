"""JAX's threefry2x32 PRNG in PyTorch, bit for bit, on CPU and CUDA (docs/exact-mode.md).

The same functions and results as `mlm_ref.threefry` (read that module and docs/exact-prng.md
for what JAX computes); this file is about computing it fast with torch and without ever
waiting on the device, so it can run inside a training step.

**Why int32.** torch's `uint32` has no add, shift or compare kernels on the CPU (torch 2.11
to 2.13), so the words live in `int32` tensors as two's-complement bit patterns: add, xor, or
and left shift give the unsigned bits; the arithmetic right shift's sign copies are masked off.
(uint32 values in int64 would move twice the bytes and need a mask after every add.)

**Why few kernels.** A round is six in-place kernels on preallocated buffers (add, shift, and,
shift, or, xor): ~130 kernels per hash, no allocation in the loop, and key arithmetic on the
key's device as tiny tensors (no `.item()`, no host copies, no data-dependent shapes).

**Dtypes.** Key data: int64[2] holding the two uint32 values. Bit outputs (`threefry2x32`,
`random_bits`): `torch.uint32` views of int32 buffers. `uniform`: float32. `randint`: int32.

**On the CPU** the rounds run on the host (`mlm_torch.threefry_host`, the same bits): NumPy's
uint32 for counters (`counter_bits`, `keyed_bits`, `split_rows`), where a call costs a third of
a torch call, the rotation needs no mask, and no call waits on torch's intra-op thread pool.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from mlm_ref.keys import check_key_meta, fold_indices, key_words
from mlm_ref.validation import check_count, check_int32, check_shape, check_word

from .threefry_host import MASK32, PARITY32, ROTATIONS, threefry2x32_int, threefry2x32_numpy

__all__ = ["threefry2x32", "key_data", "split", "fold_in", "derive_key", "random_bits",
           "uniform", "randint", "split_rows", "keyed_bits", "threefry2x32_numpy",
           "threefry2x32_int", "counter_bits"]


def _signed(v: int) -> int:
    """A uint32 value as the int32 with the same bits."""
    return ((v & MASK32) ^ 2**31) - 2**31


def _to_i32(t: torch.Tensor) -> torch.Tensor:
    """int64 tensor -> int32 tensor with the low 32 bits, computed without relying on overflow."""
    return ((t & MASK32) ^ 2**31).sub_(2**31).to(torch.int32)


def _to_u32_in_i64(t: torch.Tensor) -> torch.Tensor:
    """int32 bit patterns -> int64 tensor of the uint32 values."""
    return t.to(torch.int64).bitwise_and_(MASK32)


def _injections(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The six key injections: injection s adds `ks[s % 3]` to word 0, `ks[(s+1) % 3] + s` to word 1.

    Args:
        key: int64[2] key data (uint32 values) on the target device, or int64[m, 2] for m keys
            hashed side by side (each row of the counters gets its own key).

    Returns:
        `(add0, add1)`, int32[6] each (int32[6, m, 1] for m keys, to broadcast over rows), on
        the key's device (computed there: no host sync).
    """
    words = _to_i32(key)                                # the key's words as int32 bits
    k0, k1 = words[..., 0], words[..., 1]
    ks = torch.stack([k0, k1, k0 ^ k1 ^ PARITY32])                          # int32[3, ...]
    s = torch.arange(6, dtype=torch.int32, device=key.device).view(6, *(1,) * k0.dim())
    # int32 arithmetic wraps as uint32 does; rows (0, 1, 2, 0, 1, 2) and (1, 2, 0, ...) are
    # a repeat and a roll, cheap where an index list would gather (m keys: large tensors)
    rep = (2, *(1,) * k0.dim())
    add0, add1 = ks.repeat(rep), ks.roll(-1, 0).repeat(rep).add_(s)
    return (add0, add1) if key.dim() == 1 else (add0[..., None], add1[..., None])


@functools.lru_cache(maxsize=16)
def _rotation_operands(device: torch.device) -> dict[int, tuple[torch.Tensor, ...]]:
    """Per device, for each rotation r: `(r, 32 - r, 2**r - 1)` as 0-d int32 tensors (a
    Python int operand would be converted on every call: three of a round's kernels take one)."""
    return {r: tuple(torch.tensor(v, dtype=torch.int32, device=device)
                     for v in (r, 32 - r, (1 << r) - 1))
            for r in sorted(set(ROTATIONS[0] + ROTATIONS[1]))}


def _threefry_i32(key: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor):
    """Threefry-2x32, 20 rounds, on int32 bit patterns.

    Args:
        key: int64[2] key data on the device of `x1`.
        x0: int32 counter word 0, broadcastable to `x1` (a 0-d zero when counters fit 32 bits).
        x1: int32 counter word 1, full size; owned by the caller and overwritten.

    Returns:
        `(y0, y1)`, int32 tensors of `x1`'s shape (`y1` is `x1`'s buffer).
    """
    add0, add1 = (a.unbind(0) for a in _injections(key))
    operands = _rotation_operands(x1.device)
    x0 = x0 + add0[0]                                   # may still be 0-d, broadcast below
    x1.add_(add1[0])
    tmp = torch.empty_like(x1)                          # the rotation's spare buffer
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            left, right, low_bits = operands[r]
            x0 = x0.add_(x1) if x0.shape == x1.shape else x1 + x0   # mix: add ...
            torch.bitwise_right_shift(x1, right, out=tmp)            # ... rotate left by r:
            tmp.bitwise_and_(low_bits)                               # (drop the sign copies)
            x1.bitwise_left_shift_(left).bitwise_or_(tmp)
            x1.bitwise_xor_(x0)                                      # ... and xor
        x0.add_(add0[group + 1])
        x1.add_(add1[group + 1])
    return x0, x1


def key_data(key, device=None) -> torch.Tensor:
    """Raw threefry key data from an int seed or from key data, as int64[2] uint32 values.

    The rule is `mlm_ref.keys` (the same in every backend): an int seed means
    `jax.random.key(seed)` in JAX's default 32-bit mode, `(0, seed mod 2**32)`; key data is two
    uint32 words (int32 words as bit patterns) as a tensor, sequence or NumPy array. A tensor
    already on an accelerator is checked for dtype and shape only and its words taken modulo
    2**32 (checking values would read it back to the host).

    Args:
        key: an int seed or key data of shape (2,).
        device: where the key lives; default the key tensor's device, else CPU.

    Returns:
        int64 tensor of shape [2], on `device`.
    """
    if device is None:
        device = key.device if isinstance(key, torch.Tensor) else torch.device("cpu")
    if isinstance(key, torch.Tensor) and key.device.type != "cpu":
        kind = ("b" if key.dtype == torch.bool else
                "f" if key.dtype.is_floating_point or key.dtype.is_complex else
                "i" if key.is_signed() else "u")
        form = check_key_meta(tuple(key.shape), kind, str(key.dtype))
        bits = key.view(torch.int32) if key.dtype == torch.uint32 else key
        bits = (_to_u32_in_i64(bits) if bits.dtype == torch.int32
                else bits.to(torch.int64) & MASK32).to(device)
        return torch.stack([torch.zeros_like(bits), bits]) if form == "seed" else bits
    k0, k1 = key_words(key)
    out = torch.full((2,), k0, dtype=torch.int64, device=device)   # a fill, not a host copy
    out[1] = k1
    return out


def _bits_i32(key, shape, device) -> tuple[tuple[int, ...], torch.Tensor]:
    """JAX's 32-bit random bits over `shape`, flat, as int32 bit patterns."""
    key, shape = key_data(key, device), check_shape(shape)
    return shape, counter_bits(key, math.prod(shape))


def counter_bits(key: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """The bits of counters start..start+n-1 under `key`: int32 [n], or [m, n] for key data
    [m, 2].

    Partitionable layout: flat (row-major) element i hashes the 64-bit counter i, split into
    words (hi, lo); the bits are the xor of the two output words. m keys go through the rounds
    side by side: the kernels of one hash, each on m times the data. Where a kernel's cost is
    its launch (small batches, a CPU), that saves m - 1 launches per kernel; where it is its
    data, it saves nothing and costs nothing. (Timings: `python -m verify.bench`.)
    """
    rows = key.shape[:-1]                            # () or (m,)
    if key.device.type == "cpu" and start + n <= 2**32:             # NumPy's rounds
        k = key.numpy().astype(np.uint32)[..., None]                 # [(m,) 2, 1]
        y0, y1 = threefry2x32_numpy(k[..., 0, :], k[..., 1, :],
                                    np.arange(start, start + n, dtype=np.uint32))
        return torch.from_numpy((y0 ^ y1).view(np.int32).reshape(*rows, n))
    if start + n <= 2**31:                           # hi word is 0 everywhere: a 0-d zero
        hi = torch.zeros((), dtype=torch.int32, device=key.device)
        lo = torch.arange(start, start + n, dtype=torch.int32, device=key.device)
    else:
        i = torch.arange(start, start + n, dtype=torch.int64, device=key.device)
        hi, lo = (i >> 32).to(torch.int32), _to_i32(i)
    if rows:                                         # each row's counters, overwritten below
        lo = lo.expand(*rows, n).clone()
    y0, y1 = _threefry_i32(key, hi, lo)              # both full size after the first round
    return y0.bitwise_xor_(y1)


def threefry2x32(key, x0, x1, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The Threefry-2x32 block function (20 rounds), vectorised over counter pairs.

    Args:
        key: anything `key_data` accepts.
        x0, x1: integer tensors (read modulo 2**32; int32/uint32 as bit patterns) or Python
            ints / nested lists in [0, 2**32); broadcast together.
        device: default the key's device.

    Returns:
        `(y0, y1)`, `torch.uint32` tensors of the broadcast shape.
    """
    key = key_data(key, device)
    words = []
    for name, x in (("x0", x0), ("x1", x1)):
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x, dtype=torch.int64)
            if x.numel() and (x.min() < 0 or x.max() > MASK32):
                raise ValueError(f"{name} must hold integers in [0, 2**32)")
        x = x.to(key.device)
        if x.dtype == torch.uint32:
            x = x.view(torch.int32)
        words.append(x if x.dtype == torch.int32 else _to_i32(x.to(torch.int64)))
    w0, w1 = torch.broadcast_tensors(*words)         # w0 is only read; w1 is overwritten:
    y0, y1 = _threefry_i32(key, w0, w1.clone(memory_format=torch.contiguous_format))
    return y0.view(torch.uint32), y1.view(torch.uint32)


def split(key, num: int = 2, device=None) -> torch.Tensor:
    """`jax.random.split(key, num)` as key data: key i is both words of the hash of counter i.

    Returns:
        int64[num, 2] uint32 values, on the key's device (or `device`).
    """
    return split_rows(key_data(key, device)[None], num)[0]


def split_rows(keys: torch.Tensor, num: int = 2) -> torch.Tensor:
    """`split(key, num)` of each of m keys (int64 [m, 2] key data), side by side.

    Returns:
        int64[m, num, 2] uint32 values, on the keys' device.
    """
    num = check_count(num, "num")
    if keys.device.type == "cpu":                  # a small hash: NumPy's rounds
        k = keys.numpy().astype(np.uint32)[:, :, None]                  # [m, 2, 1]
        y0, y1 = threefry2x32_numpy(k[:, 0], k[:, 1], np.arange(num, dtype=np.uint32))
        return torch.from_numpy(np.stack([y0, y1], -1).astype(np.int64))   # [m, num, 2]
    lo = torch.arange(num, dtype=torch.int32, device=keys.device).expand(len(keys), num)
    zero = torch.zeros((), dtype=torch.int32, device=keys.device)
    y0, y1 = _threefry_i32(keys, zero, lo.clone())                      # [m, num] each
    return _to_u32_in_i64(torch.stack([y0, y1], dim=-1))                # [m, num, 2]


def keyed_bits(keys: torch.Tensor, counters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The hash of counter `(0, counters[i])` under `keys[i]`, for n (key, counter) pairs.

    `counter_bits` gives every key all the counters `0..n-1`; this gives each key only the
    counters asked for (the unpadded positions of a row, the selected ones), nothing else.

    Args:
        keys: int64 [n, 2] key data (uint32 values).
        counters: integer [n], values in [0, 2**32) (the hi word of the counter is 0).

    Returns:
        `(y0, y1)`, int32 [n] each: the two output words (their xor is `counter_bits`' value,
        the pair is `split`'s key).
    """
    if keys.device.type == "cpu":
        k = keys.numpy().astype(np.uint32)                              # [n, 2]
        y0, y1 = threefry2x32_numpy(k[:, 0], k[:, 1], counters.numpy().astype(np.uint32))
        return torch.from_numpy(y0.view(np.int32)), torch.from_numpy(y1.view(np.int32))
    zero = torch.zeros((), dtype=torch.int32, device=keys.device)
    lo = _to_i32(counters.to(torch.int64)).reshape(-1, 1)               # [n, 1], overwritten
    y0, y1 = _threefry_i32(keys, zero, lo)
    return y0.reshape(-1), y1.reshape(-1)


def fold_in(key, data: int, device=None) -> torch.Tensor:
    """`jax.random.fold_in(key, data)` as key data: the hash of the counter pair `(0, data)`.

    Returns:
        int64[2] uint32 values.
    """
    data = check_word(data, "data")
    key = key_data(key, device)
    y0, y1 = keyed_bits(key[None], torch.full((1,), data, dtype=torch.int64, device=key.device))
    return _to_u32_in_i64(torch.cat([y0, y1]))


def derive_key(key, *indices: int, device=None) -> torch.Tensor:
    """Fold each index into `key` in turn (e.g. `derive_key(key, step, rank)`).

    Returns:
        int64[2] uint32 values; `key_data(key)` when no index is given.
    """
    return fold_indices(key_data(key, device), indices, fold_in)


def random_bits(key, shape, device=None) -> torch.Tensor:
    """`jax.random.bits(key, shape, jnp.uint32)`.

    Returns:
        `torch.uint32` tensor of `shape` (a view of int32 bits; `.view(torch.int32)` is free).
    """
    shape, bits = _bits_i32(key, shape, device)
    return bits.view(torch.uint32).reshape(shape)


def uniform(key, shape, device=None) -> torch.Tensor:
    """`jax.random.uniform(key, shape, jnp.float32)`: 23 random bits as the mantissa of 1.x, minus 1.

    Returns:
        float32 tensor of `shape`, values in [0, 1).
    """
    shape, bits = _bits_i32(key, shape, device)
    return uniform_from_bits(bits).reshape(shape)


def uniform_from_bits(bits: torch.Tensor) -> torch.Tensor:
    """int32 bits (overwritten) -> float32 in [0, 1), as `jax.random.uniform` maps them."""
    bits.bitwise_right_shift_(9).bitwise_and_(0x007FFFFF)   # logical >> 9 of the uint32
    bits.bitwise_or_(0x3F800000)                            # exponent bits of 1.0
    return bits.view(torch.float32).sub_(1.0)


def randint(key, shape, minval: int, maxval: int, device=None) -> torch.Tensor:
    """`jax.random.randint(key, shape, minval, maxval, dtype=jnp.int32)`.

    As in JAX: bits `hi`, `lo` from the two halves of `split(key)`, `span = maxval - minval` (1
    if empty), `m = ((2**16 % span)**2 mod 2**32) % span`, result `minval + ((hi % span) * m +
    lo % span) % span`. For span > 2**16, m is 0 (the square wraps to 0); for span <= 2**16 every
    intermediate is below 2**32. So int64 arithmetic on the uint32 values is exact and never
    needs a mask, and `hi` is not even drawn when m is 0. span and m are host ints: no sync.

    Args:
        minval, maxval: ints in the int32 range (JAX raises OverflowError on others).

    Returns:
        int32 tensor of `shape` in [minval, maxval) (all `minval` if `maxval <= minval`).
    """
    minval, maxval = check_int32(minval, "minval"), check_int32(maxval, "maxval")
    span, multiplier = randint_span(minval, maxval)
    k_hi, k_lo = split(key, 2, device)
    shape, lo = _bits_i32(k_lo, shape, None)
    hi = _bits_i32(k_hi, shape, None)[1] if multiplier else None
    return randint_from_bits(lo, hi, minval, maxval).reshape(shape)


def randint_span(minval: int, maxval: int) -> tuple[int, int]:
    """`(span, m)` of `randint`: m is 0 when the high bits are not needed (span > 2**16)."""
    span = maxval - minval if maxval > minval else 1
    return span, (((2**16 % span) ** 2) & MASK32) % span


def randint_from_bits(lo: torch.Tensor, hi, minval: int, maxval: int) -> torch.Tensor:
    """`randint`'s values from the bits of its two keys (`hi` None when m is 0): int32."""
    span, multiplier = randint_span(minval, maxval)
    offset = _to_u32_in_i64(lo).remainder_(span)                    # lo % span
    if multiplier:
        offset.add_(_to_u32_in_i64(hi).remainder_(span).mul_(multiplier)).remainder_(span)
    return offset.add_(minval).to(torch.int32)                      # < maxval: fits int32
