"""`python -m mlm_bert.experiment --seeds 3`: labml's masking against ours, in real training.

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
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import sys

from .train import run

__all__ = ["compare", "main"]

METRICS = ("perplexity", "mlm_acc", "nsp_acc")
# piece-level masking both ways: the contract's 80/10/10 (ours) against labml's 81/9/10, so
# that the only difference between the two runs of a seed is the category split
MASKINGS = ("ours", "labml")


def compare(results: dict[str, list[dict]]) -> dict:
    """Mean, sd per masking and the paired comparison (labml - ours) per metric.

    Args:
        results: masking -> the held-out metrics of each seed, seeds in the same order.
    """
    from scipy import stats
    out = {}
    for metric in METRICS:
        row = {}
        for masking, runs in results.items():
            values = [r[metric] for r in runs]
            row[masking] = {"values": values, "mean": statistics.fmean(values),
                            "sd": statistics.stdev(values) if len(values) > 1 else None}
        diffs = [a[metric] - b[metric] for a, b in zip(results["labml"], results["ours"])]
        paired = {"mean_diff": statistics.fmean(diffs),
                  "sd_diff": statistics.stdev(diffs) if len(diffs) > 1 else None}
        if len(diffs) > 1 and paired["sd_diff"]:
            test = stats.ttest_rel([r[metric] for r in results["labml"]],
                                   [r[metric] for r in results["ours"]])
            paired["t"], paired["p"] = float(test.statistic), float(test.pvalue)
        paired["exceeds_noise"] = bool(paired.get("p") is not None and paired["p"] < 0.05)
        row["labml_minus_ours"] = paired
        out[metric] = row
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlm_bert.experiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 per masking")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, help="override the preset's step count")
    parser.add_argument("--out", default="out/bert-experiment")
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: the preset's, else torch's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be positive")
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (the noise is the spread over seeds)")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be positive")
    out = pathlib.Path(args.out)
    results: dict[str, list[dict]] = {m: [] for m in MASKINGS}
    runs = []
    try:
        for seed in range(args.seeds):
            for masking in MASKINGS:
                run_dir = out / f"{masking}-seed{seed}"
                first = out / f"{MASKINGS[0]}-seed0" / "tokenizer.json"
                if run_dir != first.parent and first.exists():   # one vocabulary for all runs
                    run_dir.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(first, run_dir / "tokenizer.json")
                summary = run(args.preset, out_dir=run_dir, seed=seed,
                              masking=masking, steps=args.steps, device=args.device,
                              progress=False, threads=args.threads)
                results[masking].append(summary["held_out"])
                runs.append({"seed": seed, "masking": masking, **summary["held_out"],
                             "unigram_perplexity": summary["unigram_perplexity"],
                             "steps": summary["steps"], "wall_s": summary["wall_s"]})
                print(f"seed {seed} {masking:5s}: perplexity "
                      f"{summary['held_out']['perplexity']:.2f}, MLM accuracy "
                      f"{summary['held_out']['mlm_acc']:.4f}", flush=True)
    except (ValueError, ModuleNotFoundError, ImportError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    report = {"preset": args.preset, "seeds": args.seeds, "steps": runs[0]["steps"],
              "runs": runs, "comparison": compare(results)}
    (out / "experiment.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for metric, row in report["comparison"].items():
        d = row["labml_minus_ours"]
        print(f"{metric}: ours {row['ours']['mean']:.4f} ± {row['ours']['sd']:.4f}, labml "
              f"{row['labml']['mean']:.4f} ± {row['labml']['sd']:.4f}; labml - ours "
              f"{d['mean_diff']:+.4f} (paired p = {d.get('p', float('nan')):.3f}), "
              f"{'exceeds' if d['exceeds_noise'] else 'within'} run-to-run noise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
