"""What every command-line tool of this package shares: the progress bar, usage errors, the
CUDA check and the versions a results file records."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

__all__ = ["progress", "usage_error", "cuda_problem", "versions"]


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
    return 2


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
