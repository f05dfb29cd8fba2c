"""`python -m mlm_bert.tools.ablate --steps 400 rel rotary`: recipe variants at equal steps.

Which change lets the model leave the unigram plateau? Each variant trains the `cpu` preset's
model size on the `cpu` preset's data (the same tokenizer, batches, masks and seed; only the
variant's settings differ) for the same number of *steps*, and is scored on the same first
`--eval-batches` held-out batches every quarter of the run. Steps, not seconds: on a machine
shared with other jobs the time a step takes says more about the neighbours than about the
variant, so tokens/s is reported beside the figures but compared only between runs made side
by side. A variant's learning rate decays linearly to zero at `--steps`, after a warm-up of 5%
of them.

The variants (`VARIANTS`): `base` (the former `cpu` recipe: dropout 0.1, peak lr 1e-3,
learned absolute positions), `nodrop` (dropout 0), `lr3` (dropout 0, peak lr 3e-3), `relative`
and `rotary` (as `lr3`, with the position handling of `mlm_bert.model.POSITIONS`),
`relative-lr1` (relative at 1e-3), `batch128` (as `lr3`, 128 items a batch), `fan-in` (as
`lr3`, linear weights initialised at N(0, 1/fan_in) instead of N(0, 0.02)), `rotary-fan-in`
(both), and `hf-bert` (as `lr3`, with Hugging Face's `BertForPreTraining` of the same size in
place of our model: `mlm_bert.tools.hf_reference`, the defect check). Each writes
`OUT/<variant>-<steps>/metrics.jsonl` and `result.json`; `OUT/ablation.json` gathers the
results of every finished variant in OUT, and `python -m mlm_bert.report --ablation
OUT/ablation.json` puts them into docs/bert.md.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

from verify import cli

from mlm_bert.model import SIZES, Bert, BertConfig
from mlm_bert.presets import get_preset, prepare
from mlm_bert.runs import read_metrics, write_text
from mlm_bert.train import positive_int
from mlm_bert.trainer import BertTrainer, TrainConfig

__all__ = ["VARIANTS", "run_variant", "gather", "build_parser", "main"]

VARIANTS = {
    "base": dict(dropout=0.1, lr=1e-3),
    "nodrop": dict(dropout=0.0, lr=1e-3),
    "lr3": dict(dropout=0.0, lr=3e-3),
    "relative": dict(dropout=0.0, lr=3e-3, position="relative"),
    "rotary": dict(dropout=0.0, lr=3e-3, position="rotary"),
    "relative-lr1": dict(dropout=0.0, lr=1e-3, position="relative"),
    "batch128": dict(dropout=0.0, lr=3e-3, batch=128),
    "fan-in": dict(dropout=0.0, lr=3e-3, init="fan_in"),
    "rotary-fan-in": dict(dropout=0.0, lr=3e-3, init="fan_in", position="rotary"),
    "hf-bert": dict(dropout=0.0, lr=3e-3, model="hf"),
}


def run_variant(name: str, steps: int, out, *, eval_batches: int = 10, threads: int = 1,
                seed: int = 0) -> dict:
    """Train one variant for `steps` steps in `out/<name>-<steps>`; returns its result."""
    v = {"batch": 32, "position": "learned", "init": "bert", "model": "ours", **VARIANTS[name]}
    preset = get_preset("cpu")
    torch.set_num_threads(threads)
    out = pathlib.Path(out)
    prep = prepare(preset.corpus, preset.vocab_size, v["batch"], out / "shared", seed=seed)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=prep.tokenizer.get_vocab_size(), dropout=v["dropout"],
                        position=v["position"], init=v["init"], **SIZES[preset.size])
    if v["model"] == "hf":                     # the reference implementation, same size
        from mlm_bert.tools.hf_reference import HFBert
        model = HFBert(config)
    else:
        model = Bert(config)
    config = TrainConfig(steps=steps, lr=v["lr"], warmup=max(1, steps // 20), log_every=50,
                         eval_every=max(1, steps // 4), eval_batches=eval_batches,
                         final_eval_batches=eval_batches, checkpoint_every=steps)
    run_dir = out / f"{name}-{steps}"
    trainer = BertTrainer(model, prep.train, config, run_dir, eval_data=prep.held_out,
                          progress=False)
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "eval"]
    result = {"variant": name, "settings": v, "steps": steps, "threads": threads,
              "tokens": steps * v["batch"] * 128, "wall_s": wall,
              "tokens_per_s": steps * v["batch"] * 128 / wall,
              "curve": [{k: r[k] for k in ("step", "perplexity", "mask_acc", "unchanged_acc")}
                        for r in evals],
              "final": evals[-1]}
    write_text(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def gather(out) -> dict:
    """Every finished variant's `result.json` under `out`, in `VARIANTS` order."""
    results = [json.loads(p.read_text(encoding="utf-8"))
               for p in sorted(pathlib.Path(out).glob("*/result.json"))]
    order = list(VARIANTS)
    results.sort(key=lambda r: (order.index(r["variant"]) if r["variant"] in order else 99,
                                r["steps"]))
    return {"results": results}


EXIT_CODES = """exit status: 0 done; 1 a run failed; 2 usage error (an unknown variant);
130 interrupted (Ctrl-C)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlm_bert.tools.ablate", description=__doc__,
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", metavar="VARIANT",
                        help=f"variants to train, of {', '.join(VARIANTS)} (none: only gather)")
    parser.add_argument("--steps", type=positive_int, default=400,
                        help="training steps of every variant (default 400)")
    parser.add_argument("--eval-batches", type=positive_int, default=10,
                        help="held-out batches of each evaluation (default 10)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch intra-op threads (default 1)")
    parser.add_argument("--out", default="out/bert-ablate", metavar="DIR",
                        help="where the runs and ablation.json go (default out/bert-ablate)")
    return parser


def main(argv=None) -> int:
    prog = "python -m mlm_bert.tools.ablate"
    args = build_parser().parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        return cli.usage_error(prog, f"unknown variant {unknown[0]!r}: choose from "
                                     f"{', '.join(VARIANTS)}")
    try:
        for name in args.variants:
            r = run_variant(name, args.steps, args.out, eval_batches=args.eval_batches,
                            threads=args.threads)
            f = r["final"]
            print(f"{name}: {args.steps} steps, held-out perplexity {f['perplexity']:.1f}, "
                  f"mask_acc {f['mask_acc']:.3f}, {r['tokens_per_s']:,.0f} tokens/s")
        write_text(pathlib.Path(args.out) / "ablation.json",
                   json.dumps(gather(args.out), indent=2) + "\n")
    except KeyboardInterrupt:
        return cli.interrupted(prog)
    except (ValueError, OSError, ModuleNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
