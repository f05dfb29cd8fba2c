"""Exact mode in PyTorch: JAX's threefry draws computed with torch integer ops.

Bit-identical to `mlm_ref.exact` and to the JAX backend on CPU and CUDA; the draws stay on
`x`'s device, so the CUDA path never copies the batch to the host. On CUDA with Triton the
same draws are computed in one fused kernel (`mlm_torch.fused`).

A position's draws depend only on the key and its flat index, so the torch formulation works a
slice of positions at a time: the same bits as one pass, in memory bounded by the slice (the
bound is in docs/exact-mode.md).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

from mlm_ref.keys import key_words

from . import compiled, fused, threefry
from .cpu import eligibility_table, eligible_ids, fill_slice, new_outputs, random_ids
from .tensors import (as_signed_bits, check_input, eligible_mask, ids_in_view,
                      shift_past_excluded, signed_view)
from .threefry_host import threefry2x32_lanes

__all__ = ["mask_tokens_exact", "mask_tokens_exact_torch", "mask_tokens_exact_cpu",
           "mask_rows_compiled",
           "mask_from_bits", "chunk_size", "CPU_CHUNK", "PENDING", "SPLIT"]

# Positions per slice of the CPU path: its three uint32 hash buffers (768 KiB) fit in L2.
CPU_CHUNK = 2**16
# Selected positions gathered across slices before their outcomes are drawn (memory: ~40
# bytes each, bounded whatever the batch).
PENDING = 2**16
# From this many selected positions, randint's bits are hashed for the random ones only: two
# hashes of ~110 calls each then cost less than three rows for every selected position.
SPLIT = 2**12


def chunk_size(device: torch.device) -> int:
    """Positions per slice: about 40 bytes of draws each. On a GPU a slice must also be large
    enough to fill the device, so it is larger there."""
    return 2**18 if device.type == "cpu" else 2**22


def mask_tokens_exact(x: torch.Tensor, config: MaskingConfig, *, key,
                      check_ids: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask `x` in exact mode: the same key gives the same outputs in every backend.

    Args:
        x: integer tensor of token ids, rank >= 1, on any device.
        config: the masking parameters.
        key: an int seed (meaning `jax.random.key(seed)`) or raw threefry key data `uint32[2]`
            (a sequence, NumPy array or tensor; the rule of `mlm_ref.keys`).
        check_ids: raise on negative ids (reads one boolean back from the device).

    Returns:
        `(x_masked, y)` with the dtype, shape and device of `x`.
    """
    check_input(x, config, check_ids=check_ids)
    if fused.use_fused(x):  # on CUDA with Triton: one kernel that hashes in registers
        return fused.mask_tokens_exact(x, config, key=key)
    if x.device.type == "cpu" and x.numel() <= 2**32 and type(x) is torch.Tensor:
        return mask_tokens_exact_cpu(x, config, key=key)
    return mask_tokens_exact_torch(x, config, key=key)


def mask_tokens_exact_cpu(x: torch.Tensor, config: MaskingConfig, *, key,
                          compiled_pass: bool = True):
    """Exact mode on a CPU tensor of at most 2**32 positions (no input checks): the same bits
    as `mask_tokens_exact_torch`, hashing only the draws that decide an outcome.

    Where the compiled passes are built (`mlm_torch.compiled`) and `x` holds int32 or int64
    ids, one call of `exact_cpu.c` does it all, a block of positions at a time; elsewhere, or
    with `compiled_pass=False`, the NumPy formulation below runs: the same bits.

    A position's draws depend on the key and its flat index alone, so the selection bits are
    hashed for every eligible position (a slice at a time, in NumPy's uint32 where the rounds
    need no masking), the category bits for the ~15% selected ones, and the random-id bits
    for the ~1.5% that become random tokens. The selected positions of several slices are
    gathered (up to `PENDING`) before their draws are hashed: a hash is ~110 NumPy calls
    whatever its length, so fewer, longer ones cost less. On the calling thread: slices handed
    to a pool of two threads ran slower on a loaded 2-core machine (the pool waits for its
    slowest thread), and DataLoader workers run one thread. The uniform draws are compared as
    integers: `u = (bits >> 9) * 2**-23` exactly, so `u < p` is `bits < ceil(p * 2**23) << 9`
    with p rounded to float32 first, as JAX does.

    Returns:
        `(x_masked, y)`: new contiguous tensors with the dtype and shape of `x`.
    """
    if compiled_pass and x.numel():
        done = mask_rows_compiled(x, np.array([_key_pair(key)], np.uint32), config)
        if done is not None:
            return done
    keys = exact_keys(key, config)
    bounds = _bounds(config)
    x_masked, y, source, padding = new_outputs(x, config, CPU_CHUNK)
    flat_x, flat_y = x_masked.numpy().reshape(-1), y.numpy().reshape(-1)
    pending, count = [], 0                            # selected, outcomes not yet drawn
    for start in range(0, flat_x.size, CPU_CHUNK):
        s = slice(start, min(flat_x.size, start + CPU_CHUNK))
        fill_slice(flat_x, flat_y, s, source, padding)
        where = _select_slice(flat_x[s], start, keys[0], bounds[0], config)
        flat_y[where] = flat_x.take(where)            # the slice is still in cache
        pending.append(where)
        count += where.size
        if count >= PENDING or s.stop == flat_x.size:
            _draw_outcomes(flat_x, np.concatenate(pending), keys[1:], bounds, config)
            pending, count = [], 0
    return x_masked, y


# the compiled pass per dtype of x (other dtypes: the NumPy formulation)
_COMPILED = {torch.int64: "mlm_exact_rows_int64", torch.int32: "mlm_exact_rows_int32"}


@functools.lru_cache(maxsize=64)
def _compiled_args(config: MaskingConfig):
    """Per config, `exact_cpu.c`'s arrays (kept alive here) and their addresses: params,
    eligibility table, shift; None when the special ids are too large for a table."""
    table, top = eligibility_table(config)
    if table is None:
        return None
    span, multiplier = threefry.randint_span(0, config.n_random)
    excluded = np.asarray(config.random_exclude, dtype=np.int64)
    shift = excluded - np.arange(excluded.size)
    params = np.array([*_bounds(config), config.mask_token, config.padding_token, span,
                       multiplier, shift.size, top], dtype=np.int64)
    eligible = table.view(np.uint8)
    return (params, eligible, shift, params.ctypes.data, eligible.ctypes.data,
            shift.ctypes.data)


def mask_rows_compiled(x: torch.Tensor, row_keys: np.ndarray, config: MaskingConfig):
    """Each row of a CPU batch masked in exact mode under its own key, by the compiled pass
    (`exact_cpu.c`, which splits each row's key itself), or None where that pass does not run
    (not built, another dtype than int32/int64, special ids too large for a table, rows
    longer than 2**32): the caller then runs its NumPy formulation.

    Args:
        x: CPU ids of any shape, its row-major positions split into `len(row_keys)` rows of
            equal length (`[batch, seq]` for `mask_rows`; one row: the whole batch); a strided
            `x` is copied into `x_masked` and read there.
        row_keys: uint32 `[rows, 2]`, the rows' key data.
        config: the masking parameters.

    Returns:
        `(x_masked, y)`, new contiguous tensors like `x`; row r is `mask_tokens_exact` of
        that row's ids under `key=row_keys[r]`.
    """
    args = _compiled_args(config) if x.dtype in _COMPILED else None
    rows = len(row_keys)                                     # >= 1, and x.numel() >= 1
    seq = x.numel() // rows
    lib = compiled.library() if args is not None and seq <= 2**32 else None
    if lib is None:
        return None
    keys = np.ascontiguousarray(row_keys, dtype=np.uint32)
    x_masked, y, source = compiled.outputs(x)
    params, eligible, shift = args[3:]
    getattr(lib, _COMPILED[x.dtype])(source.data_ptr(), x_masked.data_ptr(), y.data_ptr(),
                                     rows, seq, keys.ctypes.data, eligible, shift, params)
    return x_masked, y


@functools.lru_cache(maxsize=64)
def _bounds(config: MaskingConfig) -> tuple[int, int, int]:
    """`_bits_below` of each of `config.exact_thresholds()` (per config)."""
    return tuple(_bits_below(float(p)) for p in config.exact_thresholds())


def _bits_below(p: float) -> int:
    """The bound b with `uniform(bits) < p` exactly when `bits < b` (uint32 bits, p in [0, 1])."""
    return math.ceil(p * 2**23) << 9


def _select_slice(flat_x: np.ndarray, start: int, key: np.ndarray, below: int,
                  config: MaskingConfig) -> np.ndarray:
    """The selected positions among `start + i` (holding `flat_x[i]`): int64 flat indices.

    A subset is taken as indices (`nonzero`, then `take`): a boolean mask index costs
    about twice as much per array, as a random 15% mask defeats the branch predictor.
    """
    where = eligible_ids(flat_x, config).nonzero()[0]           # only these can be selected
    where += start
    counters = where.astype(np.uint32)                              # flat index < 2**32
    y0, y1 = threefry.threefry2x32_numpy(key[0], key[1], counters)
    y0 ^= y1                                                        # k_sel's bits
    return where.take((y0 < below).nonzero()[0])  # an operator: a bound of 2**32 compares


def _draw_outcomes(flat_x: np.ndarray, where: np.ndarray, keys: np.ndarray, bounds,
                   config: MaskingConfig) -> None:
    """The outcomes of the selected positions `where` (int64 flat indices), written into
    `flat_x`. `keys`: uint32 `(k0, k1)` of k_cat, k_lo and (when drawn) k_hi."""
    _, b_random, b_random_or_keep = bounds
    counters = where.astype(np.uint32)
    if where.size < SPLIT:        # few: k_cat, k_lo and k_hi side by side, one pass
        y0, y1 = threefry.threefry2x32_numpy(keys[:, :1], keys[:, 1:], counters)
        y0 ^= y1                                                    # [2|3, m]
        category = y0[0]
        to_random = (category < b_random).nonzero()[0]
        draws = [row.take(to_random) for row in y0[1:]]
    else:                          # many: randint's bits for the random ones only (~1/10)
        category, c1 = threefry.threefry2x32_numpy(keys[0, 0], keys[0, 1], counters)
        category ^= c1
        to_random = (category < b_random).nonzero()[0]
        y0, y1 = threefry.threefry2x32_numpy(keys[1:, :1], keys[1:, 1:],
                                             counters.take(to_random))
        y0 ^= y1
        draws = list(y0)
    flat_x[where.take((category >= b_random_or_keep).nonzero()[0])] = config.mask_token
    span, multiplier = threefry.randint_span(0, config.n_random)
    t = draws[0].astype(np.int64) % span          # randint_from_bits' arithmetic, in int64
    if multiplier:
        t = (t + draws[1].astype(np.int64) % span * multiplier) % span
    flat_x[where.take(to_random)] = random_ids(t, config)


def exact_keys(key, config: MaskingConfig) -> np.ndarray:
    """uint32 `[3|4, 2]`: the keys of exact mode's draws, k_sel, k_cat, randint's k_lo and,
    when its multiplier is not 0, k_hi (`jax.random.split` of the key, then of k_tok), hashed
    on Python ints."""
    k_sel, k_cat, k_tok = threefry2x32_lanes(*_key_pair(key), (0, 1, 2))
    k_hi, k_lo = threefry2x32_lanes(*k_tok, (0, 1))
    _, multiplier = threefry.randint_span(0, config.n_random)
    return np.array([k_sel, k_cat, k_lo, k_hi] if multiplier else [k_sel, k_cat, k_lo],
                    dtype=np.uint32)


def _key_pair(key) -> tuple[int, int]:
    """The key data `(k0, k1)` of `key` (the rule of `mlm_ref.keys`)."""
    if isinstance(key, torch.Tensor):
        return tuple(threefry.key_data(key, torch.device("cpu")).tolist())   # also on a GPU
    return key_words(key)


def mask_tokens_exact_torch(x: torch.Tensor, config: MaskingConfig, *, key):
    """The elementwise torch formulation of exact mode (no input checks).

    The draws are JAX's `uniform(k_sel)`, `uniform(k_cat)` and `randint(k_tok)`; their three
    (or four) hashes run side by side in one pass of the rounds, a slice at a time.
    """
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key, device=x.device), 3)
    k_hi, k_lo = threefry.split(k_tok, 2)              # randint's two keys, as JAX splits them
    _, multiplier = threefry.randint_span(0, config.n_random)
    keys = torch.stack([k_sel, k_cat, k_lo, k_hi] if multiplier else [k_sel, k_cat, k_lo])

    flat = x.reshape(-1)                               # row-major (a copy if x is strided)
    x_masked, y = torch.empty_like(flat), torch.empty_like(flat)
    step = chunk_size(x.device)
    for start in range(0, flat.numel(), step):
        s = slice(start, min(flat.numel(), start + step))
        signed_view(x_masked)[s], signed_view(y)[s] = _mask_slice(flat[s], s, keys, config)
    return x_masked.view(x.shape), y.view(x.shape)


def _mask_slice(x: torch.Tensor, s: slice, keys: torch.Tensor, config: MaskingConfig):
    """Exact mode on the positions `s` of the flattened batch, which hold `x`; the outputs in
    `signed_view`'s dtype."""
    bits = threefry.counter_bits(keys, s.stop - s.start, start=s.start)  # int32 [3 or 4, n]
    return mask_from_bits(x, bits, config)


def mask_from_bits(x: torch.Tensor, bits: torch.Tensor, config: MaskingConfig):
    """Exact mode's outcomes from the draws' int32 bits `[3 or 4, *x.shape]` (overwritten):
    `k_sel`, `k_cat`, randint's `k_lo` and, when its multiplier is not 0, `k_hi`.

    Returns:
        `(x_masked, y)` like `x`, in `signed_view`'s dtype.
    """
    p_select, p_random, p_random_or_keep = (float(t) for t in config.exact_thresholds())
    u = threefry.uniform_from_bits(bits[0])                              # float32, like x
    c = threefry.uniform_from_bits(bits[1])                              # float32, like x
    t = threefry.randint_from_bits(bits[2], bits[3] if len(bits) == 4 else None, 0,
                                   config.n_random).to(torch.int64)
    t = ids_in_view(shift_past_excluded(t, config), x.dtype)

    selected = eligible_mask(x, config) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    v = signed_view(x)
    mask_token = torch.tensor(as_signed_bits(config.mask_token, x.dtype), dtype=v.dtype,
                              device=x.device)
    padding = torch.tensor(as_signed_bits(config.padding_token, x.dtype), dtype=v.dtype,
                           device=x.device)
    x_masked = torch.where(to_random, t, torch.where(to_mask, mask_token, v))
    y = torch.where(selected, v, padding)
    return x_masked, y
