"""The planner every gate shares: each statistical check's false-alarm share and minimal
detectable effect (MDE) at a planned size, without running the user's code.

A gate plans by deciding its checks on counts it makes itself, from our reference (a masker,
a generator) at the planned size; nothing of the user's runs. Each statistical check is then
read at the first Holm level, `alpha / m` (m: the statistical checks of the run): a correct
implementation fails it with at most that probability, and a defect of the MDE's size (in the
check's own unit) is found with 50% power; most MDEs shrink as 1 / sqrt(size).
"""

from __future__ import annotations

import math

from .primitives import Check

__all__ = ["mde_rows", "format_mde_rows"]


def mde_rows(checks: list[Check], alpha: float, *, family: int | None = None) -> list[dict]:
    """One row per applicable statistical check: `check`, `level`, `mde`, `unit`, `n` (a check
    the planned counts cannot support is left out, as a run leaves it out of Holm's family).

    Args:
        checks: the checks of a planning run (exact ones are left out).
        alpha: the run's family-wise false-alarm probability.
        family: statistical checks in the Holm family (default: those in `checks`; more when
            several subjects share the run).
    """
    statistical = [c for c in checks if c.kind == "statistical" and c.applicable]
    level = alpha / max(1, family or len(statistical))     # Holm's family: the applicable ones
    rows = []
    for c in statistical:
        usable = c.mde is not None
        rows.append({"check": c.name, "level": level,
                     "mde": float(c.mde(level)) if usable else math.nan,
                     "unit": c.mde_unit if usable else "no MDE", "n": c.n})
    return rows


def format_mde_rows(rows: list[dict], title: str) -> str:
    """The rows as a table under `title` (one line per check)."""
    if not rows:
        return f"{title}\n(no statistical check)"
    width = max(len(r["check"]) for r in rows)
    lines = [title, f"{'check':{width}s}  {'n':>10s}  {'false alarm <=':>14s}  MDE (50% power)"]
    for r in rows:
        mde = f"{r['mde']:.3g} {r['unit']}" if math.isfinite(r["mde"]) else r["unit"]
        lines.append(f"{r['check']:{width}s}  {r['n']:>10,d}  {r['level']:>14.3g}  {mde}")
    return "\n".join(lines)
