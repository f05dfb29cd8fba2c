"""Two-sided tests with the exact null moments the contract gives, for the token-level gate.

A draw can be wrong in two directions: more irregular than independent draws (shared draws,
a skew) or more regular (draws without replacement, quotas, round-robin categories). Every test
here rejects both, each tail at half the check's level, and refers its statistic to the exact
mean and variance it has under the contract:

* `pearson_gof`: Pearson's goodness of fit against known cell probabilities; under a
  multinomial its mean is `k - 1` and its variance `2(k-1) + (sum 1/pi - k^2 - 2k + 2)/n`
  (the small-count correction matters in the lower tail);
* `normal_two_sided`: a sum of independent terms with exact mean and variance (collisions,
  whose moments `collision_moments` gives);
* `binomial_two_sided`: an exact binomial count, both tails as normal scores;
* `max_lag_check`: the largest of many standardised lag correlations (Bonferroni).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from mlm_ref.config import MaskingConfig

from ...engine.primitives import Check, chi2_check, merge_sparse

__all__ = ["pearson_gof", "gof_check", "normal_two_sided", "binomial_two_sided",
           "max_lag_check", "two_sided_bounds", "collision_moments"]


def pearson_gof(observed, expected) -> tuple[float, int, float]:
    """(statistic, df, exact null variance) of Pearson's goodness of fit after merging sparse
    bins; df 0 when fewer than two bins remain. A count where nothing is expected makes the
    statistic infinite."""
    observed, expected = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    if np.any(observed[expected <= 0] > 0):
        return math.inf, max(1, int((expected > 0).sum()) - 1), math.inf
    obs, exp = merge_sparse(observed, expected)
    if obs.size < 2:
        return 0.0, 0, 0.0
    n, k = float(exp.sum()), obs.size
    stat = float(((obs - exp) ** 2 / exp).sum())
    var = 2.0 * (k - 1) + (float((n / exp).sum()) - k * k - 2 * k + 2) / n
    return stat, k - 1, max(var, 1e-12)


def gof_check(name: str, subject: str, parts, detail: str) -> Check | None:
    """Two-sided chi-square check of several independent goodness-of-fit tables summed:
    `parts` is a list of `(observed, expected)`; None when nothing can be tested."""
    total, df, var, n = 0.0, 0, 0.0, 0
    for obs, exp in parts:
        s, d, v = pearson_gof(obs, exp)
        if d == 0:
            continue
        total, df, var, n = total + s, df + d, var + v, n + int(np.sum(obs))
    if df == 0:
        return None
    return chi2_check(name, subject, total, df, n, detail, two_sided=True, var=var)


def two_sided_bounds(level: float) -> tuple[float, float]:
    z = float(stats.norm.isf(level / 2))
    return -z, z


def normal_two_sided(name: str, subject: str, observed: float, mean: float, var: float,
                     unit: str, detail: str) -> Check | None:
    """z = (observed - mean) / sd, both tails; MDE: the relative change of the observed sum
    (in `unit`) detected with 50% power."""
    if not var > 0 or not mean > 0:
        return None
    sd = math.sqrt(var)
    z = (observed - mean) / sd
    return Check.statistical(
        name, subject, z, two_sided_bounds, float(2 * stats.norm.sf(abs(z))),
        lambda a: two_sided_bounds(a)[1] * sd / mean, unit, n=int(round(mean)),
        detail=f"expected {mean:.1f} (sd {sd:.1f}), observed {observed:.0f}; {detail}")


def binomial_two_sided(name: str, subject: str, k: int, n: int, p: float, unit: str) -> Check:
    """`k` of `n` against Binomial(n, p), both tails: the smaller exact tail, P(X <= k) or
    P(X >= k), as a signed normal score (0 when neither tail is below one half), p-value twice
    that tail (conservative for a discrete count, also when `n p` is small). MDE: the absolute
    change of the share at 50% power."""
    upper = min(0.0, float(stats.binom.logsf(k - 1, n, p)))
    lower = min(0.0, float(stats.binom.logcdf(k, n, p)))
    if upper <= lower:
        z = max(0.0, float(-special.ndtri_exp(upper)))
    else:
        z = min(0.0, float(special.ndtri_exp(lower)))
    sd = math.sqrt(p * (1 - p) / n)
    p_value = float(min(1.0, 2 * math.exp(min(upper, lower))))
    return Check.statistical(name, subject, z, two_sided_bounds, p_value,
                             lambda a: two_sided_bounds(a)[1] * sd, f"absolute {unit}", n=n,
                             detail=f"expected {n * p:.1f} of {n}, observed {k}")


def max_lag_check(name: str, subject: str, num: np.ndarray, var: np.ndarray, lags: np.ndarray,
                  min_var: float, skew: float, detail: str) -> Check | None:
    """The largest |z| over lags, Bonferroni over the lags tested (those whose null variance
    reaches `min_var`).

    `num` is a sum of `var` independent products of two standardised indicators, each product
    of skewness `skew` (`(1 - 2p)^2 / (p q)` for Bernoulli(p) selections), so the sum has
    skewness `skew / sqrt(var)`; its normal score is corrected for it to first order
    (Cornish-Fisher), z* = z - g (z^2 - 1) / 6, which keeps both extreme tails near their
    nominal level. MDE: the correlation between the two indicators at one lag detected with
    50% power, at the median lag's size (the correlation is num / var)."""
    use = var >= min_var
    if not use.any():
        return None
    n, z = var[use], num[use] / np.sqrt(var[use])
    g = skew / np.sqrt(n)
    z = z - g * (z * z - 1) / 6
    worst = int(np.argmax(np.abs(z)))
    m = int(use.sum())
    crit = lambda a: float(stats.norm.isf(a / (2 * m)))  # noqa: E731
    med = float(np.median(n))
    return Check.statistical(
        name, subject, float(abs(z[worst])), lambda a: (-math.inf, crit(a)),
        float(min(1.0, 2 * m * stats.norm.sf(abs(z[worst])))),
        lambda a: crit(a) / math.sqrt(med), "correlation at one shift", n=int(med),
        detail=f"{m} shifts tested; most extreme at shift {int(lags[use][worst])}: z = "
               f"{float(z[worst]):.2f} (correlation {float(num[use][worst] / n[worst]):.4f}"
               f", expected 0); {detail}")


def collision_moments(cfg: MaskingConfig, pairs_apart: float, pairs_same: float):
    """(mean, variance) of the number of equal pairs among visible random ids under the
    contract, given the pairs whose originals differ (`pairs_apart`) and are equal
    (`pairs_same`): a visible random id of original o is uniform over the a - 1 drawable ids
    other than `[MASK]` and o, so two of them agree with probability (a - 2)/(a - 1)^2 for
    different originals and 1/(a - 1) for equal ones; pairs are pairwise independent. None
    when fewer than three ids can be drawn."""
    a = cfg.n_random - (1 if cfg.is_random_id(cfg.mask_token) else 0)
    if a < 3:
        return None
    c1, c2 = (a - 2) / (a - 1) ** 2, 1.0 / (a - 1)
    return (pairs_apart * c1 + pairs_same * c2,
            pairs_apart * c1 * (1 - c1) + pairs_same * c2 * (1 - c2))
