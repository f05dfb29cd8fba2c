"""`python -m verify.conformance`: the published maskers and ours, checked and written up.

Runs the harness on every available masker — ours (`numpy`, `torch`, `jax`) and the published
ones (`labml`, `hf-torch`, `hf-numpy`) — with BERT's special ids and vocabulary, in one run
under one family-wise false-alarm budget, and writes `docs/conformance.md`: each masker's
verdicts, the effective probabilities it showed with confidence intervals, the N and the
minimal detectable effects, and in plain words what deviates and what it means for training.
With matplotlib installed it also writes the plots the page shows.

    python -m verify.conformance --out docs/conformance.md --plot docs/img
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from mlm_ref.config import MaskingConfig

from .. import registry
from .. import cli
from ..cli import cuda_problem, versions
from ..registry import BERT
from .audit import AUDITED

__all__ = ["MASKERS", "run", "main", "available"]

# ours first, then the published ones; the audited maskers have their own section and command
# (`verify.conformance.audit`)
MASKERS = tuple(n for n in registry.REGISTRY if n not in AUDITED)


def available(names=MASKERS) -> tuple[list[str], dict[str, str]]:
    """The maskers whose packages are installed, and why the others are left out."""
    found, skipped = [], {}
    for name in names:
        missing = registry.get(name).missing()
        if missing:
            skipped[name] = f"{', '.join(missing)} is not installed"
        else:
            found.append(name)
    return found, skipped


def run(tokens: int, seed: int, device: str = "cpu", names=MASKERS, progress=False):
    """Check each available masker on its own (no cross-comparison: a published masker that
    deviates would make every pair with it fail), all under one Holm budget."""
    from .. import check_maskers
    found, skipped = available(names)
    config = MaskingConfig(**BERT)
    return check_maskers(found, config, tokens=tokens, seed=seed, device=device, cross=False,
                         progress=progress, skipped=skipped)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m verify.conformance",
                                description=__doc__.split("\n\n")[0],
                                epilog="Exit status: 0 when the page was written (whatever "
                                       "the verdicts), 2 on a usage error, 130 when "
                                       "interrupted (Ctrl-C; nothing is written).")
    p.add_argument("--tokens", type=cli.token_count, default=int(5e7),
                   help="tokens per masker (default 5e7, about two minutes on 2 CPU cores)")
    p.add_argument("--seed", type=cli.seed, default=0,
                   help="seed of inputs and masker calls, in [0, 2**63)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", default="docs/conformance.md", help="the page to write")
    p.add_argument("--plot", metavar="DIR", help="also write the plots here (needs matplotlib)")
    p.add_argument("--calibration-runs", type=int, default=200,
                   help="seeded runs of a correct masker for the p-value QQ plot (default 200)")
    args = p.parse_args(argv)
    if args.calibration_runs < 1:
        p.error("--calibration-runs must be >= 1")
    import importlib.util
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib (pip install matplotlib)")
    if cuda_problem(args.device):
        p.error(cuda_problem(args.device))
    # checked before the run, so that minutes of work are not lost to a bad path at the end
    problem = cli.file_problem(args.out) or (args.plot and cli.dir_problem(args.plot))
    if problem:
        p.error(problem)
    try:
        return _write(args, argv)
    except KeyboardInterrupt:
        return cli.interrupted("verify.conformance")


def _write(args, argv) -> int:
    report = run(args.tokens, args.seed, args.device, progress=True)
    images = _plots(report, args) if args.plot else {}
    from .page import render
    command = "python -m verify.conformance " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
    page = render(report, images=images, command=command, versions=_versions_line(),
                  date=datetime.date.today().isoformat(), out_dir=os.path.dirname(args.out))
    from . import audit, wwm
    for section in (wwm, audit):  # the whole-word and audit sections have their own commands
        kept = section.existing_section(args.out)
        page = section.splice(page, kept) if kept else page
    cli.write_atomically(args.out, page)
    print(report)
    print(f"wrote {args.out}" + "".join(f", {v}" for v in images.values()))
    return 0


def _plots(report, args) -> dict[str, str]:
    """Plot files by kind: the report's plots, and a calibration QQ plot of a correct masker."""
    from ..plots import calibration_p_values, plot_calibration, plot_report
    paths = {os.path.splitext(os.path.basename(p))[0]: p
             for p in plot_report(report, args.plot)}
    config = MaskingConfig(**BERT)
    p_values = calibration_p_values("torch", config, args.calibration_runs, 1 << 16,
                                    seed=args.seed)
    paths["calibration"] = plot_calibration(p_values, os.path.join(args.plot,
                                                                   "calibration.png"))
    return paths


def _versions_line() -> str:
    v = versions(("numpy", "torch", "jax", "labml-nn", "transformers"))
    return ", ".join(f"{k} {val}" for k, val in v.items() if k != "python")


