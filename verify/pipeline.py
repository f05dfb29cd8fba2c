"""`python -m verify.pipeline MODULE:ATTR --epochs E --world-size R`: the gate for a data pipeline.

`ATTR(*, epoch, rank, world_size)` returns an iterable of batches, mappings with `input_ids` and
`labels` `[batch, seq]` (what a `DataLoader` with a masking `collate_fn` yields). The gate runs
it for every epoch and rank, recovers the original tokens from the labels, and checks the stream
the pipeline really produced (`verify.stream.pipeline_checks`): no mask pattern repeats beyond
the birthday bound; an example seen again, batches up to 8 apart (DataLoader workers), and the
batches of other ranks and epochs up to 8 batches apart all mask independently; and the
distribution checks of `verify.stats` on every position it saw. It also holds the pipeline to
what a shuffling `DistributedSampler` gives (`verify.stream.pipeline_order`: every example once
per epoch, disjoint equal shares for the ranks, a fresh order each epoch), checks
`attention_mask` and `token_type_ids` where the batches carry them (`pipeline_fields`), and
gates batches that carry `word_ids` with the whole-word checks (`pipeline_words`). One Holm
budget for the statistical checks. `--seed S` passes `seed=S` to a pipeline that takes it.

Exit status as `verify.stats`: 0 pass, 1 fail, 2 usage error (a message, never a traceback),
3 inconclusive (nothing eligible or nothing selected was seen), 130 interrupted. `--plan`
prints each check's MDE for a stream of the planned size, measured on our reference pipeline
(`verify.stream.pipeline_plan`), without importing MODULE:ATTR.

Under `torchrun --nproc-per-node R -m verify.pipeline MODULE:ATTR --epochs E` each process runs
the pipeline for its own rank (RANK, WORLD_SIZE from torchrun; `--world-size` must then be
WORLD_SIZE or left out), the batches are gathered to rank 0, and rank 0 checks and reports.

In pytest::

    from verify.pipeline import assert_pipeline_conforms
    assert_pipeline_conforms(my_pipeline, MaskingConfig(...), epochs=2, world_size=2)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from . import cli
from .cli import usage_error
from .engine import guard
from .engine.exits import exit_status

__all__ = ["check_pipeline", "assert_pipeline_conforms", "main"]

_NO_WORD_PLOTS = ("--plot draws token-level counts: a stream gated as whole-word masking has "
                  "no plots (as verify.stats --wwm)")


def check_pipeline(pipeline, config=None, *, epochs: int = 2, world_size: int = 1,
                   alpha: float | None = None, max_batches: int | None = None,
                   progress: bool = False, name: str | None = None, ranks=None,
                   timeout: float | None = None, seed: int | None = None, wwm: bool = False,
                   examples: int | None = None, drop_last: bool = False, shuffle: bool = True):
    """Run a pipeline over `epochs` x `world_size` and check the stream it produced.

    Args:
        pipeline: `pipeline(*, epoch, rank, world_size)` -> iterable of batches (mappings with
            `input_ids` and `labels`, `[batch, seq]`; labels -100 or `padding_token` where a
            position is not selected).
        config: the `MaskingConfig` the masks must follow (default: BERT-base's ids and the
            module description's probabilities).
        epochs: epochs to run (at least 1; 2 or more to test epochs against each other).
        world_size: ranks to simulate in this process (2 or more to test ranks).
        alpha: family-wise false-alarm probability of the statistical checks (default 1e-5).
        max_batches: at most this many batches per (epoch, rank).
        progress: a progress bar on stderr.
        name: the subject's name in the report (default: the pipeline's).
        ranks: `(rank, world)` under torchrun (set by the command line).
        timeout: seconds each call into the pipeline may take (the call, each next batch);
            an overrun fails "pipeline runs without error" (None: no limit).
        seed: passed to the pipeline as `pipeline(..., seed=seed)`; the pipeline must then
            take a `seed` keyword (default None: called without one, it seeds itself).
        wwm: gate whole-word masking; the batches must carry `word_ids` (a stream whose
            batches carry `word_ids` is gated so anyway).
        examples: the dataset's size, for the coverage checks (default: the distinct
            examples the run showed).
        drop_last: the loader drops each rank's last partial batch (`DataLoader(drop_last=
            True)`): up to `batch - 1` examples per rank and epoch may be left out.
        shuffle: the pipeline reshuffles each epoch (False: a fixed order, no reshuffle checks).

    Returns:
        A `Report` (`.passed`, `.verdict`, `str(report)`, `.to_json()`); under torchrun rank 0's,
        and None on the other ranks.

    Raises:
        TypeError, ValueError: bad arguments, before the pipeline runs.
    """
    from .engine.primitives import holm
    from .engine.resolve import callable_name
    from .stream.collect import collect
    from .stream.pipeline_checks import pipeline_checks
    from .stream.pipeline_report import PipelineReport
    config, alpha = _checked(pipeline, config, alpha, counts=(epochs, world_size, max_batches),
                             timeout=timeout, examples=examples, seed=seed)
    name = name or callable_name(pipeline)
    start = time.perf_counter()
    stream = collect(pipeline, epochs=epochs, world_size=world_size, ranks=ranks,
                     max_batches=max_batches, progress=progress, name=name, timeout=timeout,
                     seed=seed)
    if ranks is not None and ranks[0] != 0:
        return None
    checks, counts, words = pipeline_checks(stream, config, name, wwm=wwm, examples=examples,
                                            drop_last=drop_last, shuffle=shuffle)
    counts.seconds = time.perf_counter() - start
    holm(checks, alpha)
    return PipelineReport(config=config, alpha=alpha, seed=0 if seed is None else seed,
                          tokens=stream.tokens, device="cpu", checks=checks, skipped={},
                          counts={name: counts}, pipeline_seed=seed, words=words)


def _checked(pipeline, config, alpha, *, counts, timeout, examples, seed):
    """The config and alpha to use (defaults filled in), after refusing bad arguments
    (TypeError, ValueError) before the pipeline runs.

    Args:
        counts: `(epochs, world_size, max_batches)`.
        pipeline, config, alpha, timeout, examples, seed: as `check_pipeline`.
    """
    from mlm_ref.config import MaskingConfig

    from . import registry
    from .engine import DEFAULT_ALPHA
    from .engine.arguments import check_alpha, check_testable, check_timeout
    from .stream.pipeline_seed import check_seed_argument
    config = config or MaskingConfig(**registry.BERT)
    alpha = check_alpha(DEFAULT_ALPHA if alpha is None else alpha)
    epochs, world_size, max_batches = counts
    for label, v, low in (("epochs", epochs, 1), ("world_size", world_size, 1),
                          ("max_batches", 1 if max_batches is None else max_batches, 1)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{label} must be an int, got {v!r}")
        if v < low:
            raise ValueError(f"{label} must be at least {low}, got {v}")
    check_timeout(timeout)
    if not callable(pipeline):
        raise TypeError(f"pipeline must be callable as pipeline(*, epoch, rank, world_size), "
                        f"got {type(pipeline).__name__}")
    if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int)
                                 or examples < 1):
        raise ValueError(f"examples must be a positive int, got {examples!r}")
    check_seed_argument(pipeline, seed)
    check_testable(config)
    return config, alpha


def assert_pipeline_conforms(pipeline, config=None, **kwargs):
    """Raise `AssertionError` with the failing checks unless the pipeline passes; returns the
    report otherwise. Keywords as `check_pipeline`."""
    report = check_pipeline(pipeline, config, **kwargs)
    if report is not None and not report.passed:
        raise AssertionError(f"pipeline does not conform to the MLM contract:\n"
                             f"{report.failure_message()}\n\n{report}")
    return report


def parse_args(argv=None) -> argparse.Namespace:
    from .registry import BERT
    p = argparse.ArgumentParser(prog="python -m verify.pipeline", description=(
        "Check the masks a data pipeline really produces, across batches, DataLoader workers, "
        "epochs and ranks: no repeated mask patterns, independent masks wherever they should "
        "be, and the contract's distributions; every example once per epoch, disjoint shares "
        "for the ranks, a fresh order each epoch; attention_mask and token_type_ids where the "
        "batches carry them; whole-word checks for batches with word_ids (docs/pipelines.md)."))
    p.add_argument("pipeline", metavar="MODULE:ATTR",
                   help="ATTR(*, epoch, rank, world_size[, seed]) returns an iterable of "
                        "batches: mappings with input_ids and labels [batch, seq], optionally "
                        "attention_mask, token_type_ids, word_ids [batch, seq] and index "
                        "[batch]")
    p.add_argument("--epochs", type=int, default=2, help="epochs to run (default 2)")
    p.add_argument("--world-size", type=int, default=None,
                   help="ranks to simulate in one process (default 1; under torchrun: "
                        "WORLD_SIZE, each rank a process)")
    p.add_argument("--max-batches", type=int, default=None, metavar="N",
                   help="at most N batches per (epoch, rank) (default: all)")
    p.add_argument("--alpha", type=float, default=None,
                   help="family-wise false-alarm probability (default 1e-5)")
    p.add_argument("--n-tokens", type=int, default=BERT["n_tokens"],
                   help=f"vocabulary size (default {BERT['n_tokens']}, BERT-base's)")
    p.add_argument("--padding-token", type=int, default=BERT["padding_token"],
                   help=f"[PAD] id (default {BERT['padding_token']})")
    p.add_argument("--mask-token", type=int, default=BERT["mask_token"],
                   help=f"[MASK] id (default {BERT['mask_token']})")
    p.add_argument("--no-mask-tokens", type=int, nargs="*",
                   default=list(BERT["no_mask_tokens"]),
                   help=f"ids never masked, such as [CLS] and [SEP] (default "
                        f"{' '.join(map(str, BERT['no_mask_tokens']))})")
    p.add_argument("--masking-prob", type=float, default=0.15, help="default 0.15")
    p.add_argument("--randomize-prob", type=float, default=0.1, help="default 0.1")
    p.add_argument("--no-change-prob", type=float, default=0.1, help="default 0.1")
    p.add_argument("--timeout", type=cli.positive_seconds, default=None, metavar="SECONDS",
                   help="seconds each call into the pipeline (the call, each next batch) may "
                        "take before it fails (default: no limit)")
    p.add_argument("--seed", type=int, default=None,
                   help="pass seed=SEED to the pipeline (it must take a seed keyword); "
                        "default: call it without one")
    p.add_argument("--wwm", action="store_true",
                   help="gate whole-word masking: every batch must carry word_ids (batches "
                        "that carry word_ids are gated so without it)")
    p.add_argument("--examples", type=int, default=None, metavar="N",
                   help="the dataset's size, for the coverage checks (default: the distinct "
                        "examples the run shows)")
    p.add_argument("--drop-last", action="store_true",
                   help="the loader drops each rank's last partial batch (DataLoader("
                        "drop_last=True)): allow up to batch-1 examples per rank left out")
    p.add_argument("--no-shuffle", action="store_true",
                   help="the pipeline keeps a fixed order on purpose: skip the reshuffle checks")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.add_argument("--plot", metavar="DIR",
                   help="also write PNG plots of the stream's counts into DIR (needs "
                        "matplotlib), as verify.stats --plot; not for whole-word streams "
                        "(--wwm, or batches with word_ids)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _plan_flags(p)
    return p.parse_args(argv)


def _plan_flags(p: argparse.ArgumentParser) -> None:
    """`--plan` and its `--effect`."""
    p.add_argument("--plan", action="store_true",
                   help="instead of the gate: each statistical check's false-alarm share and "
                        "minimal detectable effect for a stream of --examples (default "
                        "4096) examples x --epochs x --world-size (measured on our reference "
                        "pipeline; MODULE:ATTR is not run), and the positions each --effect "
                        "needs")
    p.add_argument("--effect", action="append", default=None, metavar="KIND=VALUES",
                   help="an effect for --plan (token-level streams), as verify.stats --effect: "
                        "selection=0.1505 or split=0.81,0.09,0.10 (repeatable)")


def main(argv=None) -> int:
    args = parse_args(argv)
    ranks = None
    try:
        problem = (args.json and cli.file_problem(args.json)) or \
            (args.plot and args.wwm and _NO_WORD_PLOTS) or \
            (args.plot and cli.dir_problem(args.plot)) or _plan_problem(args)
        if problem:
            return usage_error("verify.pipeline", problem)
        if args.plan:
            with guard.watch_ctrl_c():
                return _plan(args)
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world > 1 and "RANK" in os.environ:
            if args.world_size not in (None, world):
                return usage_error("verify.pipeline", f"--world-size {args.world_size} but "
                                                      f"torchrun started {world} ranks")
            from .engine.distributed import Ranks
            ranks = Ranks("cpu")
        with contextlib.ExitStack() as stack:
            if ranks is not None and not ranks.leader:
                stack.enter_context(contextlib.redirect_stdout(
                    stack.enter_context(open(os.devnull, "w"))))
            with guard.watch_ctrl_c():
                status = _main(args, ranks)
        return status if ranks is None else ranks.status(status)
    except KeyboardInterrupt as e:
        return cli.interrupted("verify.pipeline", e)
    finally:
        if ranks is not None:
            ranks.close()


def _plan_problem(args) -> str | None:
    """Why --plan or --effect is refused, or None."""
    if args.effect and not args.plan:
        return "--effect is for --plan"
    if args.plan and (args.json or args.plot):
        return "--plan prints the plan: no --json or --plot"
    if args.effect and args.wwm:
        return "--effect plans token-level effects: not with --wwm"
    if args.plan:
        from .token.plan import parse_effect
        try:
            for effect in args.effect or []:
                parse_effect(effect)
        except ValueError as e:
            return str(e)
    return None


def _plan(args) -> int:
    """`--plan`: the MDEs at the planned size, on our reference pipeline (the user's is not
    imported), and the eligible positions each effect needs."""
    from .stream.pipeline_plan import PLAN_EXAMPLES, format_pipeline_plan, reference_pipeline
    try:
        config = cli.masking_config(args)
        examples = args.examples or PLAN_EXAMPLES
        world = args.world_size or 1
        report = check_pipeline(
            reference_pipeline(config, examples=examples, seed=args.seed or 0, wwm=args.wwm),
            config, epochs=args.epochs, world_size=world, alpha=args.alpha, wwm=args.wwm,
            examples=examples, progress=not args.no_progress, name="reference")
        rows = None
        if not args.wwm:
            from .token.plan import DEFAULT_EFFECTS, parse_effect, plan
            effects = [parse_effect(e) for e in args.effect] if args.effect else DEFAULT_EFFECTS
            n_checks = sum(c.kind == "statistical" and c.applicable for c in report.checks)
            rows = plan(config, effects, alpha=report.alpha, n_checks=n_checks, share=1.0)
    except (ValueError, TypeError, ImportError) as e:
        return usage_error("verify.pipeline", str(e))
    print(format_pipeline_plan(report.checks, alpha=report.alpha, sizes=(
        examples, args.epochs, world, report.tokens), effects_rows=rows))
    return 0


def _main(args, ranks) -> int:
    from .engine.resolve import Unavailable, load
    try:
        config = cli.masking_config(args)
        fn = load(args.pipeline, what="pipeline", timeout=args.timeout)
        ok = True
    except (ValueError, TypeError, Unavailable) as e:
        message, ok = str(e), False
    if ranks is not None and not ranks.ready(ok):
        return usage_error("verify.pipeline", message if not ok else
                           "another rank refused its arguments (see its message)")
    if not ok:
        return usage_error("verify.pipeline", message)
    try:
        report = check_pipeline(
            fn, config, epochs=args.epochs, world_size=args.world_size or 1,
            alpha=args.alpha, max_batches=args.max_batches,
            progress=not args.no_progress and (ranks is None or ranks.leader),
            name=args.pipeline, ranks=None if ranks is None else (ranks.rank, ranks.world),
            timeout=args.timeout, seed=args.seed, wwm=args.wwm, examples=args.examples,
            drop_last=args.drop_last, shuffle=not args.no_shuffle)
    except (ValueError, TypeError, ImportError) as e:   # ImportError: a missing optional package
        return usage_error("verify.pipeline", str(e))
    if report is None:
        return 0
    print(report)
    if args.json:
        cli.write_atomically(args.json, report.to_json(indent=1))
    if args.plot and report.words:     # the plots draw token-level counts, not WordCounts
        return usage_error("verify.pipeline", f"{_NO_WORD_PLOTS}; the batches carry word_ids")
    if args.plot:
        from .plots import plot_report
        try:
            print("\n".join(f"wrote {path}" for path in plot_report(report, args.plot)))
        except (OSError, ImportError) as e:
            return usage_error("verify.pipeline", f"--plot {args.plot}: {e}")
    return exit_status(report.verdict)


if __name__ == "__main__":
    sys.exit(main())
