"""Runs maskers over synthetic batches, then decides every check under one Holm budget."""

from __future__ import annotations

import copy
import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from mlm_ref.config import MaskingConfig

from ..cli import progress as progress_bar
from ..engine import DEFAULT_ALPHA
from ..engine import distributed as distributed_run
from ..engine.arguments import check_run_arguments, check_testable, check_timeout
from ..engine.frameworks import torch_on_one_core
from .checks import agreement_checks, masker_checks
from .counts import Counts
from .host_counts import INVARIANTS, HostCounts
from ..engine.guard import call as guarded_call
from ..engine.guard import reason as guard_reason
from .inputs import SyntheticBatches, derive_seed
from .invariants import invariant_checks
from .adapters import Adapter, distinct_names, resolve
from ..engine.resolve import by_config
from ..engine.primitives import holm
from .verdicts import Report
from .power.call_shapes import shapes_run
from .power.seeding import changed_positions, usage_run

__all__ = ["check_maskers", "run_masker", "run_maskers", "check_run_arguments", "check_testable",
           "SEQ_LEN", "LAYOUTS", "default_chunk"]

SEQ_LEN = 128
MUTATED = list(INVARIANTS).index("input not mutated")   # its row of `Counts.invariants`
LAYOUTS = ("seq-batch", "batch-seq")
COUNTING_THREADS = 2  # threads counting the halves of the calls (`Counts.begin`) at once
THREADED_FROM = 1 << 16  # positions per call from which counting on threads pays for itself


def default_chunk(device) -> int:
    """Tokens per call: large on a GPU (few launches per token), cache-sized on a CPU."""
    return 1 << 20 if torch.device(device).type == "cuda" else 1 << 17


def counting_arrays(device: torch.device) -> str:
    """What the counters are: on a CPU, NumPy arrays, reading the tensors' own memory (NumPy's
    loops take about two thirds of torch's CPU time on these integer operations); elsewhere,
    torch tensors on the device. The ranks of a distributed run sum either alike."""
    return "numpy" if device.type == "cpu" else "torch"


def _shape(tokens: int, chunk: int) -> tuple[int, int, int]:
    """(seq_len, batch, calls) covering at least `tokens` with calls of equal shape."""
    batch = max(2, min(chunk, max(tokens, 1)) // SEQ_LEN)
    calls = max(2, -(-tokens // (SEQ_LEN * batch)))  # two calls at least: consecutive pairs
    return SEQ_LEN, batch, calls


def run_masker(adapter: Adapter, *, tokens: int, seed: int, device, chunk: int | None = None,
               progress: bool = False, timeout: float | None = None,
               distributed: bool = False) -> HostCounts:
    """Feed `adapter` synthetic batches totalling at least `tokens` and return its host counts
    (`run_maskers` with one masker; see there)."""
    return run_maskers([adapter], tokens=tokens, seed=seed, device=device, chunk=chunk,
                       progress=progress, timeout=timeout, distributed=distributed)[0]


class _Lane:
    """One masker's part of a run: its counts, its counting still under way, where it stopped
    and the seconds it took."""

    def __init__(self, adapter: Adapter, counts: Counts):
        self.adapter, self.counts = adapter, counts
        self.pending, self.stopped, self.seconds = None, None, 0.0

    def wait(self) -> None:
        """Let the counting of the last call finish; a call whose counting raised ends the
        lane's run there, as the masker's failure."""
        if self.pending is None:
            return
        t, first = self.pending
        self.pending = None
        try:
            step, second, seconds = first.result()
            self.seconds += seconds + second.result()
            self.counts.end(step)
        except Exception as e:  # noqa: BLE001 (outputs the counts could not take)
            self.counts.problem("masker runs without error", guard_reason(e))
            self.stopped = t if self.stopped is None else min(self.stopped, t)


def run_maskers(adapters, *, tokens: int, seed: int, device, chunk: int | None = None,
                progress: bool = False, timeout: float | None = None,
                distributed: bool = False) -> list[HostCounts]:
    """Feed every adapter (all of one config) the same synthetic batches, totalling at least
    `tokens` each, and return their host counts, in order.

    The maskers run in lockstep, one after the other on this thread: each batch is made once,
    and what the counts derive from the input alone is computed once for all of them (each
    masker gets its own copy to mask). The next batch is made, and each call counted in two
    halves (`Counts.begin`), on `COUNTING_THREADS` threads while the maskers run (one
    masker's calls in order), every torch operation of the run on one core: independent
    streams use the cores without the barriers of multi-threaded operations, which stall on a
    busy machine.
    Call 0 is made twice with the same seed (the determinism check). A masker that raises or
    breaks the type/shape contract stops its own run there; what it broke is in its counts.
    With `distributed` in an initialised `torch.distributed` group of several ranks
    (`verify.engine.distributed`), every rank must call this alike: each makes its block of
    the calls and returns the counts of the whole run, the same as a single process's.
    """
    if len({a.config for a in adapters}) != 1:
        raise ValueError("run_maskers runs maskers of one config (the inputs are made for it); "
                         "group them with verify.engine.resolve.by_config")
    device = torch.device(device)
    seq_len, batch, calls = _shape(tokens, chunk or default_chunk(device))
    share = distributed_run.share() if distributed else None
    mine = range(calls) if share is None else share.calls(calls)
    batches = SyntheticBatches(adapters[0].config, seq_len, batch, device, seed)
    arrays = counting_arrays(device)
    lanes = [_Lane(a, Counts(a.config, seq_len, batch, calls, device, start=mine.start,
                             arrays=arrays)) for a in adapters]
    bar = progress_bar(seq_len * batch * len(mine) * len(lanes), unit="tok",
                       desc=" ".join(a.name for a in adapters), enabled=progress,
                       unit_scale=True)
    pool = ThreadPoolExecutor(COUNTING_THREADS, initializer=_one_core) \
        if seq_len * batch >= THREADED_FROM else _Inline()
    try:
        with torch_on_one_core():
            return _lockstep(lanes, batches, mine, share, bar, pool, tokens=tokens, seed=seed,
                             device=device, timeout=timeout, shape=(seq_len, batch),
                             calls=calls)
    finally:
        pool.shutdown(cancel_futures=True)
        bar.close()


def _lockstep(lanes, batches, mine, share, bar, pool, *, tokens, seed, device, timeout, shape,
              calls) -> list[HostCounts]:
    """`run_maskers`' loop over the calls, then each lane's host counts."""
    pairs = range(mine.start // 2, -(-mine.stop // 2))
    ready = pool.submit(_prepare, batches, lanes[0].counts, pairs[0]) if pairs else None
    for t in mine:
        if t % 2 == 0 or t == mine.start:  # a new pair of calls: its batch, the next one's
            x_ref, terms = ready.result()                 # [seq_len, batch], kept
            if t // 2 + 1 < pairs.stop:
                ready = pool.submit(_prepare, batches, lanes[0].counts, t // 2 + 1)
        for lane in lanes:
            if lane.stopped is None:
                _step(lane, x_ref, terms, t, seed, timeout, pool)
            bar.update(shape[0] * shape[1])
    for lane in lanes:
        lane.wait()
    bar.close()
    return [_finish(lane, share, mine, tokens=tokens, seed=seed, device=device,
                    timeout=timeout, shape=shape, calls=calls) for lane in lanes]


class _Inline:
    """An executor that runs each task at once on the calling thread: for small calls, whose
    hand-over to a thread costs more than the counting."""

    def submit(self, fn, *args) -> Future:
        done = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 (raised again by `result`, as a thread's would be)
            done.set_exception(e)
        return done

    def shutdown(self, **_) -> None:
        pass


def _one_core() -> None:
    torch.set_num_threads(1)  # this thread's operations (the setting is per thread)


def _prepare(batches: SyntheticBatches, counts: Counts, pair: int) -> tuple:
    """The batch of `pair` and what the counts (of every lane: one config) derive from it."""
    x_ref = batches.make(pair)
    return x_ref, counts.input_terms(counts.xp.asarray(x_ref))


def _step(lane: _Lane, x_ref, terms: dict, t: int, seed: int, timeout, pool) -> None:
    """Call t of `lane`'s masker on its own copy of `x_ref` (while its call t - 1 is counted),
    its counting handed to `pool`."""
    adapter, counts = lane.adapter, lane.counts
    start = time.perf_counter()
    try:
        x = x_ref.to(adapter.dtype, copy=True)                # the masker's own copy
        s = derive_seed(seed, "masker:" + adapter.name, t)
        x_after, out, y, problems = guarded_call(adapter, x, s, index=t, timeout=timeout)
        for p in problems:
            counts.problem("outputs keep shape, dtype and device", p)
        if problems:
            lane.stopped = t
            return
        # the harness's own copies: a masker may hand back the same buffers on every call, and
        # this call is counted while the next one runs (and replayed first, on call 0)
        out, y = (a.to(x_ref.device, torch.int64, copy=True) for a in (out, y))
        if t == 0:
            _determinism(adapter, x_ref, s, out, y, counts, timeout)
    except Exception as e:  # noqa: BLE001 (a masker that raises fails a check, not the run)
        counts.problem("masker runs without error", guard_reason(e))
        lane.stopped = t
        return
    finally:
        lane.seconds += time.perf_counter() - start
    lane.wait()  # the call before, counted while this one ran (it may have stopped the lane)
    if lane.stopped is None:
        lane.pending = (t, pool.submit(_count, pool, counts, x_ref, x_after, out, y, terms))


def _count(pool, counts: Counts, x_ref, x_after, out, y, terms) -> tuple:
    """On a worker: the call's codes and its first half; the second half handed to `pool`
    (never waited for here, so the workers cannot all wait on each other)."""
    start = time.perf_counter()
    step = counts.begin(x_ref, x_after, out, y, terms=terms)
    second = pool.submit(_timed, step.halves[1])
    step.halves[0]()
    return step, second, time.perf_counter() - start


def _timed(half) -> float:
    start = time.perf_counter()
    half()
    return time.perf_counter() - start


def _finish(lane: _Lane, share, mine: range, *, tokens, seed, device, timeout, shape,
            calls) -> HostCounts:
    """`lane`'s host counts: summed over the ranks, then the runs of the masker as users
    call it (seeded once, nearby seeds, every call shape: small runs, made alike on every
    rank of a distributed run)."""
    adapter, counts, start = lane.adapter, lane.counts, time.perf_counter()
    if share is not None:
        share.reduce(counts, mine, lane.stopped)
    h = counts.host()
    if lane.stopped is None and not h.host_problems:
        for attr, extra in (("usage", usage_run), ("shapes", shapes_run)):
            setattr(h, attr, extra(adapter, adapter.config, tokens=tokens, seed=seed,
                                   device=device, timeout=timeout))
    h.seconds = lane.seconds + time.perf_counter() - start
    h.shape, h.calls = shape, calls
    return h


def _determinism(adapter, x_ref, seed, out, y, counts, timeout):
    x = x_ref.to(adapter.dtype, copy=True)
    x_after, out2, y2, _ = guarded_call(adapter, x, seed, index=0, timeout=timeout)
    # the replay, too, must keep its input
    counts.invariants[MUTATED] += changed_positions(x_ref, x_after)
    same = lambda a, b: a.shape == b.shape and bool(torch.equal(a.to(b.device), b))  # noqa: E731
    if not (same(out2, out) and same(y2, y)):
        counts.problem("same seed gives same output",
                       "two calls with the same seed and input gave different outputs")


def check_maskers(maskers, config: MaskingConfig | None = None, *, tokens: int = 1 << 20,
                  seed: int = 0, alpha: float = DEFAULT_ALPHA, device="cpu",
                  chunk: int | None = None, cross: bool = True, progress: bool = False,
                  skipped: dict | None = None, layout: str = "seq-batch",
                  timeout: float | None = None, distributed: bool = False) -> Report:
    """Check each masker alone and every pair against each other; one Holm budget for all.

    Args:
        maskers: names (`numpy`, `torch`, `jax`, `MODULE:ATTR`), our `MLM` objects, or
            callables with the module description's contract (torch `[seq_len, batch]`).
        config: the parameters to check against (taken from an `MLM` object when omitted).
        tokens: tokens fed to each masker (rounded up to whole calls).
        seed: seeds the inputs and every masker call.
        alpha: family-wise false-alarm probability of the whole run.
        device: where inputs are made and counts accumulated.
        chunk: tokens per call (default: 65,536 on a CPU, 1,048,576 on CUDA).
        cross: also compare every pair of maskers.
        progress: show a progress bar (stderr, TTY only, after 1.5 s).
        skipped: `{name: reason}` of maskers left out, listed in the report.
        layout: `seq-batch` feeds `[seq_len, batch]` (the module description's layout);
            `batch-seq` feeds the transpose `[batch, seq_len]`, as Hugging Face maskers take it.
        timeout: seconds one masker call may take (None: no limit); a call that overruns
            fails "masker runs without error" and ends that masker's run.
        distributed: in an initialised `torch.distributed` group of several ranks, share the
            calls between the ranks and sum their counts (every rank must call this alike, and
            each gets the whole run's report, the same as a single process's); `verify.stats`
            sets it under torchrun.

    Raises:
        TypeError, ValueError: a bad argument or a configuration with nothing to test (nothing
            eligible), before any masker runs.
    """
    tokens, seed, alpha = check_run_arguments(tokens=tokens, seed=seed, alpha=alpha)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    check_timeout(timeout)
    adapters = distinct_names([resolve(m, config, timeout=timeout) for m in maskers])
    config = config or adapters[0].config
    check_testable(config)
    # copies: the layout is this run's, and the caller's adapters stay as they were given
    adapters = [copy.copy(a) for a in adapters]
    for a in adapters:
        a.layout = layout
    results = {}
    for group in by_config(adapters):  # each config its own inputs
        hosts = run_maskers(group, tokens=tokens, seed=seed, device=device, chunk=chunk,
                            progress=progress, timeout=timeout, distributed=distributed)
        results.update((a.name, h) for a, h in zip(group, hosts))
    results = {a.name: results[a.name] for a in adapters}
    checks = []
    for name, h in results.items():
        checks += invariant_checks(h, name) + masker_checks(h, config, name)
    if cross:
        for (a_name, a), (b_name, b) in itertools.combinations(results.items(), 2):
            checks += agreement_checks(a, b, f"{a_name} vs {b_name}")
    holm(checks, alpha)
    return Report(config=config, alpha=alpha, seed=seed, tokens=tokens, device=str(device),
                  checks=checks, skipped=dict(skipped or {}), counts=results)
