"""`python -m verify.stats`: the statistical harness on the command line.

Exit status: 0 when every check passes, 1 when any fails, 2 on a usage or configuration error
(a message, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from .cli import cuda_problem, usage_error

__all__ = ["main"]

DEFAULT_TOKENS = 200_000_000


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
    p.add_argument("--tokens", type=_count, default=DEFAULT_TOKENS,
                   help=f"tokens per masker (default {DEFAULT_TOKENS:,}; 1e9 is fine on a GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=None,
                   help="family-wise false-alarm probability of the run (default 1e-5)")
    p.add_argument("--n-tokens", type=int, default=1000)
    p.add_argument("--padding-token", type=int, default=0)
    p.add_argument("--mask-token", type=int, default=1)
    p.add_argument("--no-mask-tokens", type=int, nargs="*", default=[2, 3])
    p.add_argument("--masking-prob", type=float, default=0.15)
    p.add_argument("--randomize-prob", type=float, default=0.1)
    p.add_argument("--no-change-prob", type=float, default=0.1)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--plot", metavar="DIR",
                   help="also write PNG plots of the counts into DIR (needs matplotlib): "
                        "split.png, random_ids.png, selection_by_position.png")
    return p.parse_args(argv)


def _count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return int(value)


def _fail(message: str) -> int:
    return usage_error("verify.stats", message)


def _adapters(names, config, explicit: bool):
    """Resolve maskers; a default backend whose framework is missing is skipped."""
    from .harness.maskers import Unavailable, resolve
    adapters, skipped = [], {}
    for name in names:
        try:
            adapters.append(resolve(name, config))
        except Unavailable as e:
            if explicit:
                raise
            skipped[name] = str(e)
    return adapters, skipped


def main(argv=None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("torch") is None:
        return _fail("the harness counts with PyTorch, which is not installed (pip install torch)")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        return _fail("--plot needs matplotlib, which is not installed (pip install matplotlib)")
    import torch

    from mlm_ref.config import MaskingConfig

    from . import registry
    from .harness import DEFAULT_ALPHA
    from .harness.maskers import Unavailable
    from .harness.runner import check_maskers
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if cuda_problem(device):
        return _fail(cuda_problem(device))
    try:
        config = MaskingConfig(
            padding_token=args.padding_token, mask_token=args.mask_token,
            no_mask_tokens=tuple(args.no_mask_tokens), n_tokens=args.n_tokens,
            masking_prob=args.masking_prob, randomize_prob=args.randomize_prob,
            no_change_prob=args.no_change_prob)
        adapters, skipped = _adapters(args.masker or registry.OURS, config, args.masker is not None)
        if not adapters:
            return _fail("no masker to check: " + "; ".join(skipped.values()))
        report = check_maskers(adapters, config, tokens=args.tokens, seed=args.seed,
                               alpha=DEFAULT_ALPHA if args.alpha is None else args.alpha,
                               device=device, progress=not args.no_progress, skipped=skipped)
    except (ValueError, TypeError, Unavailable) as e:
        return _fail(str(e))
    print(report)
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json(indent=1))
    if args.plot:
        from .plots import plot_report
        try:
            paths = plot_report(report, args.plot)
        except OSError as e:
            return _fail(f"--plot {args.plot}: {e}")
        print("\n".join(f"wrote {path}" for path in paths))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
