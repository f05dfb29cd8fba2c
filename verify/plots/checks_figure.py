"""A picture of every check of a run, for a gate without counts to draw (`verify.nsp --plot`).

`plot_checks(checks, directory, gate, subject)` writes `<gate>_checks.png`: one bar per decided
statistical check, its statistic as a share of the critical value it had to stay within at its
Holm level (on the side the statistic fell: beyond +-1 is a rejection), red where it failed;
the exact invariants are summed up in the title (how many hold, and which fail).
"""

from __future__ import annotations

import math
import os

from .calibration import figure

__all__ = ["plot_checks", "critical_share"]


def critical_share(check) -> float:
    """The statistic over the critical bound on its side (|share| > 1: rejected); NaN when the
    check was not decided or the bound on that side is infinite."""
    lo, hi = check.critical
    s = check.statistic
    if not math.isfinite(s):
        return math.nan
    bound = hi if s >= 0 or not math.isfinite(lo) else lo
    if not math.isfinite(bound) or bound == 0:
        return math.nan
    return s / abs(bound)


def plot_checks(checks, directory, gate: str, subject: str) -> str:
    """Write `<gate>_checks.png` into `directory` (created if missing) and return its path.

    Raises:
        ImportError: matplotlib is not installed.
        OSError: the folder or file cannot be written.
    """
    decided = [c for c in checks if c.kind == "statistical" and c.applicable]
    exact = [c for c in checks if c.kind == "exact"]
    fig = figure(figsize=(9, 1.5 + 0.32 * max(1, len(decided))))
    os.makedirs(directory, exist_ok=True)
    ax = fig.add_subplot()
    shares = [critical_share(c) for c in decided]
    rows = range(len(decided))
    ax.barh(rows, [0.0 if math.isnan(s) else s for s in shares],
            color=["tab:red" if c.failed else "tab:blue" for c in decided])
    ax.set_yticks(list(rows), [c.name for c in decided], fontsize=7)
    ax.invert_yaxis()
    for x in (-1, 1):
        ax.axvline(x, color="black", lw=0.8, ls="--")
    ax.set_xlabel("statistic / critical value at its Holm level (beyond +-1: rejected)")
    failed = [c.name for c in exact if c.failed]
    ax.set_title(f"{gate} gate, {subject}: {len(exact) - len(failed)} of {len(exact)} exact "
                 f"invariants hold" + (f"; failing: {', '.join(failed)[:120]}" if failed
                                       else ""), fontsize=9)
    path = os.path.join(directory, f"{gate}_checks.png")
    fig.savefig(path, dpi=100)
    return path
