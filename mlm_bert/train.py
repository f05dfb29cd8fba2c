"""`python -m mlm_bert.train --preset smoke|cpu|gpu`: train, evaluate, write the results.

The run directory (default `out/bert-<preset>`) receives `tokenizer.json`, `checkpoint.pt`,
`metrics.jsonl`, `curves.png`, `predictions.txt` (held-out examples in the fixed format) and
`summary.json` (the final held-out metrics beside the unigram baseline on the same masks), which
`python -m mlm_bert.report` turns into docs/bert.md. `--resume` continues an interrupted run
with the same batches and masks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import torch

from .evaluate import format_predictions, topk, unigram_log_probs, unigram_perplexity
from .items import MASKINGS
from .plot import plot_curves
from .presets import PRESETS, build_model, get_preset, prepare
from .trainer import BertTrainer, read_metrics

__all__ = ["run", "main"]


def run(preset_name: str, *, out_dir=None, seed: int = 0, masking: str = "wwm",
        steps: int | None = None, device: str = "auto", resume: bool = False,
        progress: bool = True, n_examples: int = 4, threads: int | None = None) -> dict:
    """Train one preset and write its results; returns the summary.

    `threads` (default: the preset's, else torch's) sets torch's intra-op threads."""
    preset = get_preset(preset_name)
    if threads or preset.threads:
        torch.set_num_threads(threads or preset.threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out = pathlib.Path(out_dir or f"out/bert-{preset.name}")
    train_config = preset.train
    if steps is not None:
        train_config = dataclasses.replace(
            train_config, steps=steps, warmup=min(train_config.warmup, steps),
            eval_every=min(train_config.eval_every, steps),
            checkpoint_every=min(train_config.checkpoint_every, steps))
    started = time.perf_counter()
    prep = prepare(preset.corpus, preset.vocab_size, preset.batch_size, out, seed=seed,
                   masking=masking)
    torch.manual_seed(seed)
    model = build_model(preset.size, prep.tokenizer.get_vocab_size(), dropout=preset.dropout)
    meta = {"preset": preset.name, "seed": seed, "masking": masking, "size": preset.size,
            "batch_size": preset.batch_size, "corpus": preset.corpus}
    trainer = BertTrainer(model, prep.train, train_config, out, eval_data=prep.held_out,
                          device=device, progress=progress, meta=meta)
    final = trainer.train(resume=resume)
    if final is None:                        # resumed a finished run: evaluate once more
        final = trainer.run_eval(full=True)
    unigram = unigram_perplexity(unigram_log_probs(prep.train_docs,
                                                   prep.tokenizer.get_vocab_size()),
                                 prep.held_out)
    records = read_metrics(trainer.metrics_path)
    plot_curves(records, out / "curves.png",
                title=f"{preset.name} preset, masking {masking}, seed {seed}")
    (out / "predictions.txt").write_text(_examples(model, prep, n_examples, device) + "\n",
                                         encoding="utf-8")
    train_records = [r for r in records if r["kind"] == "train"]
    summary = {**meta, "steps": trainer.step, "device": device,
               "parameters": sum(p.numel() for p in model.parameters()),
               "vocab_size": prep.tokenizer.get_vocab_size(),
               "held_out": final, "unigram_perplexity": unigram,
               "train_tokens_per_s": (sum(r["tokens_per_s"] for r in train_records) /
                                      max(1, len(train_records))),
               "wall_s": time.perf_counter() - started}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _examples(model, prep, n: int, device) -> str:
    """The first `n` held-out items with their evaluation masks, predicted top-3."""
    batch = prep.held_out.batch(0, 0)
    original = torch.from_numpy(prep.held_out.items(0)["input_ids"][:n])
    model = model.to(device)
    ids, probs = topk(model, batch["input_ids"][:n].to(device),
                      batch["token_type_ids"][:n].to(device),
                      batch["attention_mask"][:n].to(device))
    blocks = [format_predictions(prep.tokenizer, batch["input_ids"][r], ids[r].cpu(),
                                 probs[r].cpu(), original_ids=original[r],
                                 predict_at=(batch["labels"][r] != -100).tolist())
              for r in range(min(n, len(original)))]
    return "\n\n".join(blocks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlm_bert.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    parser.add_argument("--out", help="run directory (default out/bert-<preset>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masking", choices=MASKINGS, default="wwm",
                        help="wwm: whole words (default); ours: piece by piece; labml: labml-nn's 81/9/10")
    parser.add_argument("--steps", type=int, help="override the preset's step count")
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: the preset's, else torch's)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--resume", action="store_true", help="continue from checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be positive")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be positive")
    try:
        summary = run(args.preset, out_dir=args.out, seed=args.seed, masking=args.masking,
                      steps=args.steps, device=args.device, resume=args.resume,
                      progress=not args.no_progress, threads=args.threads)
    except (ValueError, ModuleNotFoundError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    h = summary["held_out"]
    print(f"held-out perplexity {h['perplexity']:.2f} (unigram baseline "
          f"{summary['unigram_perplexity']:.2f}), MLM accuracy {h['mlm_acc']:.3f}, "
          f"NSP accuracy {h['nsp_acc']:.3f}; results in {args.out or f'out/bert-{args.preset}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
