"""The masker on many call shapes: batch sizes, lengths, odd sizes and tails.

The main run feeds one shape (`[128, batch]`, a power of two in every dimension). A masker
whose behaviour depends on the call's shape (a tiled kernel that drops or mishandles the
partial last tile, a fast path for large calls and a slow one for small calls, a layout guessed
from the shape) looks correct there. The contract treats every position alike in any shape, so
on a spread of shapes (`SHAPES`: one position to a thousand, one sequence to hundreds, odd
sizes beside powers of two) these hold:

* every call returns outputs of the input's shape that keep the invariants (exact);
* the selection rate and category shares are the same in every shape, and as in the main run
  (`[unselected, [MASK], original, other]`, one row per shape);
* the selection rate is the same at the ends of a call in the masker's own flat order
  (`END_BUCKETS` classes of the distance from the first or the last position, 0, 1-2, 3-6,
  ...), where a partial tile or a remainder lives;
* the selections of any two positions of a call are independent, at every shift of the flat
  order, summed over the calls (a stream or a tile that repeats within a call).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

from ..inputs import SyntheticBatches, derive_seed
from .joint import position_codes
from .seeding import (extra_tokens, first_broken, flat_order, lags_from_spectrum, masked_copy,
                      spectra, standardised_selection)

__all__ = ["ShapeCounts", "shapes_run", "SHAPES", "END_BUCKETS", "MAX_CALLS_PER_SHAPE"]

# (seq_len, batch): one position, tiny and odd, one off a power of two either way, one long
# sequence, many short ones, an odd batch of the main length (also the seeded-once run's shape).
# Few shapes: a compiling masker (JAX) compiles once per shape.
SHAPES = ((1, 1), (5, 3), (127, 8), (129, 3), (1000, 1), (16, 130), (96, 63), (128, 31))
END_BUCKETS = 11              # distance 0, 1-2, 3-6, ..., from each end (the last: the rest)
MAX_CALLS_PER_SHAPE = 64


@dataclasses.dataclass
class ShapeCounts:
    """What the checks read of the shapes run.

    Args:
        by_shape: `[shapes, 8]` code counts per shape of `SHAPES`.
        by_end: `[2 * END_BUCKETS, 8]` code counts by distance from the first (rows
            0 .. END_BUCKETS-1) or the last position (the rest) of a call, flat order.
        lag_num, lag_var: summed products and null variances of the standardised selection
            indicators of two positions `L` apart in one call, `L` = 1, 2, ... (index L - 1).
        calls: calls made; problems: what went wrong (the run stops at the first).
        mutated: positions of the caller's inputs changed by these calls (added to "input not
            mutated"); mutated_at: the first call that changed its input, in words.
    """

    by_shape: np.ndarray
    by_end: np.ndarray
    lag_num: np.ndarray
    lag_var: np.ndarray
    calls: int
    problems: list[str]
    mutated: int = 0
    mutated_at: str = ""


def _end_classes(n: int, device) -> torch.Tensor:
    """Row of `by_end` of each flat index of a call of `n` positions."""
    i = torch.arange(n, device=device)
    from_end = n - 1 - i
    side = (from_end < i).long()
    d = torch.minimum(i, from_end)
    bucket = torch.floor(torch.log2(d.double() + 1)).long().clamp(max=END_BUCKETS - 1)
    return side * END_BUCKETS + bucket


def _where(seq_len: int, batch: int, call: int) -> str:
    return f"shape [{seq_len}, {batch}] (as [seq_len, batch]), call {call}"


def _codes(config, columns, outputs, ineligible, layout: str, problems: list):
    """Codes `[calls, n]` of a shape's calls in the masker's flat order (`flat_order`), up to
    the first call whose outputs break an invariant (reported in `problems`); None if none."""
    if not outputs:
        return None
    seq_len, calls, batch = columns.shape[0], len(outputs), outputs[0][0].shape[1]
    out, y = (torch.cat(t, 1) for t in zip(*outputs))                  # [seq_len, calls*batch]
    code, broken = position_codes(config, columns[:, :calls * batch], out, y, ineligible)
    # a masker that writes into its input fails "input not mutated" once, not here too
    if int(broken.sum()):                                # find the first call that broke one
        bad = first_broken(config, ((columns[:, j * batch:(j + 1) * batch], *o)
                                    for j, o in enumerate(outputs)), ineligible)
        problems.append(f"{_where(seq_len, batch, bad)}: outputs break the contract's "
                        f"invariants (labels, unchanged positions, eligibility, replacements)")
        code, calls = code[:, :bad * batch], bad
    per_call = code.reshape(seq_len, calls, batch).transpose(0, 1)      # [calls, seq, batch]
    return flat_order(per_call, layout).long() if calls else None


def _add_calls(flat, ends, p: float, by_end, lag_num, lag_var) -> np.ndarray:
    """Add a shape's calls `flat` (`[calls, n]` codes, flat order) to `by_end` and to the sums
    over shifts 1 .. n-1 `lag_num`, `lag_var` (in place); return their code counts `[8]`."""
    n = flat.shape[1]
    by_end += torch.bincount((ends + flat).flatten(), minlength=by_end.numel())
    size = 1 << (2 * n - 1).bit_length()
    # |spectrum|^2 of the selections and of eligibility, summed over the calls: [size/2+1]
    power = [(f.real ** 2 + f.imag ** 2).sum(0)
             for f in spectra(*standardised_selection(flat, p), size)]
    num, var = (lags_from_spectrum(t.to(torch.complex128), n, size)[n:] for t in power)
    lag_num += num                                                    # shifts 1 .. n-1
    lag_var += torch.round(var)
    return np.bincount(flat.flatten().cpu().numpy(), minlength=8)[:8]


def shapes_run(adapter, config: MaskingConfig, *, tokens: int, seed: int, device,
               timeout: float | None = None) -> ShapeCounts | None:
    """Feed `adapter` calls of every shape of `SHAPES` (about `extra_tokens(tokens)` in all,
    spread evenly over the shapes, 1 to `MAX_CALLS_PER_SHAPE` calls each); None when
    `masking_prob` leaves nothing random."""
    p = config.masking_prob
    if not 0 < p < 1:
        return None
    per_shape = extra_tokens(tokens) / len(SHAPES)
    ineligible = torch.tensor(config.ineligible_tokens, dtype=torch.int64, device=device)
    longest = max(s * b for s, b in SHAPES)
    by_shape = np.zeros((len(SHAPES), 8), np.int64)
    by_end = torch.zeros(2 * END_BUCKETS * 8, dtype=torch.int64, device=device)
    lag_num = torch.zeros(longest - 1, dtype=torch.float64, device=device)
    lag_var = torch.zeros_like(lag_num)
    problems, made, mutated, mutated_at = [], 0, 0, ""
    for k, (seq_len, batch) in enumerate(SHAPES):
        n = seq_len * batch
        ends = _end_classes(n, device) * 8
        calls = int(np.clip(round(per_shape / (seq_len * batch)), 1, MAX_CALLS_PER_SHAPE))
        # the columns of all the shape's calls made at once: they are drawn independently,
        # so call j's `batch` of them is a batch as the main run makes them (one make per
        # shape instead of one per call: tiny calls cost their dispatch, not their work)
        columns = SyntheticBatches(config, seq_len, batch * calls, device, derive_seed(
            seed, f"shape inputs {seq_len}x{batch}", 0)).reference(0)  # [seq_len, batch*calls]
        outputs = []                                     # per call: (out, y) [seq_len, batch]
        for j in range(calls):
            x_ref = columns[:, j * batch:(j + 1) * batch].contiguous()
            where = _where(seq_len, batch, j)
            out, y, bad, changed = masked_copy(
                adapter, x_ref, derive_seed(seed, f"shapes:{adapter.name}", made),
                adapter.dtype, index=made, timeout=timeout)
            if changed:     # every call the gate makes keeps the caller's input
                mutated, mutated_at = mutated + changed, mutated_at or where
            if bad:
                problems.append(f"{where}: {bad[0]}")
                break
            made += 1
            outputs.append((out, y))                     # the harness's copies (`masked_copy`)
        # the shape's calls coded and counted together: a few ops instead of a few per call;
        # a call that broke an invariant came before the call that raised, if one did
        broken: list[str] = []
        good = _codes(config, columns, outputs, ineligible, adapter.layout, broken)
        problems[:0] = broken
        if good is not None:                                    # [calls without problems, n]
            by_shape[k] += _add_calls(good, ends, p, by_end, lag_num[:n - 1], lag_var[:n - 1])
        if problems:
            break
    get = lambda t: t.cpu().numpy()  # noqa: E731
    return ShapeCounts(by_shape=by_shape, by_end=get(by_end).reshape(2 * END_BUCKETS, 8),
                       lag_num=get(lag_num), lag_var=get(lag_var), calls=made,
                       problems=problems, mutated=mutated, mutated_at=mutated_at)
