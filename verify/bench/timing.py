"""Timing for `verify.bench`: one masker on one batch size, and the copy bandwidth beside it.

What is timed is one call on an input it has not seen in a while: the inputs rotate over
enough distinct batches to overflow the last-level cache (when memory allows), the first calls
(compilation, jit tracing, autotuning, allocator warm-up) are not counted, a GPU is timed with
CUDA events around the call after a synchronisation, and the figure is the median of the calls.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .maskers import Masker, make_batch

__all__ = ["cache_bytes", "copy_bandwidth", "rotation", "time_maskers"]


def cache_bytes(device: str) -> int:
    """The last-level cache that rotation must defeat (32 MiB when it cannot be read)."""
    if device == "cuda":
        import torch
        return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20))
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as f:
            text = f.read().strip()
        return int(text[:-1]) << {"K": 10, "M": 20}[text[-1]]
    except (OSError, ValueError, KeyError):
        return 32 << 20


def rotation(seq_len: int, batch: int, device: str, budget_bytes: int) -> list[np.ndarray]:
    """Distinct int64 batches: twice the cache in all, at least 2, at most `budget_bytes`."""
    size = seq_len * batch * 8
    n = max(2, min(math.ceil(2 * cache_bytes(device) / size), budget_bytes // size, 16))
    return [make_batch(seq_len, batch, seed) for seed in range(n)]


def _timed_call(m: Masker, inp) -> float:
    """Seconds for one call of `m` on `inp`, results ready."""
    if m.cuda_events:
        import torch
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        m.call(inp)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    m.sync(m.call(inp))
    return time.perf_counter() - t0


# Calls per masker per round. The first call of a burst is not counted: it runs in the wake of
# another masker, whose footprint (a heavy one evicts the caches and the allocator's free
# lists) would otherwise make the figure depend on which maskers happen to share the run.
BURST = 4


def time_maskers(maskers: list[Masker], xs: list[np.ndarray], *, warmup: int, repeats: int,
                 budget_s: float) -> list[dict]:
    """Median seconds per call of each masker over the rotated inputs `xs`.

    The maskers take turns, a burst of `BURST` calls each per round, so a slow phase of a
    shared machine (another process, frequency scaling) falls on all of them alike instead of
    on whichever happened to be timed then; the ratios between them are what the run is for.
    Within a burst, the calls after the first are counted.

    Args:
        maskers: the maskers to time.
        xs: the rotation of NumPy batches `[seq_len, batch]`.
        warmup: calls per masker not counted (compilation, caches, allocator).
        repeats: counted calls wanted; fewer (3 rounds at least) when they exceed `budget_s`
            per masker.
        budget_s: rough time allowed per masker for the counted calls.

    Returns:
        one `{"median_s", "repeats"}` per masker, in order.
    """
    inputs = [m.setup(xs) for m in maskers]
    for m, ins in zip(maskers, inputs):
        for i in range(warmup):
            m.sync(m.call(m.fresh(ins[i % len(ins)])))
    times: list[list[float]] = [[] for _ in maskers]
    calls = warmup
    started, rounds = time.perf_counter(), 0
    while len(times[0]) < repeats and (rounds < 3 or
                                       time.perf_counter() - started < budget_s * len(maskers)):
        for m, ins, ts in zip(maskers, inputs, times):
            for j in range(BURST):
                inp = m.fresh(ins[(calls + j) % len(ins)])   # untimed: clone or not
                m.sync(inp)
                seconds = _timed_call(m, inp)
                if j:
                    ts.append(seconds)
                del inp
        calls += BURST
        rounds += 1
    return [{"median_s": float(np.median(ts)), "repeats": len(ts)} for ts in times]


def copy_bandwidth(device: str, n_bytes: int, repeats: int = 7) -> float:
    """Device-to-device copy bandwidth in GB/s: bytes read plus bytes written per second."""
    import torch
    dev = torch.device("cuda" if device == "cuda" else "cpu")
    src = torch.ones(n_bytes // 8, dtype=torch.int64, device=dev)
    dst = torch.empty_like(src)
    times = []
    for i in range(repeats + 2):
        if device == "cuda":
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            dst.copy_(src)
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            dst.copy_(src)
            seconds = time.perf_counter() - t0
        if i >= 2:  # the first copies fault the pages in
            times.append(seconds)
    return 2 * src.numel() * 8 / float(np.median(times)) / 1e9
