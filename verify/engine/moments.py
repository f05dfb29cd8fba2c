"""A two-sided reference for a statistic whose exact null mean and variance are known.

Pearson's and dispersion statistics are near chi-square, but the lower tail (draws more regular
than independent ones: quotas, draws without replacement) needs the statistic's exact variance,
not the chi-square's `2 df`. The reference here is a scaled chi-square matched in both moments,
each tail tested at half the level. Beside it, `lambda50`: the noncentrality at which a
chi-square check has 50% power (its minimal detectable effect).
"""

from __future__ import annotations

import functools
import math

from scipy import optimize, special

__all__ = ["matched_chi2", "lambda50", "dispersion_terms"]


def matched_chi2(stat: float, mean: float, var: float):
    """`(bounds, p_value)` of a two-sided test of `stat` against `scale * chi2(nu)` with the
    null `mean` and `var`: `bounds(level) -> (lower, upper)`, each tail at `level / 2`.

    Args:
        stat: the observed statistic.
        mean: its mean under the null (the degrees of freedom, for Pearson).
        var: its variance under the null (positive).
    """
    scale, nu = var / (2.0 * mean), 2.0 * mean * mean / var

    # scipy.stats.chi2's own formulas, called directly: its generic wrappers (argument checks,
    # broadcasting) cost ~30 us a call, and Holm asks for the bounds at every level it tries
    def bounds(level: float) -> tuple[float, float]:
        return (scale * float(2 * special.gammaincinv(nu / 2, level / 2)),
                scale * float(special.chdtri(nu, level / 2)))
    # as scipy.stats: no support below 0; no distribution (nan) unless nu > 0
    x = max(stat / scale, 0.0) if nu > 0 else math.nan
    tail = min(special.chdtr(nu, x), special.chdtrc(nu, x))
    return bounds, float(min(1.0, 2 * tail))


def dispersion_terms(xp, k, m, p: float, min_trials: int):
    """A binomial dispersion sum counted on the device (array namespace `xp`): counts `k` of
    `m` trials each at probability `p`, over the groups of at least `min_trials` trials, as
    `[sum (k - m p)^2 / (m p q), groups, the sum's null variance]` (float64, shape [3]); each
    term has mean 1 and variance `2 + (1 - 6 p q) / (m p q)`."""
    k, m = xp.astype(k, xp.float64), xp.astype(m, xp.float64)
    use = m >= min_trials
    npq = xp.where(use, m * p * (1 - p), 1.0)
    term = xp.where(use, (k - m * p) ** 2 / npq, 0.0)
    var = xp.where(use, 2 + (1 - 6 * p * (1 - p)) / npq, 0.0)
    return xp.stack([term.sum(), xp.astype(use.sum(), xp.float64), var.sum()])


@functools.lru_cache(maxsize=4096)
def lambda50(df: int, critical: float) -> float:
    """Noncentrality at which chi-square(df) exceeds `critical` with probability 1/2."""
    if df <= 0 or not math.isfinite(critical):
        return math.nan
    hi = max(1.0, critical)
    while _power_excess(hi, df, critical) < 0:
        hi *= 2
    return float(optimize.brentq(_power_excess, 1e-9, hi, args=(df, critical), xtol=1e-6))


def _power_excess(lam: float, df: int, critical: float) -> float:
    """P(chi-square(df, noncentrality lam) > critical) - 1/2 (`stats.ncx2.sf` costs 20x)."""
    return 0.5 - float(special.chndtr(critical, df, lam))
