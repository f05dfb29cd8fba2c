"""What every command-line tool of this package shares: the progress bar, usage errors, the
CUDA check, the versions a results file records, argument types, output files checked before a
run and written whole, and Ctrl-C.

Every tool keeps one promise: no traceback, and exit 0 (pass), 1 (a check failed), 2 (usage
error) or 130 (interrupted by Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import sys
import tempfile

from .engine.exits import INTERRUPTED, USAGE

__all__ = ["progress", "usage_error", "cuda_problem", "versions", "token_count", "seed",
           "positive_seconds", "file_problem", "dir_problem", "write_atomically", "interrupted",
           "duration", "MAX_TOKENS", "MAX_SEED", "INTERRUPTED", "masking_config"]

# Above this a run would take days even on a GPU: refused as a usage error, not started.
MAX_TOKENS = 10 ** 13
# Seeds are 64-bit signed integers in JAX's and torch's interfaces.
MAX_SEED = 2 ** 63 - 1


class _NoBar:
    def update(self, n: int = 1):
        pass

    def close(self):
        pass


def progress(total: int, *, unit: str, desc: str | None = None, enabled: bool = True,
             delay: float = 1.5, unit_scale: bool = False):
    """A tqdm bar that appears after `delay` seconds, or a no-op when tqdm is missing, the bar
    is not wanted or stderr is not a terminal."""
    try:
        from tqdm import tqdm
    except ImportError:
        enabled = False
    if not enabled:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, delay=delay,
                file=sys.stderr, leave=False, disable=not sys.stderr.isatty())


def usage_error(prog: str, message: str) -> int:
    """Print `prog: error: message` on stderr and return the usage-error exit status, 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return USAGE


def cuda_problem(device) -> str | None:
    """Why `device` cannot be used, in a sentence, or None when it can (or is not CUDA)."""
    if str(device).split(":")[0] != "cuda":
        return None
    import torch
    if not torch.cuda.is_available():
        return f"--device {device}, but PyTorch sees no CUDA device"
    return None


def versions(dists=("numpy", "scipy", "torch", "jax", "triton", "labml-nn", "transformers"),
             ) -> dict[str, str]:
    """Python's and each installed distribution's version (missing ones left out)."""
    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _parse(text: str, convert, what: str):
    """`convert(text)`, or the argparse error `not a number: '...'`."""
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def token_count(text: str) -> int:
    """argparse type: a whole number of tokens in [1, MAX_TOKENS], written `3e5` or `300000`."""
    value = _parse(text, float, "a number")
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    if value > MAX_TOKENS:
        raise argparse.ArgumentTypeError(
            f"{text} tokens would take days; at most {MAX_TOKENS:.0e} per masker")
    return int(value)


def seed(text: str) -> int:
    """argparse type: an integer seed in [0, 2**63)."""
    value = _parse(text, int, "an integer")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must lie in [0, 2**63), got {text}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    value = _parse(text, float, "a number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def dir_problem(path: str) -> str | None:
    """Why files cannot be written into folder `path`, or None; missing folders are created
    (checked before a run, so that an hour of work is not lost to a typo at the end)."""
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path} is not a folder"
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        return f"cannot write into {path}: {e.strerror or e}"
    return None


def file_problem(path: str) -> str | None:
    """Why file `path` cannot be written, or None; its missing parent folders are created."""
    if os.path.isdir(path):
        return f"{path} is a folder, not a file"
    return dir_problem(os.path.dirname(os.path.abspath(path)))


def write_atomically(path: str, text: str) -> None:
    """Write `text` to `path` whole or not at all: a temporary file in the same folder, renamed
    over `path` at the end (an interrupted run leaves no half-written file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes it private; a report is not
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def interrupted(prog: str, e: BaseException | None = None, tokens: int | None = None) -> int:
    """Print one line for Ctrl-C (how far the run got, where known); return 130."""
    tokens = getattr(e, "tokens", None) if tokens is None else tokens
    where = f" of masker {e.masker!r}" if getattr(e, "masker", None) else ""
    after = f" after {tokens:,} tokens{where}" if tokens is not None else ""
    print(f"{prog}: interrupted{after}", file=sys.stderr)
    return INTERRUPTED


def duration(seconds: float) -> str:
    """`42 s`, `3.5 min`, `2.1 h` or `4.0 days`."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.2g} s"


def masking_config(args):
    """The `MaskingConfig` of a command line's `--padding-token`, `--mask-token`,
    `--no-mask-tokens`, `--n-tokens` and the three probabilities.

    Raises:
        ValueError, TypeError: what `MaskingConfig` refuses.
    """
    from mlm_ref.config import MaskingConfig
    return MaskingConfig(
        padding_token=args.padding_token, mask_token=args.mask_token,
        no_mask_tokens=tuple(args.no_mask_tokens), n_tokens=args.n_tokens,
        masking_prob=args.masking_prob, randomize_prob=args.randomize_prob,
        no_change_prob=args.no_change_prob)
