"""`python -m verify.bench.gpu_check` (`make gpu-check`): everything a GPU can tell us, in one go.

On a machine with a CUDA device it runs, in this order, each as a subprocess with its own time
budget (the whole well under nine minutes on one H100, downloading nothing):

1. the CUDA-marked tests (`pytest -m cuda`);
2. `verify.exact --device cuda`: torch and JAX on the GPU against the NumPy reference;
3. `verify.stats --device cuda --tokens 1e9` on our three backends, with its wall time
   (`results/stats-cuda.txt` and `.json`);
4. `verify.bench --device cuda` (`results/bench-cuda.json`), then `verify.bench.report`
   (docs/benchmarks.md) from every results file.

Then it reads the figures a reviewer wants first out of the bench results: native and exact
tokens/s at `[512, 65536]` int64 as a fraction of the device-to-device copy measured in the
same run, with labml's `MLM` beside them. It writes `results/gpu-check-<gpu>.txt` (the summary,
then every step's output) and `results/gpu-check-<gpu>.json`, and prints a summary of at most
30 lines.

Without a CUDA device it says so and exits 0 having run nothing. Exit status otherwise: 0 when
every step passed, 1 when one failed or overran its budget, 130 when interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

from .. import cli

__all__ = ["Step", "STEPS", "FIGURE_SHAPE", "summary", "figures", "slug", "main"]

FIGURE_SHAPE = [512, 65536]
MAX_LINES = 30
TOTAL_BUDGET_S = 520  # under the nine minutes promised, with room to start and write
RESULTS = "results"


@dataclasses.dataclass
class Step:
    """One step: its command and budget; after running, its outcome.

    Attributes:
        name: a short name for the summary.
        argv: the command, `python` standing for the interpreter running this module.
        budget_s: seconds it may take before it is stopped and counted as failed.
        status: `pass`, `FAIL`, `TIMEOUT` or `not run`.
        rc: its exit status (None when stopped or not run).
        wall_s: seconds it took.
        output: its stdout and stderr together.
    """

    name: str
    argv: list[str]
    budget_s: float
    status: str = "not run"
    rc: int | None = None
    wall_s: float = 0.0
    output: str = ""


STEPS = [
    Step("cuda tests", ["python", "-m", "pytest", "-q", "-m", "cuda", "-p",
                        "no:cacheprovider"], 90),
    Step("exact on cuda", ["python", "-m", "verify.exact", "--device", "cuda"], 60),
    Step("stats 1e9 tokens", ["python", "-m", "verify.stats", "--device", "cuda", "--tokens",
                              "1e9", "--no-progress", "--json",
                              f"{RESULTS}/stats-cuda.json"], 200),
    Step("bench", ["python", "-m", "verify.bench", "--device", "cuda", "--no-gate", "--json",
                   f"{RESULTS}/bench-cuda.json"], 150),    # the gate: the step above
    Step("bench report", ["python", "-m", "verify.bench.report",
                          f"{RESULTS}/bench-cpu.json", f"{RESULTS}/bench-cuda.json"], 20),
]


def slug(name: str) -> str:
    """`NVIDIA H100 80GB HBM3` -> `nvidia-h100-80gb-hbm3`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def run_step(step: Step, python: str, budget_s: float) -> Step:
    """Run `step` with at most `budget_s` seconds; fill in its outcome and return it."""
    argv = [python if a == "python" else a for a in step.argv]
    env = dict(os.environ, HYPOTHESIS_PROFILE="ci")
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=budget_s, env=env)
        step.rc, step.output = done.returncode, done.stdout + done.stderr
        step.status = "pass" if done.returncode == 0 else "FAIL"
    except subprocess.TimeoutExpired as e:
        out = [b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
               for b in (e.stdout, e.stderr)]
        step.output, step.status = "".join(out), "TIMEOUT"
    step.wall_s = time.perf_counter() - start
    return step


def figures(bench: dict, shape=FIGURE_SHAPE) -> list[dict]:
    """Our native and exact paths and labml's at `shape`: tokens/s, fraction of the copy and
    speed over labml's, from a `verify.bench` report."""
    rows = [r for r in bench.get("results", []) if r["shape"] == list(shape)]
    labml = next((r["tokens_per_s"] for r in rows if r["masker"] == "labml"), None)
    wanted = [("torch", "native"), ("torch", "exact"), ("jax", "exact"), ("labml", "published")]
    out = []
    for masker, mode in wanted:
        r = next((r for r in rows if (r["masker"], r["mode"]) == (masker, mode)), None)
        if r is not None:
            out.append({"masker": masker, "mode": mode, "tokens_per_s": r["tokens_per_s"],
                        "of_copy": r["bandwidth_fraction"],
                        "vs_labml": r["tokens_per_s"] / labml if labml else None})
    return out


def summary(gpu: str, steps: list[Step], figs: list[dict], copy_gbps: float | None,
            written: list[str]) -> list[str]:
    """The summary, at most `MAX_LINES` lines: a verdict, one line per step (with the last
    lines of a failed step's output), the figures, and the files written."""
    failed = [s for s in steps if s.status != "pass"]
    total = sum(s.wall_s for s in steps)
    verdict = "all steps passed" if not failed else \
        f"{len(failed)} of {len(steps)} steps did not pass"
    lines = [f"gpu-check on {gpu}: {verdict} ({cli.duration(total)})"]
    for s in steps:
        lines.append(f"  {s.status:8s} {s.name:18s} {s.wall_s:6.0f} s  (budget {s.budget_s:.0f} s"
                     f"{'' if s.rc in (None, 0) else f', exit {s.rc}'})")
    if figs:
        copy = f", copy {copy_gbps:.0f} GB/s" if copy_gbps else ""
        lines.append(f"at {FIGURE_SHAPE} int64{copy}:")
        for f in figs:
            vs = f"{f['vs_labml']:6.1f}x labml" if f["vs_labml"] else ""
            lines.append(f"  {f['masker']:6s} {f['mode']:9s} {f['tokens_per_s']:10.3g} tok/s "
                         f"{100 * f['of_copy']:5.1f}% of copy  {vs}".rstrip())
    tails = []
    for s in failed:  # what went wrong, as far as the room left allows
        tail = [t for t in s.output.strip().splitlines() if t.strip()][-3:]
        tails += [f"{s.name} ({s.status}):"] + [f"  {t[:96]}" for t in tail]
    room = MAX_LINES - len(lines) - (1 if written else 0)
    lines += tails[:max(room, 0)]
    if written:
        lines.append("wrote " + ", ".join(written))
    return lines[:MAX_LINES]


def _gpu_name() -> str | None:
    """The first CUDA device's name, or None when there is none (or no PyTorch)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def run_all(gpu: str, python: str = sys.executable, steps=None) -> int:
    """Run every step under one overall budget, write the results files, print the summary."""
    steps = [dataclasses.replace(s) for s in (steps or STEPS)]
    os.makedirs(RESULTS, exist_ok=True)
    deadline = time.perf_counter() + TOTAL_BUDGET_S
    for s in steps:
        left = deadline - time.perf_counter()
        if left < 5:
            s.status = "TIMEOUT"  # no time left for it: counted, not silently dropped
            continue
        run_step(s, python, min(s.budget_s, left))
        if s.name.startswith("stats"):
            cli.write_atomically(f"{RESULTS}/stats-cuda.txt", s.output)
    bench = _read_json(f"{RESULTS}/bench-cuda.json") if any(
        s.name == "bench" and s.status == "pass" for s in steps) else {}
    figs = figures(bench)
    base = f"{RESULTS}/gpu-check-{slug(gpu)}"
    written = [f"{base}.txt", f"{base}.json", f"{RESULTS}/stats-cuda.txt"] + \
        ([f"{RESULTS}/bench-cuda.json", "docs/benchmarks.md"] if bench else [])
    lines = summary(gpu, steps, figs, bench.get("copy_bandwidth_GBps"), written)
    logs = [f"\n===== {s.name}: {s.status}, {s.wall_s:.0f} s: "
            f"{' '.join(s.argv)}\n{s.output}" for s in steps]
    cli.write_atomically(f"{base}.txt", "\n".join(lines) + "\n" + "".join(logs))
    cli.write_atomically(f"{base}.json", json.dumps({
        "gpu": gpu, "versions": cli.versions(), "figure_shape": FIGURE_SHAPE,
        "copy_bandwidth_GBps": bench.get("copy_bandwidth_GBps"), "figures": figs,
        "steps": [{"name": s.name, "command": " ".join(s.argv), "status": s.status,
                   "rc": s.rc, "wall_s": s.wall_s, "budget_s": s.budget_s} for s in steps]},
        indent=1))
    print("\n".join(lines))
    return 0 if all(s.status == "pass" for s in steps) else 1


def main(argv=None) -> int:
    import argparse
    argparse.ArgumentParser(prog="python -m verify.bench.gpu_check",
                            description=__doc__.split("\n\n")[0]).parse_args(argv)
    gpu = _gpu_name()
    if gpu is None:
        print("gpu-check: no CUDA device here (PyTorch sees none, or is not installed); "
              "nothing was run.")
        return 0
    try:
        return run_all(gpu)
    except KeyboardInterrupt:
        return cli.interrupted("gpu-check")


if __name__ == "__main__":
    sys.exit(main())
