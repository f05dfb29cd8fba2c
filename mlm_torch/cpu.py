"""The native path for CPU tensors: few random bits per position, work only for the candidates.

On a GPU the cost of masking is memory traffic; on a CPU it is two other things. First, the
random bits: torch's CPU Mersenne Twister produces them more slowly than memory delivers
tokens (~4 ns a 64-bit word), so a float32 uniform per position would make the draws, not the
data, the cost of the whole job. Second, dispatch: a small op has a fixed cost on a CPU
whatever its size, and a small batch needs fewer positions' work than a dozen ops cost to
dispatch. So this path

* takes two 64-bit seeds from the `torch.Generator` per call and makes every other bit with
  SplitMix64, a counter-based generator: a position's bits are a few multiplies and shifts
  of its row-major index, so they cost no generator calls, can be made for the positions that
  need them only, and for any slice in any order;
* makes 8 random bits per position, not 32. They are the high byte of the position's 24-bit
  uniform `k` (the resolution of a float32 uniform): where that byte alone puts `k` at or above
  the selection threshold, about 85% of positions, nothing else is made or computed;
* for the other positions (the candidates, ~15%) makes one 64-bit word each: its low 16 bits
  complete `k`, its upper 48 bits become the random id should the position need one;
* folds eligibility into `k`: a per-id table adds `-K(p (r + n))` (modulo 2**32) where the id
  may be selected and 2**30 where not, so that, read as int32, each outcome is one compare
  (and [MASK] one unsigned compare of the same bits).

Where a C compiler is found, a call is one compiled pass over the positions (`mlm_torch.
compiled`, `native_cpu.c`): copy, fill, bytes, candidates and outcomes a block of 1024
positions at a time, in cache. Everywhere else (no compiler, a failed build, ids of another
dtype than int32/int64, special ids above `TABLE_MAX`, `compiled_pass=False`) the NumPy
formulation spelled out below runs: the same stream, the same bits, slower. It does the
bookkeeping on the torch tensors' own memory, NumPy's vectorised loops having less dispatch
cost per op than torch's, subsets taken as indices, never as boolean masks, and each outcome's
positions written by one index assignment. The copy of `x` and the fill of `y` are NumPy's
too, a slice at a time just before the slice's candidates are written (still in cache); a
batch under torch's parallel grain (32 Ki positions) gets them as one torch clone and one fill
(`new_outputs`). NumPy runs them on the calling thread; a torch op on a large batch runs on the
intra-op thread pool, whose barrier waits for every thread, and on a loaded machine a
descheduled thread holds the call for milliseconds (an earlier benchmark's cliff at
`[512, 512]`, where a batch crosses torch's parallel grain).

What bounds a small batch is the number of calls, not their work: in NumPy a call costs
1-3 us whatever its length, so `np.where` or `np.putmask` over all candidates, one call, costs
more than the indices of the few positions they change; at `[512, 32]` (16 Ki positions) the
NumPy formulation makes ~40 calls, the compiled one a handful (`python -m verify.bench`
measures both paths' result; docs/benchmarks.md).

The NumPy formulation handles the candidates `CHUNK` positions at a time, so beyond the two
outputs it holds a bounded slice of work; the slice is 2**16 positions, so that its
candidates' arrays stay in the L2 cache.

The stream (what a `torch.Generator` seed pins), with `G_s(c)` SplitMix64's `(c + 1)`-th
output from state `s` (`_splitmix`: `mix(s + (c + 1) * 0x9E3779B97F4A7C15)` modulo 2**64):

1. Two words `a`, `b` from `generator` (`random_` over the full int64 range), the only draws.
2. Position i's byte (row-major): byte `i % 8` of `G_a(i // 8)`, least significant first.
3. A candidate (byte below `ceil(K(p) / 2**16)`) takes the word `w = G_b(i)`:
   `k = byte << 16 | (w & 0xFFFF)`; if the position becomes a random token, its id is
   `(w >> 16) % n_random`, moved past `random_exclude` (the modulo leaves a bias below
   n_random / 2**48 relative: 1e-10 for BERT's vocabulary, 8e-6 at the largest one allowed,
   2**31 - 1).
4. With `K(t) = ceil(t * 2**24)`: `k < K(p r)` random, `< K(p (r + n))` unchanged,
   `< K(p)` [MASK], else not selected; so each outcome's probability is its contract value
   rounded up to a multiple of 2**-24 (exactly the contract's when that is representable).
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np
import torch

from mlm_ref.config import MaskingConfig
from mlm_ref.validation import special_ids

from . import compiled

__all__ = ["mask_tokens_cpu", "eligible_ids", "eligibility_table", "random_ids", "new_outputs", "fill_slice", "CHUNK",
           "TABLE_MAX", "TORCH_GRAIN"]

# Positions per slice of the candidate work (~15% of them are candidates).
CHUNK = 2**16
# Below this many elements a torch op on the CPU stays on the calling thread (at::internal::
# GRAIN_SIZE); from it on, the intra-op pool, whose barrier waits for a descheduled thread.
TORCH_GRAIN = 2**15
# Eligibility is a table lookup when the largest special id is at most this; else np.isin.
TABLE_MAX = 2**16

_K_BITS = 24                       # resolution of k, as of a float32 uniform
_LOW_BITS = _K_BITS - 8            # bits of k drawn for candidates only
_INELIGIBLE = 1 << 30              # added to k: above every threshold, still a positive int32


@functools.lru_cache(maxsize=64)
def eligibility_table(config: MaskingConfig):
    """`(table, top)` with `table[min(id, top)]` True where an id may be selected, or
    `(None, None)` when the special ids are too large for a table (read-only)."""
    top = max(config.ineligible_tokens) + 1
    if top > TABLE_MAX:
        return None, None
    table = np.ones(top + 1, dtype=bool)               # ids above `top` share table[top]
    table[list(config.ineligible_tokens)] = False
    table.flags.writeable = False
    return table, top


def eligible_ids(ids: np.ndarray, config: MaskingConfig) -> np.ndarray:
    """True where an id (any NumPy integer dtype) may be selected."""
    table, top = eligibility_table(config)
    if table is not None and ids.dtype != np.uint64:
        return table.take(ids, mode="clip")            # one call: ids above `top` clip to it
    if table is not None:
        # np.minimum keeps the dtype: uint64 ids >= 2**63 map to `top`, not to a negative index
        return table[np.minimum(ids, top)]
    special = np.array(special_ids(config, int(np.iinfo(ids.dtype).max)), dtype=ids.dtype)
    return ~np.isin(ids, special)


@functools.lru_cache(maxsize=64)
def _plan(config: MaskingConfig):
    """Per config: integer thresholds on k, the candidate byte bound, the excluded-id shift and
    the table of `_offsets`."""
    p, r, n = config.masking_prob, config.randomize_prob, config.no_change_prob
    k_random, k_keep, k_select = (math.ceil(t * 2 ** _K_BITS) for t in (p * r, p * (r + n), p))
    k_keep, k_random = min(k_keep, k_select), min(k_random, k_keep, k_select)  # float64 sums
    candidate_bytes = -(-k_select >> _LOW_BITS)        # ceil: a byte below it may select
    # the t-th drawable id is t + #{i: excluded[i] - i <= t} (excluded ascending)
    excluded = np.asarray(config.random_exclude, dtype=np.int64)
    table, top = eligibility_table(config)
    shift = excluded - np.arange(excluded.size)
    kernel = None
    if table is not None:            # the offset `_offsets` adds, per id below `top`
        table = np.where(table, -k_keep % 2**32, _INELIGIBLE).astype(np.uint32)
        table.flags.writeable = False
        # the compiled pass's scalars (native_cpu.c), kept alive here with their addresses
        params = np.array([candidate_bytes, k_random - k_keep, k_select - k_keep,
                           config.mask_token, config.padding_token, config.n_random, top,
                           shift.size], dtype=np.int64)
        kernel = (params, table, shift, params.ctypes.data, table.ctypes.data,
                  shift.ctypes.data)
    return (k_random, k_keep, k_select, candidate_bytes, shift, table, top, kernel)


# The last config's plan, found by identity: cheaper than hashing the config on every call.
_last_plan = (None, None)


def _plan_of(config: MaskingConfig):
    """`_plan(config)`, looked up by identity when `config` is the previous call's."""
    global _last_plan
    last = _last_plan                         # one read: another thread may replace it
    if last[0] is config:
        return last[1]
    plan = _plan(config)
    _last_plan = (config, plan)
    return plan


# SplitMix64 (Steele, Lea and Flood 2014, with Vigna's constants): its state steps by GAMMA,
# and each output is the state through a mix that makes every output bit depend on every state
# bit; so G_s(c), its (c + 1)-th output from state s, costs a few operations for any c
_GAMMA, _MIX1, _MIX2 = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
                        np.uint64(0x94D049BB133111EB))
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))


def _seeds(generator) -> np.ndarray:
    """The call's two seeds `(a, b)`: two 64-bit words from `generator`, as NumPy uint64."""
    w = np.empty(2, dtype=np.int64)
    torch.from_numpy(w).random_(-2 ** 63, None, generator=generator)
    return w.view(np.uint64)


def _splitmix(state: np.uint64, counters: np.ndarray) -> np.ndarray:
    """`G_state(c)` for each counter c (any integer array of counters >= 0), as uint64."""
    z = counters.astype(np.uint64)
    z *= _GAMMA                         # modulo 2**64, as every operation here:
    z += np.uint64((int(state) + int(_GAMMA)) % 2**64)   # (c + 1) * GAMMA + state
    shifted = z >> _SHIFTS[0]           # one scratch array for the three shifts
    z ^= shifted
    z *= _MIX1
    z ^= np.right_shift(z, _SHIFTS[1], out=shifted)
    z *= _MIX2
    z ^= np.right_shift(z, _SHIFTS[2], out=shifted)
    return z


def _high_bytes(state: np.uint64, start: int, n: int) -> np.ndarray:
    """The bytes of positions `start .. start + n - 1`: position i's is byte `i % 8` of
    `G_state(i // 8)`, least significant first on every machine."""
    words = _splitmix(state, np.arange(start // 8, (start + n + 7) // 8, dtype=np.uint64))
    if sys.byteorder != "little":
        words = words.byteswap()
    return words.view(np.uint8)[start % 8:start % 8 + n]


def mask_tokens_cpu(x: torch.Tensor, config: MaskingConfig, *, generator=None,
                    compiled_pass: bool = True):
    """Mask a CPU tensor (no input checks): the stream of the module docstring.

    Args:
        x: integer ids, any shape.
        config: the masking parameters.
        generator: the `torch.Generator` that draws the two seeds (torch's default when None).
        compiled_pass: use the compiled pass (`mlm_torch.compiled`) where it is built and
            takes `x`'s dtype (int32, int64); False runs the NumPy formulation. Same bits.

    Returns:
        `(x_masked, y)`: new contiguous tensors with the dtype and shape of `x`.
    """
    plan = _plan_of(config)
    seeds = _seeds(generator)
    if compiled_pass and plan[7] is not None and x.dtype in _COMPILED and x.numel():
        lib = compiled.library()
        if lib is not None:
            return _mask_compiled(lib, x, plan, seeds)
    x_masked, y, source, padding = new_outputs(x, config, CHUNK)
    flat_x, flat_y = x_masked.numpy().reshape(-1), y.numpy().reshape(-1)   # views: [N]
    if flat_x.size <= CHUNK:                     # one slice: no slicing to pay for
        if source is not None or padding is not None:
            fill_slice(flat_x, flat_y, slice(None), source, padding)
        _mask_candidates(flat_x, flat_y, 0, seeds, plan, config)
        return x_masked, y
    for start in range(0, flat_x.size, CHUNK):   # any order would do: positions are counters
        s = slice(start, min(flat_x.size, start + CHUNK))
        fill_slice(flat_x, flat_y, s, source, padding)
        _mask_candidates(flat_x[s], flat_y[s], start, seeds, plan, config)
    return x_masked, y


# the compiled pass per dtype of x (ids wider than int32 or narrower: the NumPy formulation)
_COMPILED = {torch.int64: "mlm_mask_int64", torch.int32: "mlm_mask_int32"}


def _mask_compiled(lib, x: torch.Tensor, plan, seeds: np.ndarray):
    """The stream of the module docstring by the compiled pass (`mlm_torch.compiled`): one
    call writes both outputs."""
    x_masked, y, source = compiled.outputs(x)
    params, table, shift = plan[7][3:]
    getattr(lib, _COMPILED[x.dtype])(source.data_ptr(), x_masked.data_ptr(), y.data_ptr(),
                                     x.numel(), seeds.ctypes.data, table, shift, params)
    return x_masked, y


def new_outputs(x: torch.Tensor, config: MaskingConfig, chunk: int):
    """The outputs of a CPU call, and what `fill_slice` still has to write into them.

    A contiguous batch of at most one slice (`chunk` positions) and below torch's parallel
    grain (`TORCH_GRAIN`) is copied and filled by two torch calls, a clone and a full, on the
    calling thread (in a whole call at `[512, 32]`, within a microsecond of NumPy's copy and
    fill). A larger one is filled by
    NumPy a cache-sized slice at a time: single-threaded, so no thread-pool barrier, and the
    slice is still in cache when its selected positions are written.

    Returns:
        `(x_masked, y, source, padding)`: `source` the flat ids left to copy into `x_masked`
        and `padding` the id left to fill `y` with, each None when already done.
    """
    if x.numel() <= min(chunk, TORCH_GRAIN) and x.is_contiguous() and type(x) is torch.Tensor:
        return (x.clone(memory_format=torch.contiguous_format),
                torch.full_like(x, config.padding_token), None, None)
    x_masked, y = torch.empty(x.shape, dtype=x.dtype), torch.empty(x.shape, dtype=x.dtype)
    source = x.numpy()
    if not source.flags.c_contiguous:              # one strided copy, nothing left to copy
        np.copyto(x_masked.numpy(), source)
        return x_masked, y, None, config.padding_token
    return x_masked, y, source.reshape(-1), config.padding_token


def fill_slice(flat_x: np.ndarray, flat_y: np.ndarray, s: slice, source, padding) -> None:
    """Copy `source[s]` into `flat_x[s]` and fill `flat_y[s]` with `padding`, where left to do
    (`new_outputs`)."""
    if source is not None:
        flat_x[s] = source[s]
    if padding is not None:
        flat_y[s] = padding


def _mask_candidates(flat_x, flat_y, start: int, seeds, plan, config: MaskingConfig):
    """Steps 2 to 4 of the stream on the slice of positions `start ..`: `flat_x` and `flat_y`
    (the slice's) are written in place.

    Subsets are taken as indices (`nonzero`, then `take` on each array that shares them) and
    written by index assignment: a boolean mask index costs about twice as much per array,
    and `np.where` or `np.putmask` over the candidates more than the indices of the few
    they change. Eligibility is folded into `k` (`_offsets`), so that each outcome is one
    compare over the candidates.
    """
    k_random, k_keep, k_select, candidate_bytes = plan[:4]
    high = _high_bytes(seeds[0], start, flat_x.size)                        # [n]
    where = (np.less(high, candidate_bytes).nonzero()[0] if candidate_bytes < 256
             else np.arange(flat_x.size))                                   # [n_candidates]
    word = _splitmix(seeds[1], where + start)                               # [n_candidates]
    k = _k(high.take(where), word)
    original = flat_x.take(where)
    k += _offsets(original, plan, config)   # eligible: k - k_keep; ineligible: >= 2**30
    signed = k.view(np.int32)
    chosen = np.less(signed, k_select - k_keep).nonzero()[0]               # the selected
    flat_y[where.take(chosen)] = original.take(chosen)
    # [MASK] for k in [k_keep, k_select): the only k - k_keep in [0, k_select - k_keep)
    flat_x[where.take(np.less(k, k_select - k_keep).nonzero()[0])] = config.mask_token
    to_random = np.less(signed, k_random - k_keep).nonzero()[0]
    draws = word.take(to_random)
    draws >>= _LOW_BITS
    draws %= config.n_random
    flat_x[where.take(to_random)] = random_ids(draws, config) if plan[4].size else draws


def _k(high: np.ndarray, word: np.ndarray) -> np.ndarray:
    """`k = high << 16 | (word & 0xFFFF)` as uint32: on a little-endian machine the low word's
    truncation with its upper half overwritten, two calls."""
    if sys.byteorder == "little":
        k = word.astype(np.uint32)
        k.view(np.uint16)[1::2] = high
        return k
    k = high.astype(np.uint32)
    k <<= _LOW_BITS
    k |= (word & 0xFFFF).astype(np.uint32)
    return k


def _offsets(ids: np.ndarray, plan, config: MaskingConfig) -> np.ndarray:
    """uint32 per id: `-k_keep` (modulo 2**32) where it may be selected (`eligible_ids`), else
    `_INELIGIBLE`. Added to k, so that as int32 each outcome is one compare and, for
    [MASK], one unsigned compare of the same bits."""
    table, top = plan[5:7]
    if table is not None and ids.dtype != np.uint64:
        return table.take(ids, mode="clip")            # one call: ids above `top` clip to it
    if table is not None:
        return table[np.minimum(ids, top)]             # uint64: no negative index
    k_keep = plan[1]
    return np.where(eligible_ids(ids, config), -k_keep % 2**32, _INELIGIBLE).astype(np.uint32)


def random_ids(t: np.ndarray, config: MaskingConfig) -> np.ndarray:
    """Draws `t` in `[0, n_random)` as ids: the t-th id not in `random_exclude`."""
    shift = _plan_of(config)[4]
    if shift.size:
        t = t.astype(np.int64)
        t += np.searchsorted(shift, t, side="right")
    return t
