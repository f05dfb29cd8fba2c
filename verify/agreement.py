"""Cross-implementation agreement and the exact invariants.

Agreement: two maskers fed the same synthetic inputs should produce the same distributions,
whatever each one's own test says. For every pair, a Pearson test of homogeneity (an
`2 x k` contingency table, sparse columns merged) on the selection counts, the observed
outcomes, the coarse histogram of visible random ids and the per-sequence selected counts.

Invariants are exact: a check passes when no position (or call) breaks it; they spend none of
the false-alarm budget.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .checks import chi2_check, contingency
from .counts import INVARIANTS

__all__ = ["ExactCheck", "cross_checks", "exact_checks", "HOST_INVARIANTS"]

HOST_INVARIANTS = ("outputs keep shape, dtype and device", "same seed gives same output",
                   "masker runs without error")


@dataclasses.dataclass
class ExactCheck:
    """An exact invariant: `violations` must be 0."""

    name: str
    subject: str
    violations: int
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.violations == 0


def exact_checks(h: dict, subject: str) -> list[ExactCheck]:
    """The invariants counted on the device and the ones seen on the host."""
    out = [ExactCheck(name, subject, h["invariants"][name],
                      f"{h['invariants'][name]} {what}" if h["invariants"][name] else "")
           for name, what in INVARIANTS.items()]
    for name in HOST_INVARIANTS:
        problems = h["host_problems"].get(name, [])
        out.append(ExactCheck(name, subject, len(problems), "; ".join(problems[:3])))
    return out


def cross_checks(a: dict, b: dict, subject: str) -> list:
    """Homogeneity of two maskers' counts (a bare name: not applicable)."""
    sa, sb = a["scalars"], b["scalars"]
    tables = {
        "agreement: selection rate": [[sa["selected"], sa["eligible"] - sa["selected"]],
                                      [sb["selected"], sb["eligible"] - sb["selected"]]],
        "agreement: category split": [a["outcomes"].sum(0), b["outcomes"].sum(0)],
        "agreement: random-id ranges": [a["coarse_other"][:-1], b["coarse_other"][:-1]],
        "agreement: per-sequence count": [a["seq_hist"][1:].sum(0), b["seq_hist"][1:].sum(0)],
    }
    out = []
    for name, table in tables.items():
        stat, df, n = contingency(np.asarray(table, np.int64))
        out.append(chi2_check(name, subject, stat, df, n, f"{df + 1} merged columns")
                   if df else name)  # a bare name: not applicable
    return out
