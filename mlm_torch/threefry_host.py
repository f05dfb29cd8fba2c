"""Threefry-2x32 on the host: NumPy's uint32 for arrays, Python ints for a single key.

The same rounds and bits as `mlm_torch.threefry`'s torch formulation (tests/test_threefry.py
compares them). Where a hash is small or runs on the CPU, these are the faster formulation:
NumPy's right shift on uint32 is logical, so a rotation is three calls instead of four, and a
NumPy call costs about a third of a torch call before it touches any data; for one key, ~110
array calls on one element cost far more than the same rounds on Python ints.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["threefry2x32_numpy", "threefry2x32_int", "threefry2x32_lanes", "MASK32", "PARITY32",
           "ROTATIONS", "PACKED_MAX"]

MASK32 = 0xFFFFFFFF
PARITY32 = 0x1BD11BDA                 # Threefish key-schedule parity, 32-bit words
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))

# Up to this many words a hash runs in the lanes of Python ints (`_lane_rounds`): ~160
# big-int operations on them cost less than ~110 NumPy calls (measured: 25 against 45 us for
# 3 words, 43 against 49 for 96, more from ~150)
PACKED_MAX = 128
# (r, 32 - r) as 0-d uint32 arrays: a ufunc call takes a 0-d array operand in about half the
# time it takes a NumPy scalar, and a Python int costs a conversion on every call
_NP_ROTATIONS = tuple(tuple((np.array(r, np.uint32), np.array(32 - r, np.uint32)) for r in rs)
                      for rs in ROTATIONS)


def threefry2x32_numpy(k0: np.ndarray, k1: np.ndarray, x1: np.ndarray):
    """Threefry-2x32 of the counters `(0, x1[i])` under the keys `(k0[i], k1[i])`, in NumPy.

    Up to `PACKED_MAX` words the rounds run in the 64-bit lanes of Python ints instead
    (`_lane_rounds`): the same bits, for about half the cost of ~110 NumPy calls there.

    Args:
        k0, k1, x1: uint32 arrays or scalars, broadcast together (e.g. keys [m, 1] and
            counters [num]).

    Returns:
        `(y0, y1)`, uint32 arrays of the broadcast shape.
    """
    k0, k1 = np.asarray(k0, np.uint32), np.asarray(k1, np.uint32)   # arrays: ufuncs wrap
    shape = np.broadcast_shapes(k0.shape, k1.shape, np.shape(x1))
    if 0 < math.prod(shape) <= PACKED_MAX:
        return _packed(k0, k1, np.asarray(x1, np.uint32), shape)
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(PARITY32))
    # injection g + 1 adds ks[(g + 1) % 3] to word 0 and ks[(g + 2) % 3] + g + 1 to word 1
    adds = [(np.asarray(ks[(g + 1) % 3]), np.asarray(ks[(g + 2) % 3] + np.uint32(g + 1)))
            for g in range(5)]                          # 0-d arrays, not scalars (see above)
    x1 = np.add(x1, k1, out=np.empty(shape, np.uint32))  # a new buffer: the caller's is kept
    # word 0 starts as k0 (its counter word is 0), so the first mix is x1 + k0: one pass
    # where a broadcast copy and an add would be two
    x0 = np.add(x1, k0, out=np.empty(shape, np.uint32))
    tmp = np.empty(shape, np.uint32)
    # the ufuncs as locals, called with a positional out: a small hash is ~110 calls' overhead
    add, shl, shr, bor, bxor = np.add, np.left_shift, np.right_shift, np.bitwise_or, np.bitwise_xor
    for group in range(5):
        for i, (left, right) in enumerate(_NP_ROTATIONS[group % 2]):
            if group or i:
                add(x0, x1, x0)                         # mix: add, rotate left by r, xor
            shl(x1, left, tmp)
            shr(x1, right, x1)
            bor(x1, tmp, x1)
            bxor(x1, x0, x1)
        add(x0, adds[group][0], x0)
        add(x1, adds[group][1], x1)
    return x0, x1


def threefry2x32_int(k0: int, k1: int, x0: int, x1: int) -> tuple[int, int]:
    """Threefry-2x32 of one counter pair on Python ints: for a key or two, a few microseconds
    where ~110 array calls on one element cost a hundred."""
    ks = (k0, k1, k0 ^ k1 ^ PARITY32)
    x0, x1 = (x0 + k0) & MASK32, (x1 + k1) & MASK32
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 = (x0 + x1) & MASK32
            x1 = (((x1 << r) & MASK32) | (x1 >> (32 - r))) ^ x0
        x0 = (x0 + ks[(group + 1) % 3]) & MASK32
        x1 = (x1 + ks[(group + 2) % 3] + group + 1) & MASK32
    return x0, x1


def threefry2x32_lanes(k0: int, k1: int, counters) -> list[tuple[int, int]]:
    """`threefry2x32_int(k0, k1, 0, c)` for each counter `c`, all in one pass of the rounds
    (`_lane_rounds`): a split into 3 keys costs about half of 3 single hashes."""
    ones = _ones(len(counters))
    x0, x1 = _lane_rounds(k0 * ones, k1 * ones,
                          sum(c << (64 * i) for i, c in enumerate(counters)), ones)
    return [((x0 >> (64 * i)) & MASK32, (x1 >> (64 * i)) & MASK32)
            for i in range(len(counters))]


def _packed(k0: np.ndarray, k1: np.ndarray, x1: np.ndarray, shape) -> tuple:
    """`threefry2x32_numpy` of a few words, their bytes packed into Python ints."""
    n = math.prod(shape)

    def pack(a):
        return int.from_bytes(np.broadcast_to(a, shape).astype("<u8").tobytes(), "little")

    def unpack(v):
        return np.frombuffer(v.to_bytes(8 * n, "little"), "<u8").astype(np.uint32).reshape(shape)

    x0, x1 = _lane_rounds(pack(k0), pack(k1), pack(x1), _ones(n))
    return unpack(x0), unpack(x1)


@functools.lru_cache(maxsize=PACKED_MAX)
def _ones(n: int) -> int:
    """1 in each of n 64-bit lanes."""
    return int.from_bytes(np.ones(n, "<u8").tobytes(), "little")


def _lane_rounds(k0: int, k1: int, x1: int, ones: int) -> tuple[int, int]:
    """The 20 rounds on words in the 64-bit lanes of Python ints (`ones`: 1 in each lane),
    counter word 0 zero: one big-int operation a step for all lanes. A sum stays below 2**33
    and a rotation's spill lands in a lane's upper half, which the mask clears."""
    m = MASK32 * ones
    ks = (k0, k1, k0 ^ k1 ^ (PARITY32 * ones))
    x0, x1 = k0, (x1 + k1) & m
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 = (x0 + x1) & m
            x1 = (((x1 << r) | (x1 >> (32 - r))) & m) ^ x0
        x0 = (x0 + ks[(group + 1) % 3]) & m
        x1 = (x1 + ks[(group + 2) % 3] + (group + 1) * ones) & m
    return x0, x1
