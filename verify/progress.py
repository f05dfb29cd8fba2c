"""The one progress bar of the CLIs: tqdm on stderr, only on a terminal, optional."""

from __future__ import annotations

import sys

__all__ = ["progress"]


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
