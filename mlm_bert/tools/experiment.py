"""`python -m mlm_bert.experiment --n-seeds 3`: labml's masking and a broken one against ours.

labml-nn's widely copied `MLM` draws its "random" and "unchanged" decisions independently and
lets "random" win where both fire, so a selected piece becomes `[MASK]` with probability
0.9 * 0.9 = 0.81, a random piece with 0.10 and stays unchanged with 0.09 -- not BERT's
0.8/0.1/0.1, which our masker (the contract) draws exactly. Does that matter for what a model
learns? Here the same run (preset, seed, data, steps, initialisation, pair order) is trained
once per masking and per seed; only the masks differ (labml's is reached through
`verify.registry`'s `labml` entry and seeded per batch). Both are scored on the *same*
held-out positions (the `"eval"` stream), and the difference is set beside the run-to-run
noise: the spread over seeds within a masking, and a paired t-test over seeds (the pairs
share everything but the masker; all runs share the first run's vocabulary). With few seeds the test detects only differences several
times the seed-to-seed spread; "not significant" is then a statement about this budget, not a
proof of equality.

Each run has its own directory, `OUT/<masking>-seed<seed>`; an interrupted experiment continues
with `--resume` (finished runs are read back, not retrained), and `--overwrite` starts it again.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

from verify import cli

from mlm_bert.presets import PRESETS
from mlm_bert.runs import RunError, clear_run, write_atomically, write_text
from mlm_bert.train import positive_int, run

__all__ = ["build_parser", "compare", "main"]

METRICS = ("perplexity", "mlm_acc", "mask_acc", "unchanged_acc", "nsp_acc")
# piece-level masking every way: the contract's 80/10/10 (ours) against labml's 81/9/10, so
# that the only difference between the two runs of a seed is the category split, and against
# a clearly broken masking (every selected piece [MASK], no random or unchanged categories),
# which shows the size of an effect the experiment can see
MASKINGS = ("ours", "labml", "mask-only")
REFERENCE = "ours"


def paired_difference(a: list[float], b: list[float], *, level: float = 0.95) -> dict:
    """The mean of the paired differences `a - b` over seeds, with its confidence interval.

    Args:
        a, b: one value per seed, the seeds in the same order.
        level: the confidence level of the interval (Student's t over the seeds).

    Returns:
        `mean_diff`, `sd_diff`, `ci_low`, `ci_high` (None with fewer than 2 seeds or no
        spread), `t` and `p` (the paired t-test) when defined, and `exceeds_noise`
        (the interval excludes 0).
    """
    from scipy import stats
    diffs = [x - y for x, y in zip(a, b)]
    out = {"mean_diff": statistics.fmean(diffs),
           "sd_diff": statistics.stdev(diffs) if len(diffs) > 1 else None,
           "ci_level": level, "ci_low": None, "ci_high": None}
    if out["sd_diff"]:
        half = (stats.t.ppf(0.5 + level / 2, len(diffs) - 1) * out["sd_diff"] /
                len(diffs) ** 0.5)
        out["ci_low"], out["ci_high"] = out["mean_diff"] - half, out["mean_diff"] + half
        test = stats.ttest_rel(a, b)
        out["t"], out["p"] = float(test.statistic), float(test.pvalue)
    out["exceeds_noise"] = bool(out["ci_low"] is not None and
                                (out["ci_low"] > 0 or out["ci_high"] < 0))
    return out


def compare(results: dict[str, list[dict]]) -> dict:
    """Mean, sd per masking and the paired comparison (masking - ours) per metric.

    Args:
        results: masking -> the held-out metrics of each seed, seeds in the same order.

    Returns:
        metric -> {masking: {values, mean, sd}, "<masking>_minus_ours": paired difference}.
    """
    out = {}
    for metric in METRICS:
        row = {}
        for masking, runs in results.items():
            values = [r[metric] for r in runs]
            row[masking] = {"values": values, "mean": statistics.fmean(values),
                            "sd": statistics.stdev(values) if len(values) > 1 else None}
        reference = [r[metric] for r in results[REFERENCE]]
        for masking, runs in results.items():
            if masking != REFERENCE:
                row[f"{masking}_minus_{REFERENCE}"] = paired_difference(
                    [r[metric] for r in runs], reference)
        out[metric] = row
    return out


EXIT_CODES = """exit status: 0 done; 1 a run failed (a missing package, an error while training);
2 usage error (a bad argument, or a run directory that cannot be used: the line says which and
what to do); 130 interrupted (Ctrl-C: --resume continues)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlm_bert.experiment", description=__doc__,
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-seeds", "--seeds", dest="n_seeds", type=int, default=3,
                        metavar="N", help="seeds per masking, --seed .. --seed+N-1, at least 2 "
                                          "(default 3; --seeds is the old spelling)")
    parser.add_argument("--seed", type=cli.seed, default=0,
                        help="the first seed, in [0, 2**63) (default 0)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="the training run compared (default cpu)")
    parser.add_argument("--steps", type=positive_int, help="override the preset's step count")
    parser.add_argument("--out", default="out/bert-experiment", metavar="DIR",
                        help="folder of the runs and experiment.json (default "
                             "out/bert-experiment)")
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads (default: the preset's, else torch's)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (auto: CUDA when present)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted experiment (finished runs are kept)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the runs already in --out")
    parser.add_argument("--json", metavar="PATH",
                        help="also write experiment.json's content to PATH")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv=None) -> int:
    prog = "python -m mlm_bert.experiment"
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_seeds < 2:
        parser.error("--n-seeds must be at least 2 (the noise is the spread over seeds)")
    if args.seed + args.n_seeds - 1 > cli.MAX_SEED:
        parser.error("--seed + --n-seeds - 1 must stay below 2**63")
    if args.resume and args.overwrite:
        return cli.usage_error(prog, "--resume and --overwrite exclude each other")
    out = pathlib.Path(args.out)
    problem = (cli.cuda_problem(args.device) or cli.dir_problem(str(out)) or
               (args.json and cli.file_problem(args.json)))
    if problem:
        return cli.usage_error(prog, problem)
    where = None
    try:
        results, runs = {m: [] for m in MASKINGS}, []
        for seed in range(args.seed, args.seed + args.n_seeds):
            for masking in MASKINGS:
                where = out / f"{masking}-seed{seed}"
                summary = _one_run(args, out, seed, masking)
                results[masking].append(summary["held_out"])
                runs.append({"seed": seed, "masking": masking, **summary["held_out"],
                             "unigram_perplexity": summary["unigram_perplexity"],
                             "steps": summary["steps"], "wall_s": summary["wall_s"]})
                print(f"seed {seed} {masking:5s}: perplexity "
                      f"{summary['held_out']['perplexity']:.2f}, MLM accuracy "
                      f"{summary['held_out']['mlm_acc']:.4f}", flush=True)
        report = {"preset": args.preset, "seeds": args.n_seeds, "first_seed": args.seed,
                  "steps": runs[0]["steps"], "runs": runs, "comparison": compare(results)}
        text = json.dumps(report, indent=2) + "\n"
        write_text(out / "experiment.json", text)
        if args.json:
            write_text(args.json, text)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted in {where}: --resume continues", file=sys.stderr)
        return cli.INTERRUPTED
    except RunError as e:
        return cli.usage_error(prog, str(e))
    except (ValueError, ModuleNotFoundError, ImportError, RuntimeError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    _print_comparison(report)
    return 0


def _one_run(args, out: pathlib.Path, seed: int, masking: str) -> dict:
    """Train (or, with --resume, finish or read back) one run of the experiment."""
    run_dir = out / f"{masking}-seed{seed}"
    first = out / f"{MASKINGS[0]}-seed{args.seed}"
    if args.overwrite:
        clear_run(run_dir)
    shared = first / "tokenizer.json"          # one vocabulary for all runs
    if run_dir != first and shared.exists() and not (run_dir / "tokenizer.json").exists():
        data = shared.read_bytes()
        write_atomically(run_dir / "tokenizer.json", lambda f: f.write(data))
    return run(args.preset, out_dir=run_dir, seed=seed, masking=masking, steps=args.steps,
               device=args.device, resume=args.resume, progress=not args.no_progress,
               threads=args.threads)


def _print_comparison(report: dict) -> None:
    for metric, row in report["comparison"].items():
        for key, d in row.items():
            if not key.endswith(f"_minus_{REFERENCE}"):
                continue
            masking = key[:-len(f"_minus_{REFERENCE}")]
            ci = ("" if d["ci_low"] is None else
                  f", {d['ci_level']:.0%} CI [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]")
            print(f"{metric}: {masking} - ours {d['mean_diff']:+.4f}{ci} "
                  f"(ours {row[REFERENCE]['mean']:.4f}, {masking} {row[masking]['mean']:.4f}): "
                  f"{'exceeds' if d['exceeds_noise'] else 'within'} run-to-run noise")


if __name__ == "__main__":
    sys.exit(main())
