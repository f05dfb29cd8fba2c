"""`python -m mlm_bert.train --preset smoke|cpu|gpu`: train, evaluate, write the results.

The run directory (default `out/bert-<preset>`) receives `tokenizer.json`, `checkpoint.pt`,
`metrics.jsonl`, `curves.png`, `predictions.txt` (held-out examples in the fixed format) and
`summary.json` (the final held-out metrics beside the unigram baseline on the same masks), which
`python -m mlm_bert.report` turns into docs/bert.md. `--resume` continues an interrupted run
with the same batches and masks (and refuses other flags than the run's); a directory that
holds a run is never overwritten without `--overwrite`. Every file is written atomically, so a
run killed at any moment resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

import torch

from verify import cli

from .baselines import (ContextNgram, context_ngram_perplexity, unigram_log_probs,
                        unigram_perplexity)
from .evaluate import evaluate, format_predictions, topk
from .items import EVAL_SEED, MASKINGS, PretrainingData
from .tools.plot import plot_curves
from .predict import context_examples, probes
from .presets import PRESETS, build_model, get_preset, prepare
from .runs import (RunError, check_run_dir, check_same_run, clear_run, read_checkpoint,
                   read_tokenizer, remove_stray_temporaries, write_text)
from .trainer import BertTrainer, TrainConfig, read_metrics

__all__ = ["build_parser", "run", "main", "positive_int", "positive_float", "EXIT_CODES"]


def run(preset_name: str, *, out_dir=None, seed: int = 0, masking: str = "wwm",
        steps: int | None = None, minutes: float | None = None, device: str = "auto",
        resume: bool = False,
        overwrite: bool = False, progress: bool = True, n_examples: int = 4,
        threads: int | None = None, checkpoint_every: int | None = None) -> dict:
    """Train one preset and write its results; returns the summary.

    `steps` trains that many steps (the learning rate decays over them, and the preset's time
    budget is dropped unless `minutes` is given too); `minutes` sets the time budget (the
    decay is then over the time, `steps` a cap). `threads` (default: the preset's, else
    torch's) sets torch's intra-op threads; `checkpoint_every` overrides the preset's
    checkpoint interval.

    Raises:
        mlm_bert.runs.RunError: the run directory holds another run (and neither `resume` nor
            `overwrite` was given), is a file, or holds a damaged or mismatched checkpoint or
            tokenizer.
        KeyboardInterrupt: with `.step` (the step reached, or None before training started)
            and `.saved_step` (the step of the checkpoint on disk, or None).
    """
    preset = get_preset(preset_name)
    out = pathlib.Path(out_dir or f"out/bert-{preset.name}")
    check_run_dir(out, resume=resume, overwrite=overwrite)
    if overwrite:
        clear_run(out)
    remove_stray_temporaries(out)
    if threads or preset.threads:
        torch.set_num_threads(threads or preset.threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    train_config = _train_config(preset.train, steps, minutes, checkpoint_every)
    meta = {"preset": preset.name, "seed": seed, "masking": masking, "size": preset.size,
            "batch_size": preset.batch_size, "corpus": preset.corpus,
            "position": preset.position, "init": preset.init, "dropout": preset.dropout}
    saved = _previous_run(out, preset, resume, meta, train_config)
    started, load_start = time.perf_counter(), _load_average()
    trainer = None
    try:
        prep = prepare(preset.corpus, preset.vocab_size, preset.batch_size, out, seed=seed,
                       masking=masking)
        torch.manual_seed(seed)
        model = build_model(preset.size, prep.tokenizer.get_vocab_size(), dropout=preset.dropout,
                            position=preset.position, init=preset.init)
        if saved is not None and saved["model_config"] != dataclasses.asdict(model.config):
            raise RunError(f"{out / 'checkpoint.pt'} holds another model than "
                           f"{out / 'tokenizer.json'} and --preset {preset.name} make: start "
                           "again with --overwrite")
        trainer = BertTrainer(model, prep.train, train_config, out, eval_data=prep.held_out,
                              device=device, progress=progress, meta=meta)
        final = trainer.train(resume=resume) or _final_eval(trainer)
        summary = _finish(out, trainer, prep, final, meta, device, n_examples, started)
        summary["machine"] = {"cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                              "load_average": [load_start, _load_average()]}
        write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
    except KeyboardInterrupt as e:
        e.step = trainer.step if trainer is not None else None
        e.saved_step = trainer.saved_step if trainer is not None else (
            saved["step"] if saved is not None else None)
        raise


def _previous_run(out: pathlib.Path, preset, resume: bool, meta: dict, train_config):
    """The checkpoint to resume from (None: none, or no `resume`), after checking that it and
    the tokenizer on disk belong to this run.

    Raises:
        mlm_bert.runs.RunError: they are another run's.
    """
    saved = None
    if resume and (out / "checkpoint.pt").exists():
        saved = read_checkpoint(out / "checkpoint.pt")
        check_same_run(out / "checkpoint.pt", saved,
                       {"meta": meta, "train_config": dataclasses.asdict(train_config)})
    if (out / "tokenizer.json").exists():
        vocab = read_tokenizer(out / "tokenizer.json").get_vocab_size()
        if vocab > preset.vocab_size:
            raise RunError(f"{out / 'tokenizer.json'} has {vocab} pieces, more than --preset "
                           f"{preset.name}'s {preset.vocab_size}: it is another preset's "
                           "(--overwrite starts again)")
    return saved


def _load_average() -> float | None:
    """The 1-minute load average (None where the platform has none): a run's speed depends on
    what else the machine does."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _train_config(config: TrainConfig, steps: int | None, minutes: float | None,
                  checkpoint_every: int | None) -> TrainConfig:
    """The preset's `TrainConfig` with `--steps`, `--minutes` and `--checkpoint-every`
    applied (`--steps` alone replaces a time budget by a step budget)."""
    if steps is not None:
        config = dataclasses.replace(
            config, steps=steps, warmup=min(config.warmup, steps),
            eval_every=min(config.eval_every, steps),
            checkpoint_every=min(config.checkpoint_every, steps), minutes=minutes)
    elif minutes is not None:
        config = dataclasses.replace(config, minutes=minutes)
    if checkpoint_every is not None:
        config = dataclasses.replace(config, checkpoint_every=checkpoint_every)
    return config


def _final_eval(trainer) -> dict:
    """A resumed finished run's final evaluation: the one in its metrics when the run got
    that far (so a resume adds no duplicate record), else evaluated now."""
    for record in reversed(read_metrics(trainer.metrics_path)):
        if record["kind"] == "eval" and record.get("full") and record["step"] == trainer.step:
            return {k: v for k, v in record.items()
                    if k not in ("kind", "step", "full", "elapsed_s")}
    return trainer.run_eval(full=True)


def _finish(out, trainer, prep, final, meta, device, n_examples, started) -> dict:
    """Write the curves, the example predictions, the probes and summary.json (each
    atomically), with the baselines scored on the held-out positions of `final`."""
    model = trainer.model
    records = read_metrics(trainer.metrics_path)
    plot_curves(records, out / "curves.png",
                title=f"{meta['preset']} preset, masking {meta['masking']}, seed {meta['seed']}")
    write_text(out / "predictions.txt", _examples(model, prep, n_examples, device) + "\n")
    write_text(out / "probes.txt", probes(prep.tokenizer, model) + "\n")
    write_text(out / "context_examples.txt",
               context_examples(prep.tokenizer, model, prep.held_out) + "\n")
    baselines = _baselines(prep, model, device, trainer.config.eval_batches)
    train_records = [r for r in records if r["kind"] == "train"]
    summary = {**meta, "steps": trainer.step, "device": device,
               "parameters": sum(p.numel() for p in model.parameters()),
               "vocab_size": prep.tokenizer.get_vocab_size(),
               "held_out": final, **baselines,
               "train_tokens_per_s": (sum(r["tokens_per_s"] for r in train_records) /
                                      max(1, len(train_records))),
               "minutes_budget": trainer.config.minutes, "train_s": trainer.elapsed,
               "crossed_context_baseline_s": _crossing(
                   records, baselines["context_baseline_perplexity_periodic"]),
               "wall_s": time.perf_counter() - started}
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _baselines(prep, model, device, periodic_batches) -> dict:
    """The unigram and context n-gram perplexities on the held-out positions (and the latter
    on the `periodic_batches` that the evaluations during training score, to time when the
    model crossed it), and the other masking level (pieces for a whole-word run, whole words
    for a piece run) evaluated with its own baselines on its own positions."""
    vocab = prep.tokenizer.get_vocab_size()
    unigram = unigram_log_probs(prep.train_docs, vocab)
    ngram = ContextNgram(prep.train_docs, vocab)
    level = PretrainingData(prep.held_out.documents, prep.starts, seed=EVAL_SEED,
                            batch_size=prep.held_out.batch_size, purpose="eval",
                            masking="ours" if prep.held_out.masking == "wwm" else "wwm")
    metrics = evaluate(model, level, device=device)
    return {"unigram_perplexity": unigram_perplexity(unigram, prep.held_out),
            "context_baseline_perplexity": context_ngram_perplexity(ngram, prep.held_out),
            "context_baseline_perplexity_periodic": context_ngram_perplexity(
                ngram, prep.held_out, max_batches=periodic_batches),
            "other_level": {"masking": level.masking, **metrics,
                            "unigram_perplexity": unigram_perplexity(unigram, level),
                            "context_baseline_perplexity": context_ngram_perplexity(ngram,
                                                                                    level)}}


def _crossing(records, threshold: float) -> float | None:
    """The training time (seconds) of the first evaluation during training below `threshold`
    (the final, full evaluation included), or None."""
    for r in records:
        if r["kind"] == "eval" and r["perplexity"] < threshold:
            return r.get("elapsed_s")
    return None


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


EXIT_CODES = """exit status: 0 done; 1 the run failed (a missing package, an error while training);
2 usage error (a bad argument, or a run directory or file that cannot be used: the line says
which and what to do); 130 interrupted (Ctrl-C: the last checkpoint is intact, --resume
continues)."""


def build_parser() -> argparse.ArgumentParser:
    prog = "python -m mlm_bert.train"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke",
                        help="the named run (default smoke; docs/bert.md lists them)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default out/bert-<preset>)")
    parser.add_argument("--seed", type=cli.seed, default=0,
                        help="seed of the pairs, masks, initialisation and dropout, in "
                             "[0, 2**63) (default 0)")
    parser.add_argument("--masking", choices=MASKINGS, default="wwm",
                        help="wwm: whole words (default); ours: piece by piece; labml: "
                             "labml-nn's 81/9/10; mask-only: broken on purpose (every selected "
                             "piece [MASK]), for the masking experiment")
    parser.add_argument("--steps", type=positive_int,
                        help="train this many steps, the learning rate decaying over them "
                             "(replaces the preset's time budget unless --minutes is given)")
    parser.add_argument("--minutes", type=positive_float,
                        help="time budget of the training loop (evaluations included): the "
                             "learning rate decays over the time, the run stops when it is "
                             "spent (default: the preset's)")
    parser.add_argument("--checkpoint-every", type=positive_int, metavar="STEPS",
                        help="override the preset's checkpoint interval")
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads (default: the preset's, else torch's)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (auto: CUDA when present)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt (with the run's "
                             "own flags)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --out (its files are deleted first)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary to PATH")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    prog = "python -m mlm_bert.train"
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        return cli.usage_error(prog, "--resume and --overwrite exclude each other")
    problem = cli.cuda_problem(args.device) or (args.json and cli.file_problem(args.json))
    if problem:
        return cli.usage_error(prog, problem)
    out = args.out or f"out/bert-{args.preset}"
    if args.resume and not pathlib.Path(out, "checkpoint.pt").exists():
        print(f"{prog}: note: no checkpoint.pt in {out} yet: the run starts at step 0",
              file=sys.stderr)
    try:
        summary = run(args.preset, out_dir=out, seed=args.seed, masking=args.masking,
                      steps=args.steps, minutes=args.minutes, device=args.device,
                      resume=args.resume,
                      overwrite=args.overwrite, progress=not args.no_progress,
                      threads=args.threads, checkpoint_every=args.checkpoint_every)
        if args.json:
            write_text(args.json, json.dumps(summary, indent=2) + "\n")
    except KeyboardInterrupt as e:
        return _interrupted(prog, e, out)
    except RunError as e:
        return cli.usage_error(prog, str(e))
    except (ValueError, ModuleNotFoundError, FileNotFoundError, RuntimeError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    h = summary["held_out"]
    print(f"held-out perplexity {h['perplexity']:.2f} (unigram baseline "
          f"{summary['unigram_perplexity']:.2f}), MLM accuracy {h['mlm_acc']:.3f}, "
          f"NSP accuracy {h['nsp_acc']:.3f}; results in {out}")
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


def _interrupted(prog: str, e: KeyboardInterrupt, out) -> int:
    """One line for Ctrl-C: how far the run got and what the checkpoint holds; 130."""
    step, saved = getattr(e, "step", None), getattr(e, "saved_step", None)
    where = "before training started" if step is None else f"at step {step}"
    kept = (f"{out}/checkpoint.pt holds step {saved}: --resume continues from there"
            if saved is not None else "no checkpoint yet: --resume starts from step 0")
    print(f"{prog}: interrupted {where}; {kept}", file=sys.stderr)
    return cli.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
