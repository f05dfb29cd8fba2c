"""Exact binomial checks of rare per-piece events of the WWM gate (`wwm_joint` counts them).

A random piece of a word lands on its original, or on `[MASK]`, with probability 1/V'; a piece
random in a call and in its replay shows the same id with probability 1/K. These counts are
small (about 19 expected hits at 2e6 tokens, V = 1000), so they are tested exactly: the
two-sided p-value doubles the smaller exact binomial tail, and the MDE is solved on the exact
binomial rather than from a normal approximation.
"""

from __future__ import annotations

import math

from scipy import optimize, stats

from ..engine.primitives import Check, binomial_score

__all__ = ["cell_check", "two_sided_binomial_score"]


def cell_check(name: str, subject: str, n: int, k: int, impossible: int, q: float,
               what: str, direction: str = "decrease") -> Check | None:
    """`k` of `n` tested pieces hit, exact Binomial(n, q), two-sided (normal score of the exact
    tail); a hit where none is possible (`impossible`, or any hit at q = 0) fails outright.
    MDE: the relative `direction` ("decrease", 1 meaning the cell never happens, or
    "increase") of the rate detected with 50% power."""
    n, k, impossible = int(n), int(k), int(impossible)
    if n == 0 or (q == 0 and k == 0 and impossible == 0):
        return None
    if impossible or q == 0 or q >= 1:
        z = math.inf if (impossible or k) else 0.0
    else:
        z = two_sided_binomial_score(k, n, q)

    def two(a):
        crit = float(stats.norm.isf(a / 2))
        return -crit, crit
    return Check.statistical(
        name, subject, z, two, float(min(1.0, 2 * stats.norm.sf(abs(z)))),
        lambda a: _cell_mde(n, q, a)[direction == "increase"], f"relative {direction} of the "
        f"rate", n=n,
        detail=f"{what}: expected {n * q:.1f} of {n} tested pieces, observed {k}"
               + (f", {impossible} where the original cannot be drawn" if impossible else ""))


def two_sided_binomial_score(k: int, n: int, q: float) -> float:
    """Signed normal score z with 2 P(Z > |z|) the exact two-sided binomial p-value
    min(1, 2 min(P(X <= k), P(X >= k))); 0 when that is 1 (`binomial_score`)."""
    return binomial_score(k, n, q)


def _cell_mde(n: int, q: float, a: float) -> tuple[float, float]:
    """(relative decrease, relative increase) of the rate that the two-sided exact test at
    level `a` detects with 50% power; nan when no count can reject."""
    if not 0 < q < 1 or n == 0:
        return math.nan, math.nan
    lo = int(stats.binom.ppf(a / 2, n, q))
    if stats.binom.cdf(lo, n, q) > a / 2:
        lo -= 1
    hi = int(stats.binom.isf(a / 2, n, q)) + 1      # smallest k with P(X >= k) <= a/2
    down = math.nan
    if lo >= 0:
        down = 1 - optimize.brentq(lambda r: stats.binom.cdf(lo, n, r) - 0.5, 1e-300, q) / q
    up = math.nan
    if hi <= n:
        up = optimize.brentq(lambda r: stats.binom.sf(hi - 1, n, r) - 0.5, q, 1.0) / q - 1
    return down, up
