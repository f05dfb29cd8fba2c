"""`python -m verify.bench --device cpu|cuda [--json PATH]`: masking throughput, ours and theirs.

Every available masker (`verify.bench.maskers`) is timed in this one process on int64 batches
`[seq_len, batch]` of several sizes (`verify.bench.timing`), beside a device-to-device copy, the
yardstick of a memory-bound kernel. The floor of masking is 24 bytes per int64 token (read `x`,
write `x_masked` and `y`); `bandwidth_fraction` is the floor traffic per second over the copy's.
Then the collators (`verify.bench.collate`: ours and Hugging Face's, padding and masking
included) are timed in examples/s, under the JSON key `collators` (`--no-collators` skips
them; `--collators-only` times only them and, with `--json`, replaces that key of an existing
results file and keeps the rest). On a CPU the peak extra memory of every path (NumPy, torch
and JAX; native and exact; uint8 and int64 ids) is measured too, as a multiple of the input
(`verify.bench.memory`), under the key `memory` (`--no-memory` skips it), and the load average
before and after the timing is recorded (`load_average`): on a shared machine, the figures are
read beside it. `python -m verify.bench.report` turns the JSON into docs/benchmarks.md and its
plot.

Exit status: 0 when timed, 2 on a usage error (the `--json` path is checked before timing),
130 when interrupted (Ctrl-C; no results file is written).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

from mlm_ref.config import MaskingConfig

from .. import cli
from ..cli import cuda_problem, usage_error, versions
from .. import registry
from ..registry import BERT
from . import collate
from .maskers import build
from .timing import copy_bandwidth, rotation, time_maskers

# the project's goals on a GPU, as fractions of the copy bandwidth (measured, never asserted)
CUDA_TARGETS = {("torch", "native"): 0.85, ("torch", "exact"): 0.60, ("jax", "exact"): 0.60}
# integer operations per token, counted from the kernels' source: what bounds them when the
# 24 bytes do not (Philox-4x32-10; four threefry2x32-20 hashes and two uint32 modulos)
OPS_PER_TOKEN = {("torch", "native"): 130, ("torch", "exact"): 520, ("jax", "exact"): 520}
# On CUDA the largest batch, [512, 65536], is where the goals are judged and the figures of
# `make gpu-check` are quoted; larger ones would push that check past its time budget.
SIZES = {"cpu": (512, [8, 32, 128, 512]), "cuda": (512, [64, 1024, 16384, 65536])}
QUICK = {"cpu": (128, [8, 64]), "cuda": (512, [64, 4096])}
# the memory section: ids per call, dtypes, and the goal on the peak extra memory of a call
# (its outputs included) as a multiple of the input's bytes
MEMORY_N, MEMORY_DTYPES, MEMORY_GOAL = 2**22, ("uint8", "int64"), 4.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the batches live and the maskers run (default cpu)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here "
                   "(python -m verify.bench.report turns it into docs/benchmarks.md)")
    p.add_argument("--quick", action="store_true",
                   help="two small sizes (one for the collators), few repeats")
    p.add_argument("--seq-len", type=int,
                   help="the maskers' sequence length (default 512; the collators pad to 128)")
    p.add_argument("--batches", type=int, nargs="+", help="the maskers' batch sizes")
    p.add_argument("--repeats", type=int,
                   help="counted calls per size, maskers and collators (median reported)")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME",
                   help="time only these registry maskers (numpy torch jax labml hf-torch "
                        "hf-numpy)")
    p.add_argument("--collators", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the collators, ours and Hugging Face's, in examples/s "
                        "(default on)")
    p.add_argument("--collators-only", action="store_true",
                   help="time only the collators; with --json, replace the 'collators' key "
                        "of an existing results file and keep its other data")
    p.add_argument("--collator-batches", type=int, nargs="+", metavar="N",
                   help="collator batch sizes (default 32 256 on a CPU)")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                   help="on a CPU, also measure each path's peak extra memory as a multiple "
                        "of the input, each in a fresh process (verify.bench.memory; default "
                        "on, off with --quick; with --only, for the named ones of numpy torch "
                        "jax)")
    p.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None,
                   help="also time the token gate itself, `python -m verify.stats --masker "
                        "torch` end to end in fresh processes at 1e8 and 1e6 tokens, twice "
                        "each (verify.bench.gate; default on, off with --quick or --only)")
    p.add_argument("--memory-n", type=int, default=MEMORY_N, metavar="N",
                   help=f"token ids per memory measurement (default {MEMORY_N})")
    return p.parse_args(argv)


def _shapes(args) -> tuple[int, list[int]]:
    seq_len, batches = (QUICK if args.quick else SIZES)[args.device]
    return args.seq_len or seq_len, args.batches or batches


def _row(m, seq_len: int, batch: int, timing: dict, copy_gbps: float) -> dict:
    tokens_per_s = seq_len * batch / timing["median_s"]
    return {"masker": m.name, "mode": m.mode, "shape": [seq_len, batch], "dtype": "int64",
            "tokens_per_s": tokens_per_s, "median_s": timing["median_s"],
            "repeats": timing["repeats"], "floor_bytes_per_token": 24,
            "bandwidth_fraction": tokens_per_s * 24 / (copy_gbps * 1e9), "note": m.note}


def _ratios(results: list[dict], device: str) -> list[dict]:
    """Per shape: ours over the published maskers (and torch exact over JAX exact), beside the
    project's goal where it has one (torch native: 4x labml's on a CPU, 20x on a GPU; NumPy
    native: at least HF's NumPy; torch exact: at least JAX exact on a CPU)."""
    out = []
    by = {(r["masker"], r["mode"], tuple(r["shape"])): r["tokens_per_s"] for r in results}
    pairs = [("torch", "native", "labml", "published", 4.0 if device == "cpu" else 20.0),
             ("numpy", "native", "hf-numpy", "published", 1.0),
             ("torch", "native", "hf-torch", "published", None),
             ("torch", "exact", "jax", "exact", 1.0 if device == "cpu" else None)]
    for shape in sorted({tuple(r["shape"]) for r in results}):
        for ours, mode, theirs, their_mode, goal in pairs:
            a, b = by.get((ours, mode, shape)), by.get((theirs, their_mode, shape))
            if a and b:
                name = theirs if their_mode == "published" else f"{theirs} {their_mode}"
                out.append({"shape": list(shape), "ours": f"{ours} {mode}", "theirs": name,
                            "speedup": a / b, "goal": goal,
                            "held": None if goal is None else a / b >= goal})
    return out


def _targets(results: list[dict], device: str) -> list[dict]:
    """On CUDA, at the largest batch: each goal, met or by how much missed, and the bounds."""
    if device != "cuda" or not results:
        return []
    largest = max(r["shape"][0] * r["shape"][1] for r in results)
    out = []
    for r in results:
        key = (r["masker"], r["mode"])
        if key in CUDA_TARGETS and r["shape"][0] * r["shape"][1] == largest:
            goal = CUDA_TARGETS[key]
            out.append({"masker": r["masker"], "mode": r["mode"], "shape": r["shape"],
                        "bandwidth_fraction": r["bandwidth_fraction"], "target": goal,
                        "met": r["bandwidth_fraction"] >= goal,
                        "missed_by": max(0.0, goal - r["bandwidth_fraction"]),
                        "bytes_per_token": 24, "ops_per_token": OPS_PER_TOKEN[key]})
    return out


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"


def _print_row(r: dict, labml: float | None):
    x = f"{r['tokens_per_s'] / labml:7.2f}x" if labml else "       -"
    print(f"{r['masker']:18s} {r['mode']:9s} {str(r['shape']):14s} {r['tokens_per_s']:12.4g} "
          f"{r['tokens_per_s'] * 24 / 1e9:8.2f} {100 * r['bandwidth_fraction']:7.1f}% {x}")


def run(args) -> dict:
    """Time every masker at every size; print the table as it goes; return the report."""
    import torch
    config = MaskingConfig(**BERT)
    seq_len, batches = _shapes(args)
    budget = (1 << 30) if args.device == "cpu" else (8 << 30)
    copy_gbps = copy_bandwidth(args.device, (256 << 20) if args.device == "cpu" else (1 << 30))
    maskers, skipped = build(config, args.device)
    if args.only:
        maskers = [m for m in maskers if m.name in args.only]
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    print(f"device {args.device} ({_device_name(args.device)}), torch threads "
          f"{torch.get_num_threads()}, copy bandwidth {copy_gbps:.1f} GB/s (read + write)")
    print(f"{'masker':18s} {'mode':9s} {'shape':14s} {'tokens/s':>12s} {'GB/s':>8s} "
          f"{'of copy':>8s} {'vs labml':>8s}")
    repeats = args.repeats or (5 if args.quick else 51 if args.device == "cpu" else 30)
    load_before = _load_average()
    results = []
    for batch in batches:
        xs = rotation(seq_len, batch, args.device, budget)
        timings = time_maskers(maskers, xs, warmup=2, repeats=repeats, budget_s=4.0)
        rows = [_row(m, seq_len, batch, t, copy_gbps) for m, t in zip(maskers, timings)]
        labml = next((r["tokens_per_s"] for r in rows if r["masker"] == "labml"), None)
        for r in rows:
            _print_row(r, labml)
        results += rows
    return {"device": args.device, "device_name": _device_name(args.device),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m verify.bench " + " ".join(args.argv),
            "torch_threads": torch.get_num_threads(), "copy_bandwidth_GBps": copy_gbps,
            "torch_cpu_pass": _torch_cpu_pass(args.device),
            "versions": versions(), "skipped": [{"masker": n, "reason": w} for n, w in skipped],
            "results": results, "ratios": _ratios(results, args.device),
            "targets": _targets(results, args.device),
            "load_average": {"before": load_before, "after": _load_average(),
                             "cores": os.cpu_count()}}


def _torch_cpu_pass(device: str) -> str | None:
    """Which formulation torch's CPU paths ran (native, exact, collator): the compiled passes
    (and their compiler) or NumPy's (why); None on a GPU."""
    if device != "cpu":
        return None
    from mlm_torch import compiled
    return compiled.status().split(" into ")[0]          # not the cache folder's path


def _load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the OS does not say."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _memory(args) -> dict:
    """The memory section: peak extra bytes of one call per backend, mode and dtype (CPU)."""
    from . import memory
    backends = [b for b in ("numpy", "torch", "jax") if not args.only or b in args.only]
    rows = memory.measure_isolated(args.memory_n, MEMORY_DTYPES, backends)
    for r in rows:
        print(f"memory {r['backend']:6s} {r['mode']:7s} {r['dtype']:6s} n {r['n']}: "
              f"{r['multiple']:.2f}x the input ({r['method']})")
    return {"n": args.memory_n, "goal_multiple": MEMORY_GOAL, "rows": rows,
            "command": f"python -m verify.bench.memory --n {args.memory_n} "
                       f"--dtypes {','.join(MEMORY_DTYPES)}"}


def _gate(device: str) -> dict:
    """The token gate's own speed (`verify.bench.gate`), printed as it is measured."""
    from .gate import short, time_gate
    g = time_gate(device)
    print(f"token gate ({g['command']}, counting: {g['counting']}): "
          f"{g['tokens_per_s'] / 1e6:.1f} M tokens/s end to end, "
          f"{g['marginal_tokens_per_s'] / 1e6:.1f} M tokens/s past the fixed costs "
          f"({min(g['fixed_seconds']):.1f} s at {short(g['fixed_tokens'])} tokens)")
    return g


def _usage_error(args) -> str | None:
    """What is wrong with the arguments, in a sentence; None when nothing is."""
    if any(v is not None and v < 1 for v in [args.seq_len, args.repeats, *(args.batches or []),
                                             *(args.collator_batches or []), args.memory_n]):
        return "--seq-len, --batches, --collator-batches, --repeats and --memory-n must be >= 1"
    if args.collators_only and not args.collators:
        return "--collators-only and --no-collators contradict each other"
    if args.json and cli.file_problem(args.json):
        return f"--json: {cli.file_problem(args.json)}"
    unknown = [n for n in args.only if n not in registry.REGISTRY]
    if unknown:
        return f"--only: unknown masker(s) {' '.join(unknown)}; choose from " \
               f"{' '.join(registry.REGISTRY)}"
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)   # for the reports' "command"
    problem = cuda_problem(args.device) or _usage_error(args)
    if problem:
        return usage_error("verify.bench", problem)
    try:
        return _main(args)
    except KeyboardInterrupt:
        return cli.interrupted("verify.bench")


def _collators(args) -> dict:
    """The collator section of the report, with its own date and command."""
    section = collate.run(args.device, batches=args.collator_batches, quick=args.quick,
                          repeats=args.repeats or (5 if args.quick else 31))
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m verify.bench " + " ".join(args.argv), **section}


def _merged(path: str | None, device: str, section: dict) -> dict:
    """The results file at `path` (if it is one for `device`) with its collators replaced."""
    report = {}
    if path and os.path.exists(path):
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            report = {}
        if not isinstance(report, dict) or report.get("device") != device:
            report = {}
    base = {"device": device, "device_name": _device_name(device), "date": section["date"],
            "command": section["command"], "versions": versions()}
    return {**base, **report, "collators": section}


def _main(args) -> int:
    if args.collators_only:
        report = _merged(args.json, args.device, _collators(args))
    else:
        report = run(args)
        if args.memory and args.device == "cpu" and not args.quick:
            report["memory"] = _memory(args)
        if args.collators:
            report["collators"] = _collators(args)
        if args.gate if args.gate is not None else not (args.quick or args.only):
            report["gate"] = _gate(args.device)
    for r in report.get("collators", {}).get("ratios", []):
        verdict = "" if r["goal"] is None else ("  goal >= %gx %s" % (
            r["goal"], "held" if r["held"] else "NOT held"))
        print(f"collators, batch {r['batch']}: {r['ours']} / {r['theirs']}: "
              f"{r['speedup']:.2f}x{verdict}")
    for r in report.get("ratios", []) if not args.collators_only else []:
        verdict = "" if r["goal"] is None else ("  goal >= %gx %s" % (
            r["goal"], "held" if r["held"] else "NOT held"))
        print(f"{str(r['shape']):14s} {r['ours']} / {r['theirs']}: {r['speedup']:.2f}x{verdict}")
    for t in report.get("targets", []) if not args.collators_only else []:
        print(f"target {t['masker']} {t['mode']}: {100 * t['bandwidth_fraction']:.0f}% of copy "
              f"(goal {100 * t['target']:.0f}%){'' if t['met'] else ' MISSED'}; "
              f"{t['bytes_per_token']} B and ~{t['ops_per_token']} int ops per token")
    if args.json:
        cli.write_atomically(args.json, json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


