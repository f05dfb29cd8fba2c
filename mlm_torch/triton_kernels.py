"""Triton kernels: masking in one pass over the batch, for the native and the exact mode.

Each program reads a block of `x` once and writes `x_masked` and `y` once; the random numbers
are computed in registers from the position's index (counter-based generators), so no random
tensor ever touches memory. That is the floor of docs/benchmarks.md: 24 bytes per
int64 token.

* Native mode draws with Philox (`tl.randint4x`), keyed by a 63-bit seed that the caller's
  `torch.Generator` drew *on the device*: nothing is read back to the host.
* Exact mode computes JAX's threefry2x32 (partitionable layout) with uint32 arithmetic, bit
  for bit as `mlm_ref.threefry` and `mlm_torch.threefry` do.

This module imports Triton at import time; `mlm_torch.fused` imports it only when needed.
Under `TRITON_INTERPRET=1` the same kernels run on CPU tensors (slowly), which is how the
tests check them without a GPU.
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["native_kernel", "exact_kernel"]


@triton.jit
def _eligible(x, inside, ineligible_ptr, n_ineligible):
    """True where `x` is inside the batch and not one of the ineligible ids (a short list)."""
    eligible = inside
    for j in range(n_ineligible):
        eligible = eligible & (x != tl.load(ineligible_ptr + j))
    return eligible


@triton.jit
def _shift_past_excluded(t, exclude_ptr, n_exclude):
    """The t-th id not in `random_exclude` (sorted ascending, so one pass is enough)."""
    for j in range(n_exclude):
        t += (t >= tl.load(exclude_ptr + j)).to(t.dtype)
    return t


@triton.jit
def _store(x, xm_ptr, y_ptr, offs, inside, selected, to_random, to_mask, t,
           mask_token, padding_token):
    """Write both outputs once: x_masked (random id, [MASK] or x) and y (x or padding)."""
    x_masked = tl.where(to_random, t.to(x.dtype), tl.where(to_mask, mask_token, x))
    tl.store(xm_ptr + offs, x_masked.to(x.dtype), mask=inside)
    tl.store(y_ptr + offs, tl.where(selected, x, padding_token).to(x.dtype), mask=inside)


@triton.jit(do_not_specialize=["n_random"])  # `.to()` needs a value, not a constexpr 1
def native_kernel(x_ptr, xm_ptr, y_ptr, seed_ptr, ineligible_ptr, n_ineligible,
                  exclude_ptr, n_exclude, n, t_select, t_random, t_mask, n_random,
                  mask_token, padding_token, BLOCK: tl.constexpr):
    """Native mode: one Philox call per position gives a 24-bit uniform and a 64-bit id draw.

    As in the torch path, one uniform `m / 2**24` decides selection (`m < t_select`) and the
    category (`m < t_random`: random id; `m >= t_mask`: [MASK]); the integer thresholds are
    `ceil(threshold * 2**24)`, so `m < t` is exactly `m / 2**24 < threshold`.
    """
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)   # int64: > 2**31 ok
    inside = offs < n
    x = tl.load(x_ptr + offs, mask=inside, other=0)
    r0, r1, r2, _ = tl.randint4x(tl.load(seed_ptr), offs)              # uint32 each
    m = (r0 >> 8).to(tl.int32)                                          # [0, 2**24)
    selected = _eligible(x, inside, ineligible_ptr, n_ineligible) & (m < t_select)
    to_random = selected & (m < t_random)
    to_mask = selected & (m >= t_mask)
    # floor((r1 * 2**32 + r2) * n_random / 2**64): a multiply-shift over 64 random bits, whose
    # bias (under 2**-32 relative per id) no test at any feasible N can see; no modulo.
    span = n_random.to(tl.uint64)
    t = (r1.to(tl.uint64) * span + ((r2.to(tl.uint64) * span) >> 32)) >> 32
    t = _shift_past_excluded(t.to(tl.int64), exclude_ptr, n_exclude)
    _store(x, xm_ptr, y_ptr, offs, inside, selected, to_random, to_mask, t,
           mask_token, padding_token)


@triton.jit
def _rotl(v, r: tl.constexpr):
    return (v << r) | (v >> (32 - r))                                   # uint32: logical shift


@triton.jit
def _four_rounds(x0, x1, r0: tl.constexpr, r1: tl.constexpr, r2: tl.constexpr,
                 r3: tl.constexpr):
    """Four Threefry mix rounds: add, rotate, xor."""
    x0 += x1
    x1 = _rotl(x1, r0) ^ x0
    x0 += x1
    x1 = _rotl(x1, r1) ^ x0
    x0 += x1
    x1 = _rotl(x1, r2) ^ x0
    x0 += x1
    x1 = _rotl(x1, r3) ^ x0
    return x0, x1


@triton.jit
def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds (Random123 / JAX); every argument uint32, results uint32.

    Injection `s` adds `ks[s % 3]` to word 0 and `ks[(s + 1) % 3] + s` to word 1, with
    `ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)`; rotations alternate between two rows of four.
    """
    k2 = k0 ^ k1 ^ 0x1BD11BDA
    x0 += k0
    x1 += k1
    x0, x1 = _four_rounds(x0, x1, 13, 15, 26, 6)
    x0 += k1
    x1 += k2 + 1
    x0, x1 = _four_rounds(x0, x1, 17, 29, 16, 24)
    x0 += k2
    x1 += k0 + 2
    x0, x1 = _four_rounds(x0, x1, 13, 15, 26, 6)
    x0 += k0
    x1 += k1 + 3
    x0, x1 = _four_rounds(x0, x1, 17, 29, 16, 24)
    x0 += k1
    x1 += k2 + 4
    x0, x1 = _four_rounds(x0, x1, 13, 15, 26, 6)
    x0 += k2
    x1 += k0 + 5
    return x0, x1


@triton.jit
def _bits(k0, k1, c_hi, c_lo):
    """`jax.random.bits` at these positions: the xor of the two output words."""
    y0, y1 = threefry2x32(k0, k1, c_hi, c_lo)
    return y0 ^ y1


@triton.jit
def _key_word(keys_ptr, j):
    return tl.load(keys_ptr + j).to(tl.uint32, bitcast=True)


@triton.jit
def _derive_keys(keys_ptr):
    """From raw key data (2 words) to (k_sel, k_cat, k_hi, k_lo), as `split` does it.

    `split(key, 3)[i]` is the hash of counter (0, i); randint splits `k_tok` in two again.
    A few scalar hashes per program, so a key living on the device is never read back.
    """
    k0, k1 = _key_word(keys_ptr, 0), _key_word(keys_ptr, 1)
    zero = k0 ^ k0
    s0, s1 = threefry2x32(k0, k1, zero, zero)
    c0, c1 = threefry2x32(k0, k1, zero, zero + 1)
    t0, t1 = threefry2x32(k0, k1, zero, zero + 2)
    h0, h1 = threefry2x32(t0, t1, zero, zero)
    l0, l1 = threefry2x32(t0, t1, zero, zero + 1)
    return s0, s1, c0, c1, h0, h1, l0, l1


# the key words change on every call: specialising on their values would recompile each time
@triton.jit(do_not_specialize=["ws0", "ws1", "wc0", "wc1", "wh0", "wh1", "wl0", "wl1",
                               "n_random", "multiplier"])
def exact_kernel(x_ptr, xm_ptr, y_ptr, keys_ptr, ws0, ws1, wc0, wc1, wh0, wh1, wl0, wl1,
                 ineligible_ptr, n_ineligible, exclude_ptr, n_exclude, n,
                 t_select, t_random, t_mask, n_random, multiplier,
                 mask_token, padding_token, DERIVE: tl.constexpr, BLOCK: tl.constexpr):
    """Exact mode: the draws of `mlm_ref.exact`, bit for bit, computed in registers.

    With `DERIVE`, `keys_ptr` holds the raw key (2 int32 words, on the device) and the kernel
    splits it; else the split keys `(k_sel, k_cat, k_hi, k_lo)` come as the eight int32 scalars
    `w..`. Uniforms are compared as 23-bit integers, `m < ceil(threshold * 2**23)`, which is
    exactly JAX's float32 comparison `m * 2**-23 < threshold`.
    """
    if DERIVE:
        s0, s1, c0, c1, h0, h1, l0, l1 = _derive_keys(keys_ptr)
    else:
        s0, s1 = ws0.to(tl.uint32, bitcast=True), ws1.to(tl.uint32, bitcast=True)
        c0, c1 = wc0.to(tl.uint32, bitcast=True), wc1.to(tl.uint32, bitcast=True)
        h0, h1 = wh0.to(tl.uint32, bitcast=True), wh1.to(tl.uint32, bitcast=True)
        l0, l1 = wl0.to(tl.uint32, bitcast=True), wl1.to(tl.uint32, bitcast=True)
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    x = tl.load(x_ptr + offs, mask=inside, other=0)
    # The partitionable layout: position i (row-major) hashes the 64-bit counter i.
    c_hi, c_lo = (offs >> 32).to(tl.uint32), offs.to(tl.uint32)
    m_select = (_bits(s0, s1, c_hi, c_lo) >> 9).to(tl.int32)           # [0, 2**23)
    m_category = (_bits(c0, c1, c_hi, c_lo) >> 9).to(tl.int32)
    selected = _eligible(x, inside, ineligible_ptr, n_ineligible) & (m_select < t_select)
    to_random = selected & (m_category < t_random)
    to_mask = selected & (m_category >= t_mask)
    # randint: ((hi % span) * (2**32 mod span) + lo % span) % span, wrapping in uint32 as JAX
    span = n_random.to(tl.uint32)
    hi = _bits(h0, h1, c_hi, c_lo) % span
    lo = _bits(l0, l1, c_hi, c_lo) % span
    t = (hi * multiplier.to(tl.uint32) + lo) % span
    t = _shift_past_excluded(t.to(tl.int64), exclude_ptr, n_exclude)
    _store(x, xm_ptr, y_ptr, offs, inside, selected, to_random, to_mask, t,
           mask_token, padding_token)
