"""The token-level checks of joint laws, of the masker as users call it and of call shapes.

Built from `HostCounts.joint` (`joint`), `.usage` (`seeding`) and `.shapes`
(`call_shapes`); each is a check of the run's one Holm family (or "not applicable" when its
counts are missing). Every table test is two-sided: strata more alike than chance allows
(balanced by construction) fail as well as strata that differ.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from ...engine.primitives import Check, rows_homogeneity
from .two_sided import collision_moments, max_lag_check, normal_two_sided

__all__ = ["token_power_checks", "runs_as_used", "RUNS_WITHOUT_ERROR", "NAMES",
           "MIN_LAG_VARIANCE"]

RUNS_WITHOUT_ERROR = "masker runs as users call it (seeded once, nearby seeds, every shape)"
# a shift is tested when its summed null variance (eligible pairs) reaches this: the products
# of standardised Bernoulli indicators are skewed, and even with the skewness corrected the
# normal tail needs many of them
MIN_LAG_VARIANCE = 4_000.0
NAMES = {
    "neighbours": "category independent of the neighbours' selection",
    "order": "category independent of its order among the sequence's selected",
    "count": "category independent of the number selected in its sequence",
    "collisions": "random ids collide within a call as independent draws do",
    "seeded": "selection and category the same when seeded once (first and later calls)",
    "same": "calls on one seeding give independent masks (all shifts)",
    "near": "nearby seeds (s, s+1) give independent masks (all shifts)",
    "shape": "selection and category the same on every call shape",
    "ends": "selection the same at the ends of a call (flat order)",
    "lags": "selection independent across the positions of a call, every shape (all shifts)",
}


def _four(codes: np.ndarray) -> np.ndarray:
    """`[k, 8]` code counts as `[k, 4]`: unselected, [MASK], original, other (drawable and other
    originals together: their outcome laws differ by O(1/V))."""
    c = np.asarray(codes, np.int64)
    return np.stack([c[:, 1], c[:, 2] + c[:, 5], c[:, 3] + c[:, 6], c[:, 4] + c[:, 7]], axis=1)


def _selection(codes: np.ndarray) -> np.ndarray:
    """`[k, 8]` code counts as `[k, 2]`: eligible positions unselected, selected."""
    c = np.asarray(codes, np.int64)
    return np.stack([c[:, 1], c[:, 2:].sum(1)], axis=1)


def _table(key: str, subject: str, table, what: str):
    return rows_homogeneity(NAMES[key], subject, table, what, two_sided=True)


def token_power_checks(h, cfg: MaskingConfig, subject: str) -> list:
    """(name, check or None) of every check of this module, in report order."""
    j, u, s = h.joint, h.usage, h.shapes
    p = cfg.masking_prob
    skew = (1 - 2 * p) ** 2 / (p * (1 - p)) if 0 < p < 1 else 0.0
    named = [(NAMES["neighbours"], j and _table("neighbours", subject, j["neighbours"],
                                                  "neighbour classes")),
              (NAMES["order"], j and _table("order", subject, j["order"], "order classes")),
              (NAMES["count"], j and _table("count", subject, j["count"],
                                            "classes of the sequence's count")),
              (NAMES["collisions"], _collisions(j, cfg, subject))]
    main = _four(h.by_call.sum(0, keepdims=True)) if h.by_call.size else np.zeros((1, 4))
    named += [(NAMES["seeded"], u and _table("seeded", subject,
                                             np.concatenate([main, _four(u.codes)]),
                                             "rows (per-call seeds, first call after seeding, "
                                             "later calls)")),
              (NAMES["same"], u and max_lag_check(NAMES["same"], subject, u.same_num,
                                                  u.same_var, u.lags, MIN_LAG_VARIANCE, skew,
                                                  "consecutive calls of one seeding")),
              (NAMES["near"], u and max_lag_check(NAMES["near"], subject, u.near_num,
                                                  u.near_var, u.lags, MIN_LAG_VARIANCE, skew,
                                                  "the same call of seeds s and s+1"))]
    named += [(NAMES["shape"], s and _table("shape", subject,
                                            np.concatenate([main, _four(s.by_shape)]),
                                            "shapes (the main run's first)")),
              (NAMES["ends"], s and _table("ends", subject, _selection(s.by_end),
                                           "distance classes from either end")),
              (NAMES["lags"], s and max_lag_check(NAMES["lags"], subject, s.lag_num, s.lag_var,
                                                  np.arange(1, s.lag_num.size + 1),
                                                  MIN_LAG_VARIANCE, skew,
                                                  "pairs within one call"))]
    return named


def runs_as_used(h, subject: str) -> Check:
    """The exact check that the seeded-once and call-shape runs went through (not applicable
    when neither was made)."""
    u, s = h.usage, h.shapes
    if u is None and s is None:
        return Check.not_applicable(RUNS_WITHOUT_ERROR, subject, kind="exact")
    problems = (u.problems if u else []) + (s.problems if s else [])
    return Check.exact(RUNS_WITHOUT_ERROR, subject, len(problems), "; ".join(problems[:3]))


def _collisions(j, cfg, subject):
    if not j or j["collisions"] is None:
        return None
    equal, apart, same = j["collisions"]
    moments = collision_moments(cfg, apart, same)
    if moments is None:
        return None
    return normal_two_sided(NAMES["collisions"], subject, equal, *moments,
                            "relative excess of equal pairs",
                            f"equal pairs among {apart + same} pairs of visible random ids "
                            f"drawn in one call")
