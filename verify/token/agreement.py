"""Cross-implementation agreement: two maskers fed the same inputs must show the same laws.

Whatever each masker's own checks say, two maskers fed the same synthetic inputs should
produce the same distributions. For every pair, a Pearson test of homogeneity (a `2 x k`
contingency table, sparse columns merged) on the selection counts, the observed outcomes, the
coarse histogram of visible random ids and the per-sequence selected counts.
"""

from __future__ import annotations

import numpy as np

from .counts import HostCounts
from ..engine.primitives import Check, chi2_check, contingency

__all__ = ["AGREEMENT_NAMES", "agreement_checks"]

AGREEMENT_NAMES = ("agreement: selection rate", "agreement: category split",
                   "agreement: random-id ranges", "agreement: per-sequence count")


def agreement_checks(a: HostCounts, b: HostCounts, subject: str) -> list[Check]:
    """Homogeneity of two maskers' counts (not applicable where a table has one column)."""
    tables = [[[a.selected, a.eligible - a.selected], [b.selected, b.eligible - b.selected]],
              [a.outcomes.sum(0), b.outcomes.sum(0)],
              [a.coarse_other[:-1], b.coarse_other[:-1]],
              [a.seq_hist[1:].sum(0), b.seq_hist[1:].sum(0)]]
    out = []
    for name, table in zip(AGREEMENT_NAMES, tables):
        stat, df, n = contingency(np.asarray(table, np.int64))
        out.append(chi2_check(name, subject, stat, df, n, f"{df + 1} merged columns") if df
                   else Check.not_applicable(name, subject))
    return out
