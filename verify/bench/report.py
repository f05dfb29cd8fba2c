"""`python -m verify.bench.report [JSON ...]`: docs/benchmarks.md and its plots from bench JSON.

Nothing here is typed in by hand: every number in the page comes from a results file written by
`python -m verify.bench --json`. A device with no results file gets rows marked "not measured".
"""

from __future__ import annotations

import argparse
import json
import os

__all__ = ["render", "plot"]

DEFAULT_INPUTS = ["results/bench-cpu.json", "results/bench-cuda.json"]
MASKERS_GPU = [("torch", "native"), ("torch", "exact"), ("torch", "native-eager"),
               ("torch", "exact-eager"), ("jax", "exact"), ("labml", "published")]

METHOD = """\
## How it is measured

`python -m verify.bench` times every masker in one process, on int64 batches `[seq_len, batch]`
shaped like BERT's (`[CLS]` text `[SEP]`, then padding over about a quarter of the positions).

- **Timed:** one call, with its result ready (`torch.cuda` events after a synchronisation on a
  GPU; `block_until_ready` for JAX). The figure is the median over the calls.
- **Steady state, turn by turn:** the maskers take turns, four calls each per round, so a slow
  phase of a shared machine falls on all of them alike; the first call of each turn is not
  counted. It runs in the wake of the masker before it, and on a CPU that wake is large and
  uneven: at `[512, 8]` on a 2-core machine, a call right after the torch exact path (a
  couple of milliseconds of small int32 ops that evict the caches) took several times as long
  as in steady state, for ours and for labml's alike, and the second call was still slower
  than the later ones (by about a fifth for ours, under a tenth for labml's). Counting first
  calls would make a masker's figure depend on which maskers share the run. Masking right
  after unrelated heavy work (a training step) costs more than the figures here, for every
  masker.
- **Not timed:** the first two calls (compilation, jit tracing, allocator warm-up); building the
  inputs; and, for the maskers that write into their input (labml's `MLM`, Hugging Face's
  `torch_mask_tokens`/`numpy_mask_tokens`), the clone each call gets, made just before it.
- **Rotation:** successive calls see different batches, enough of them to fill twice the last
  level cache where memory allows, so a small batch is not served from cache.
- **Floor:** 24 bytes per token (read `x`, write `x_masked` and `y`). *of copy* is the floor
  traffic per second over the bandwidth of a device-to-device copy (read + write) measured in the
  same run.
- **Ours** run with `check_ids=False` (the published maskers do not check ids either; the check
  reads one value back from a GPU). The JAX row calls the jit-compiled core with pre-split keys.
  On a CPU, torch native is `mlm_torch/cpu.py`, whose docstring says what bounds it: one
  random byte per position and a word per candidate (SplitMix64 from two generator draws),
  one compiled pass over the positions where a C compiler was found (the line *torch's CPU
  passes* below says whether), else ~40 NumPy calls that decide a small batch.
- **Hugging Face** gets its `special_tokens_mask` precomputed (as a tokenizer called with
  `return_special_tokens_mask=True` hands it over), which spares it the eligibility pass that
  our maskers do inside the timed call, and runs on `[batch, seq]` copies made in set-up.

### Memory and load

- **Memory:** on a CPU the run also measures the peak extra memory of one call of every path
  (NumPy native and exact, torch native and exact, JAX exact; uint8 and int64 ids), each in a
  fresh process (`verify.bench.memory`): NumPy's allocations with `tracemalloc`, torch's and
  JAX's as the peak resident set (`VmHWM`), on inputs made a tensor and a JAX array before
  the call (JAX's conversion of NumPy ids copies them: the data pipeline's cost, not the
  masker's). The multiple is that peak over the input's bytes; the call's two outputs alone
  make 2x. JSON: the key `memory` holds `n`, `goal_multiple`,
  `command` and `rows` (per backend, mode and dtype: `input_bytes`, `peak_extra_bytes`,
  `multiple`, `method`).
- **torch on a CPU:** `torch_cpu_pass` says which formulation of the same streams ran, for
  native and exact mode and the collator: the compiled passes (`mlm_torch.compiled`, built
  with the machine's C compiler) or, where none was found or the build failed, NumPy's, and
  why.
- **The token gate's own speed:** `gate` times `python -m verify.stats --masker torch` end to
  end in fresh processes (`verify.bench.gate`): at 1e8 tokens, the size the goal is stated at, and at
  1e6, where the fixed costs (importing torch and SciPy, the seeded-once and call-shape runs,
  the checks) are most of the run; alternated, twice each, best of each. *past the fixed
  costs* is the tokens between the two over the seconds between them: what more tokens cost,
  the gate's power per CI minute. `counting` says whether the gate counted in C or in NumPy.
- **Load:** `load_average` holds the 1-minute load average `before` and `after` the timing and
  the machine's `cores`. With more runnable processes than cores, every figure is lower and
  noisier, and the paths that run on torch's intra-op thread pool (whose barrier waits for a
  descheduled thread), the copy that sets *of copy* included, lose most: there the ratios of
  maskers timed side by side are what a run measures, and *of copy* overstates ours.

### Collators

The collator tables time the whole step a `DataLoader` worker runs, from a list of tokenized
examples to a masked batch (`verify.bench.collate`): padding to 128, the attention mask, the
masking and the labels, in examples/s.

- **Examples:** BERT-like lists of ids (`[CLS]` text `[SEP]`, vocabulary 30522), lengths
  uniform in [64, 128] from a fixed seed with the first of each batch at 128, each a dict with
  `input_ids` (a list of ints) and `index`; every collator gets the same lists.
- **Ours:** `mlm_torch.collate.MLMCollator` (exact mode: each example masked by its stateless
  key) and `mlm_jax.collate.collate` (which pays a per-call dispatch into JAX); on a GPU also
  `torch-device`, padded on the host and masked on the device.
- **Theirs:** `transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15,
  pad_to_multiple_of=128)`: `hf` on the same examples (it derives the special-tokens mask from
  the ids, one Python call per example), `hf-stm` with each example's `special_tokens_mask`
  given, as a tokenizer called with `return_special_tokens_mask=True` provides it.
- **Timing:** as for the maskers (turns, bursts, a rotation of 8 distinct batches, the median),
  with torch on one thread, as in a `DataLoader` worker.
- **JSON:** the key `collators` holds `date`, `command`, `seq_len`, `lengths`, `vocab`,
  `masking_prob`, `torch_threads`, `skipped`, `results` (per collator and batch size:
  `collator`, `call`, `batch`, `seq_len`, `examples_per_s`, `median_s`, `repeats`, `note`) and
  `ratios` (per batch size: `ours`, `theirs`, `speedup`, `goal`, `held`; the goal, ours at
  least 3x Hugging Face's, is stated on a CPU only).
"""


def _load(paths: list[str]) -> list[dict]:
    reports = []
    for path in paths:
        if os.path.exists(path):
            with open(path) as f:
                reports.append(json.load(f) | {"_path": path})
    return reports


def _table(report: dict) -> list[str]:
    labml = {tuple(r["shape"]): r["tokens_per_s"] for r in report["results"]
             if r["masker"] == "labml"}
    lines = ["| masker | mode | shape [L, B] | tokens/s | GB/s at floor | of copy | vs labml |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in report["results"]:
        ref = labml.get(tuple(r["shape"]))
        vs = f"{r['tokens_per_s'] / ref:.2f}x" if ref else "-"
        lines.append(f"| {r['masker']} | {r['mode']} | {r['shape']} | {r['tokens_per_s']:.3g} | "
                     f"{r['tokens_per_s'] * 24 / 1e9:.2f} | {100 * r['bandwidth_fraction']:.1f}% "
                     f"| {vs} |")
    return lines


def _ratios(report: dict) -> list[str]:
    lines = []
    for r in report.get("ratios", []):
        goal = "" if r["goal"] is None else \
            f" (goal >= {r['goal']:g}x: {'held' if r['held'] else '**not held**'})"
        lines.append(f"- {r['shape']}: {r['ours']} / {r['theirs']} = {r['speedup']:.2f}x{goal}")
    for t in report.get("targets", []):
        lines.append(f"- target {t['masker']} {t['mode']}: {100 * t['bandwidth_fraction']:.0f}% "
                     f"of copy, goal {100 * t['target']:.0f}%"
                     + ("" if t["met"] else f", missed by {100 * t['missed_by']:.0f} points")
                     + f"; bounds: {t['bytes_per_token']} B and ~{t['ops_per_token']} integer "
                     f"operations per token")
    return lines


def _collators(section: dict) -> list[str]:
    """The collator table and the ratios ours/theirs per batch size."""
    hf = {r["batch"]: r["examples_per_s"] for r in section["results"]
          if r["collator"] == "hf"}
    lines = [f"### Collators: examples/s, [batch, {section['seq_len']}]", "",
             f"- date: {section['date']}", f"- command: `{section['command']}`",
             f"- torch threads: {section['torch_threads']}"]
    lines += [f"- skipped {s['collator']}: {s['reason']}" for s in section.get("skipped", [])]
    lines += ["", "| collator | call | batch | examples/s | vs hf | note |",
              "|---|---|---:|---:|---:|---|"]
    for r in section["results"]:
        ref = hf.get(r["batch"])
        vs = f"{r['examples_per_s'] / ref:.2f}x" if ref else "-"
        lines.append(f"| {r['collator']} | `{r['call']}` | {r['batch']} | "
                     f"{r['examples_per_s']:.3g} | {vs} | {r['note']} |")
    lines.append("")
    for r in section.get("ratios", []):
        goal = "" if r["goal"] is None else \
            f" (goal >= {r['goal']:g}x: {'held' if r['held'] else '**not held**'})"
        lines.append(f"- batch {r['batch']}: {r['ours']} / {r['theirs']} = "
                     f"{r['speedup']:.2f}x{goal}")
    return lines + [""]


def _memory(section: dict) -> list[str]:
    """The peak-memory table: one row per backend, mode and dtype, against the goal."""
    goal = section["goal_multiple"]
    lines = ["### Peak extra memory of one call, as a multiple of the input", "",
             f"- command: `{section['command']}` ({section['n']} ids per call); the call's two "
             f"outputs alone make 2x; goal: at most {goal:g}x", "",
             "| backend | mode | dtype | input MiB | peak extra MiB | multiple | goal | method |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for r in section["rows"]:
        held = "held" if r["multiple"] <= goal else "**not held**"
        lines.append(f"| {r['backend']} | {r['mode']} | {r['dtype']} | "
                     f"{r['input_bytes'] / 2**20:.1f} | {r['peak_extra_bytes'] / 2**20:.1f} | "
                     f"{r['multiple']:.2f}x | {held} | {r['method']} |")
    return lines + [""]


def _gate(g: dict) -> list[str]:
    """The token gate's own speed, end to end and past its fixed costs."""
    from .gate import short
    runs = ", ".join(f"{t:.1f}" for t in g["seconds"])
    fixed = ", ".join(f"{t:.1f}" for t in g["fixed_seconds"])
    return ["### The token gate's own speed", "",
            f"- command: `{g['command']}` (and at {short(g['fixed_tokens'])} tokens); counting: "
            f"{g['counting']}; verdicts: {', '.join(g['verdicts'])}", "",
            "| tokens | seconds (runs) | tokens/s end to end | tokens/s past the fixed costs |",
            "|---:|---|---:|---:|",
            f"| {short(g['tokens'])} | {runs} | {g['tokens_per_s'] / 1e6:.1f} M | "
            f"{g['marginal_tokens_per_s'] / 1e6:.1f} M |",
            f"| {short(g['fixed_tokens'])} | {fixed} | | |", ""]


def _load_note(report: dict) -> list[str]:
    """The machine's load during the timing, and what it means for the figures."""
    load = report.get("load_average") or {}
    if load.get("before") is None or not load.get("cores"):
        return []
    busy = max(load["before"], load.get("after") or 0) > load["cores"]
    return [f"- load average (1 minute) on {load['cores']} cores: {load['before']} before the "
            f"timing, {load.get('after')} after"
            + ("; the machine was loaded (more runnable processes than cores), so absolute "
               "figures are low and noisy: the ratios between maskers timed side by side in "
               "the run are what it measures" if busy else "")]


def _section(report: dict, image: str) -> list[str]:
    v = ", ".join(f"{k} {val}" for k, val in report.get("versions", {}).items())
    out = [f"## {report['device'].upper()}: {report.get('device_name', '')}", "",
           f"- date: {report['date']}", f"- command: `{report['command']}`",
           f"- results: `{report['_path']}`", f"- versions: {v}"]
    if report.get("results"):
        out += [f"- torch threads: {report.get('torch_threads')}; copy bandwidth "
                f"{report['copy_bandwidth_GBps']:.1f} GB/s (read + write)", *_load_note(report)]
        if report.get("torch_cpu_pass"):
            out += [f"- torch's CPU passes: {report['torch_cpu_pass']}"]
        out += [""]
        out += [f"- skipped {s['masker']}: {s['reason']}" for s in report.get("skipped", [])]
        out += ["", *_table(report), "", *_ratios(report), "", f"![tokens/s against batch "
                f"size]({os.path.relpath(image, 'docs')})", ""]
    else:
        out += ["", "The maskers were not timed in this results file.", ""]
    if report.get("memory"):
        out += _memory(report["memory"])
    if report.get("collators"):
        out += _collators(report["collators"])
    if report.get("gate"):
        out += _gate(report["gate"])
    return out


def _not_measured() -> list[str]:
    lines = ["## CUDA: not measured", "",
             "There is no CUDA results file yet. The fused Triton kernels (`mlm_torch.fused`) "
             "are selected automatically for CUDA tensors and are checked against the reference "
             "on CPU under `TRITON_INTERPRET=1` (`tests/test_fast_paths.py`); their speed is "
             "measured by `make gpu-check PY=python3` (or `python -m verify.bench --device cuda "
             "--json results/bench-cuda.json`) on a machine with a CUDA GPU.", "",
             "| masker | mode | tokens/s | of copy |", "|---|---|---:|---:|"]
    return lines + [f"| {m} | {mode} | not measured | not measured |" for m, mode in MASKERS_GPU]


def plot(report: dict, path: str) -> None:
    """Tokens/s against batch size, one line per masker and mode, log-log."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys((r["masker"], r["mode"]) for r in report["results"]):
        rows = sorted((r["shape"][1], r["tokens_per_s"]) for r in report["results"]
                      if (r["masker"], r["mode"]) == name)
        ax.plot(*zip(*rows), marker="o", label=" ".join(name))
    seq_len = report["results"][0]["shape"][0]
    ax.set(xscale="log", yscale="log", xlabel=f"batch size (seq_len {seq_len})",
           ylabel="tokens/s", title=f"masking throughput, {report['device']}: "
           f"{report.get('device_name', '')}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(reports: list[dict]) -> str:
    """The page: method, then one section per device (or 'not measured' for CUDA)."""
    lines = ["# Benchmarks", "",
             "Generated by `python -m verify.bench.report` from the JSON that "
             "`python -m verify.bench --json` writes; do not edit by hand.", "", METHOD]
    for report in reports:
        image = f"docs/img/bench-{report['device']}.png"
        if report.get("results"):
            plot(report, image)
        lines += _section(report, image)
    if not any(r["device"] == "cuda" for r in reports):
        lines += _not_measured()
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m verify.bench.report", description=__doc__)
    p.add_argument("inputs", nargs="*", default=DEFAULT_INPUTS, help="bench JSON files")
    p.add_argument("--out", default="docs/benchmarks.md")
    args = p.parse_args(argv)
    reports = _load(args.inputs)
    if not reports:
        p.error(f"none of {args.inputs} exists; run python -m verify.bench --json first")
    with open(args.out, "w") as f:
        f.write(render(reports))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
