"""Statistical primitives: Pearson chi-square with sparse bins merged, critical values, the
minimal detectable effect (MDE) and Holm's step-down over one family-wise budget.

Everything here works on small host arrays (histograms already reduced on the device) in
float64. A check is decided by comparing its statistic with a critical value for its Holm
level, never by a p-value: at 1e9 tokens a real defect's p-values underflow to 0.0, and a
comparison of statistics stays exact. The p-value is still reported (the calibration tests).

MDE, everywhere in this package: the effect at which the check, at the level it was finally
tested at, has 50% power (the statistic's distribution under that effect has its median at the
critical value). For chi-square checks it is Cohen's w = sqrt(lambda / n), where lambda is the
noncentrality giving 50% power; other checks state their own unit.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Callable

import numpy as np
from scipy import special, stats

from .moments import lambda50, matched_chi2

__all__ = ["Check", "Outcome", "merge_sparse", "greedy_groups", "pearson", "contingency",
           "binomial_score", "upper_binomial_check", "dispersion_check",
           "binomial_dispersion_sums", "extreme_binomial_check", "rows_homogeneity",
           "lambda50", "holm", "chi2_check", "MIN_EXPECTED"]

# Pearson's statistic is close to chi-square only when every expected count is large enough;
# 5 is the textbook rule (Cochran), applied by merging adjacent bins, never by dropping them.
MIN_EXPECTED = 5.0


class Outcome(str, enum.Enum):
    """A check's verdict. `NOT_APPLICABLE`: the run's counts cannot support the check (it
    neither passes nor fails, and the report lists it)."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"


@dataclasses.dataclass
class Check:
    """One check of a run: an exact invariant or a statistical test, and its outcome.

    Build one with `Check.exact`, `Check.statistical` (decided later by `holm`) or
    `Check.not_applicable`.

    Args:
        name: what is checked, e.g. `selection rate`.
        subject: the masker (or `a vs b` for a cross-implementation check).
        kind: `exact` (must hold at every position; spends no false-alarm budget) or
            `statistical` (a test decided under the run's family-wise budget).
        detail: expected vs observed, in words, for a failure message.
        violations: exact checks: how many positions or calls break the invariant.
        statistic: statistical checks: the observed statistic (float64).
        bounds: `bounds(level) -> (lower, upper)`: reject when the statistic is below `lower`
            or above `upper` (one-sided checks use `-inf` for `lower`).
        p_value: the p-value (informative; may underflow to 0.0).
        mde: `mde(level) -> float`, the 50%-power minimal detectable effect at `level`.
        mde_unit: what the MDE measures.
        n: the sample size the statistic is computed over.
        outcome: the verdict; None for a statistical check that `holm` has not decided yet.
    """

    name: str
    subject: str
    kind: str
    detail: str = ""
    violations: int = 0
    statistic: float = math.nan
    bounds: Callable[[float], tuple[float, float]] | None = dataclasses.field(default=None,
                                                                               repr=False)
    p_value: float = math.nan
    mde: Callable[[float], float] | None = dataclasses.field(default=None, repr=False)
    mde_unit: str = ""
    n: int = 0
    outcome: Outcome | None = None
    # filled by `holm`
    level: float = math.nan
    critical: tuple[float, float] = (math.nan, math.nan)
    mde_value: float = math.nan

    @classmethod
    def exact(cls, name: str, subject: str, violations: int, detail: str = "") -> "Check":
        """An exact invariant: passes when `violations` is 0."""
        return cls(name, subject, "exact", detail, violations=int(violations),
                   outcome=Outcome.PASS if violations == 0 else Outcome.FAIL)

    @classmethod
    def statistical(cls, name: str, subject: str, statistic: float, bounds, p_value: float,
                    mde, mde_unit: str, *, n: int = 0, detail: str = "") -> "Check":
        """A statistical test, undecided until `holm` settles it."""
        return cls(name, subject, "statistical", detail, statistic=float(statistic),
                   bounds=bounds, p_value=float(p_value), mde=mde, mde_unit=mde_unit, n=int(n))

    @classmethod
    def not_applicable(cls, name: str, subject: str, detail: str = "",
                       kind: str = "statistical") -> "Check":
        """A check the run's counts cannot support (e.g. no random draws at randomize_prob=0)."""
        return cls(name, subject, kind, detail, outcome=Outcome.NOT_APPLICABLE)

    @property
    def applicable(self) -> bool:
        return self.outcome is not Outcome.NOT_APPLICABLE

    @property
    def passed(self) -> bool:
        """True when the check ran and passed (a not-applicable check has not passed)."""
        return self.outcome is Outcome.PASS

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL

    def rejects(self, level: float) -> bool:
        lo, hi = self.bounds(level)
        return not (lo <= self.statistic <= hi)  # NaN statistic: rejected, never silently passed

    def settle(self, level: float, rejected: bool):
        self.level, self.critical = level, self.bounds(level)
        self.mde_value = self.mde(level)
        self.outcome = Outcome.FAIL if rejected else Outcome.PASS


def holm(checks: list[Check], alpha: float) -> None:
    """Holm's step-down procedure with critical values instead of sorted p-values.

    Testing everything still standing at alpha / (number still standing), removing what is
    rejected, and repeating until nothing new is rejected is exactly Holm's procedure: the family
    -wise false-alarm rate is at most `alpha` whatever the dependence between the checks.
    """
    standing = [c for c in checks if c.kind == "statistical" and c.applicable]
    while standing:
        level = alpha / len(standing)
        rejected = [c for c in standing if c.rejects(level)]
        for c in rejected:
            c.settle(level, True)
        standing = [c for c in standing if not c.rejects(level)]
        if not rejected:
            for c in standing:
                c.settle(level, False)
            return


def merge_sparse(observed: np.ndarray, expected: np.ndarray, min_expected: float = MIN_EXPECTED):
    """Merge adjacent bins (in their given order) until each has `min_expected` expected counts.

    Returns:
        `(observed, expected)` of the merged bins, float64. A short remainder at the end is
        folded into the last full bin. Bins with zero expectation keep their observed counts
        in whatever group they fall into, so a count where none was expected still shows.
    """
    observed, expected = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    group = greedy_groups(expected, min_expected)
    n_groups = int(group[-1]) + 1 if group.size else 0
    return (np.bincount(group, observed, minlength=n_groups),
            np.bincount(group, expected, minlength=n_groups))


def greedy_groups(weight: np.ndarray, minimum: float) -> np.ndarray:
    """Group id of each bin: adjacent bins are joined until the group's weight reaches
    `minimum`; a light remainder at the end joins the last group."""
    group = np.empty(weight.size, np.int64)
    g, acc = 0, 0.0
    for i, w in enumerate(weight.tolist()):
        group[i] = g
        acc += w
        if acc >= minimum:
            g, acc = g + 1, 0.0
    if weight.size and acc < minimum and g > 0 and group[-1] == g:
        group[group == g] = g - 1  # the light remainder joins the last full group
    return group


def pearson(observed, expected) -> tuple[float, int]:
    """Pearson's statistic sum (O - E)^2 / E over merged bins, and its degrees of freedom
    (bins - 1: the total is fixed). A count in a zero-expectation bin makes it infinite."""
    observed, expected = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    if np.any(observed[expected <= 0] > 0):  # something where nothing can occur
        return math.inf, max(1, int((expected > 0).sum()) - 1)
    obs, exp = merge_sparse(observed, expected)
    if obs.size < 2:  # one bin: nothing to compare
        return 0.0, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (obs - exp) ** 2 / exp  # merged bins all have exp >= MIN_EXPECTED > 0
    return float(terms.sum()), int(obs.size - 1)


def contingency(table) -> tuple[float, int, int]:
    """Pearson's test of independence for an `r x c` table of counts (rows: groups).

    Columns whose expected counts are small are merged (adjacent, by pooled expectation) so
    that the chi-square approximation holds. Returns `(statistic, df, n)`.
    """
    table = np.asarray(table, np.float64)
    table = table[:, table.sum(0) > 0]
    table = table[table.sum(1) > 0]
    n = table.sum()
    if table.shape[0] < 2 or table.shape[1] < 2:
        return 0.0, 0, int(n)
    rows = table.sum(1)
    # merge columns so that the smallest row's expected count reaches MIN_EXPECTED
    group = greedy_groups(table.sum(0) / n * rows.min(), MIN_EXPECTED)
    merged = np.stack([np.bincount(group, r) for r in table])
    if merged.shape[1] < 2:
        return 0.0, 0, int(n)
    expected = np.outer(rows, merged.sum(0)) / n
    stat = float(((merged - expected) ** 2 / expected).sum())
    return stat, int((merged.shape[0] - 1) * (merged.shape[1] - 1)), int(n)


def chi2_check(name: str, subject: str, stat: float, df: int, n: int, detail: str = "",
               *, two_sided: bool = False, var: float | None = None) -> Check:
    """A chi-square check with Cohen's w as its MDE: right-tailed, or with `two_sided` also
    rejecting a statistic too small for chance (draws more regular than independent ones)
    against `matched_chi2` with `var`, the exact null variance where known (default `2 df`)."""
    if not two_sided:
        return Check.statistical(
            name, subject, stat, lambda level: (-math.inf, float(stats.chi2.isf(level, df))),
            float(stats.chi2.sf(stat, df)),
            lambda level: math.sqrt(lambda50(df, float(stats.chi2.isf(level, df))) / n),
            "Cohen's w", n=n, detail=detail)
    var = 2.0 * df if var is None or not var > 0 else float(var)
    bounds, p = matched_chi2(stat, df, var)
    note = f"statistic {stat:.1f}, expected {df} (sd {math.sqrt(var):.1f})"
    return Check.statistical(name, subject, stat, bounds, p,
                             lambda level: math.sqrt(lambda50(df, bounds(level)[1]) / n),
                             "Cohen's w", n=n, detail=f"{detail}; {note}" if detail else note)


def binomial_score(k: int, n: int, p: float) -> float:
    """Signed normal score z of k against Binomial(n, p): 2 P(Z > |z|) = min(1, 2 min(P(X <= k),
    P(X >= k))), the sign the smaller tail's (not the mean's side: at n p = 1e-7, k = 0 is 0)."""
    low, high = float(stats.binom.logcdf(k, n, p)), float(stats.binom.logsf(k - 1, n, p))
    size = max(0.0, float(-special.ndtri_exp(min(low, high, math.log(0.5)))))   # in logs
    return size if high < low else -size


def upper_binomial_check(name: str, subject: str, k: int, n: int, p: float, unit: str) -> Check:
    """One-sided: `k` of `n` is not more than Binomial(n, p) allows. The statistic is the normal
    score of the exact upper tail P(X >= k), so the p-value is that tail (conservative for a
    discrete count: never below uniform)."""
    z = float(-special.ndtri_exp(min(0.0, float(stats.binom.logsf(k - 1, n, p)))))
    sd = math.sqrt(p * (1 - p) / n)
    bound = lambda a: (-math.inf, float(stats.norm.isf(a)))  # noqa: E731
    return Check.statistical(name, subject, z, bound, float(stats.norm.sf(z)),
                             lambda a: bound(a)[1] * sd, f"absolute {unit}", n=n,
                             detail=f"expected {n * p:.1f} of {n}, observed {k}")


def dispersion_check(name: str, subject: str, d: float, groups: float, var: float,
                     what: str) -> Check | None:
    """Binomial dispersion, two-sided: `d` = sum over groups of (k - m p)^2 / (m p q), whose
    mean is the number of groups and variance `var` under the binomial; referred to a
    chi-square matched in both moments. Too little spread (an exact count per group) fails as
    surely as too much (draws shared within a group). MDE: relative excess variance."""
    if groups <= 0 or var <= 0:
        return None
    mean = float(groups)
    bounds, p = matched_chi2(float(d), mean, var)
    return Check.statistical(
        name, subject, float(d), bounds, p,
        lambda a: bounds(a)[1] / mean - 1, "relative excess variance", n=int(mean),
        detail=f"variance ratio observed/binomial {d / mean:.4f} over {int(mean)} {what}")


def binomial_dispersion_sums(k, m, p: float, minimum: int,
                             weights=None) -> tuple[float, float, float]:
    """(sum of (k - m p)^2 / (m p q), groups, summed variance) over groups with m >= minimum;
    `weights[i]` counts group i that many times (a histogram of groups)."""
    k, m = np.asarray(k, np.float64), np.asarray(m, np.float64)
    w = np.ones_like(m) if weights is None else np.asarray(weights, np.float64)
    use = (m >= minimum) & (w > 0)
    if not 0 < p < 1 or not use.any():
        return 0.0, 0.0, 0.0
    k, m, w = k[use], m[use], w[use]
    mpq = m * p * (1 - p)
    return (float((w * (k - m * p) ** 2 / mpq).sum()), float(w.sum()),
            float((w * (2 + (1 - 6 * p * (1 - p)) / mpq)).sum()))


def extreme_binomial_check(name: str, subject: str, k, n, q, mde, mde_unit: str,
                           detail) -> Check | None:
    """The most extreme of K binomial counts `k[i] ~ Binomial(n[i], q[i])`: each exact tail as
    a normal score, the largest of the 2K tails tested with Bonferroni. One count far off
    (an id never drawn or never selected) is caught even when an omnibus Pearson is not.

    Args:
        mde: `mde(critical_score) -> float`, the effect at 50% power in `mde_unit`.
        detail: `detail(i) -> str`, expected vs observed of the most extreme count `i`.
    """
    k, n, q = (np.asarray(a, np.float64) for a in (k, n, q))
    if k.size < 2:
        return None
    up = -special.ndtri_exp(np.minimum(0.0, stats.binom.logsf(k - 1, n, q)))
    down = -special.ndtri_exp(np.minimum(0.0, stats.binom.logcdf(k, n, q)))
    score = np.maximum(up, down)
    worst, m = int(np.argmax(score)), k.size
    crit = lambda a: float(stats.norm.isf(a / (2 * m)))  # noqa: E731
    return Check.statistical(
        name, subject, float(score[worst]), lambda a: (-math.inf, crit(a)),
        float(min(1.0, 2 * m * stats.norm.sf(score[worst]))), lambda a: mde(crit(a)),
        mde_unit, n=int(n.sum()) if np.ndim(n) else int(n), detail=detail(worst))


def rows_homogeneity(name: str, subject: str, table, what: str, two_sided=False) -> Check | None:
    """Pearson's test that every row (stratum) of `table[k, m]` has the same column shares.

    Empty rows and columns are dropped; adjacent rows are merged until each merged row expects
    MIN_EXPECTED counts in the rarest column, so the chi-square approximation holds however
    many strata there are. None when fewer than two rows or columns remain. `two_sided`: a
    table more even than chance (strata balanced by construction) fails too."""
    t = np.asarray(table, np.float64)
    t = t[:, t.sum(0) > 0]
    t = t[t.sum(1) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return None
    n = t.sum()
    share = t.sum(0) / n
    group = greedy_groups(t.sum(1) * share.min(), MIN_EXPECTED)
    merged = np.stack([np.bincount(group, col) for col in t.T], axis=1)   # [groups, m]
    if merged.shape[0] < 2:
        return None
    expected = np.outer(merged.sum(1), share)
    dev = (merged - expected) ** 2 / expected
    stat = float(dev.sum())
    worst = int(np.argmax(dev.sum(1)))
    fmt = lambda v: ", ".join(f"{x:.4f}" for x in v)  # noqa: E731
    return chi2_check(name, subject, stat, (merged.shape[0] - 1) * (t.shape[1] - 1), int(n),
                      f"{merged.shape[0]} {what}; pooled shares ({fmt(share)}); most deviant "
                      f"group {worst}: ({fmt(merged[worst] / merged[worst].sum())}) over "
                      f"{merged[worst].sum():.0f}", two_sided=two_sided)
