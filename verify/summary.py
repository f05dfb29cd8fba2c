"""Effective probabilities a masker showed in a run, with confidence intervals.

The checks answer "does it conform?"; this answers "what does it actually do?": the observed
selection rate, the observed split of selected positions into `[MASK]` / original / other,
and from those an estimate of the three categories the masker drew (mask / unchanged /
random), each beside the value the contract expects.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from mlm_ref.config import MaskingConfig

__all__ = ["Estimate", "effective", "wilson"]

CONFIDENCE = 0.95


@dataclasses.dataclass
class Estimate:
    """An observed proportion `k / n` with its Wilson interval and the expected value."""

    name: str
    k: int
    n: int
    expected: float
    low: float
    high: float

    @property
    def observed(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def covers_expected(self) -> bool:
        return self.low <= self.expected <= self.high

    def as_dict(self) -> dict:
        return dict(name=self.name, observed=self.observed, expected=self.expected,
                    ci_low=self.low, ci_high=self.high, k=self.k, n=self.n)


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (sound near 0 and 1, unlike Wald)."""
    if n == 0:
        return (math.nan, math.nan)
    z = stats.norm.isf((1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _estimate(name: str, k: int, n: int, expected: float) -> Estimate:
    return Estimate(name, int(k), int(n), float(expected), *wilson(int(k), int(n)))


def expected_outcomes(config: MaskingConfig, outcomes: np.ndarray) -> np.ndarray:
    """Expected (mask, original, other) shares for this run's mix of originals.

    `outcomes` is `[2, 3]`: row 0 counts selected positions whose original cannot be drawn
    as a random id, row 1 those whose original can (verify.counts); the two rows have
    different observed-outcome probabilities (`MaskingConfig.outcome_probs`).
    """
    drawable = next((int(t) for t in config.random_ids() if t != config.mask_token), None)
    not_drawable = config.n_tokens + max(config.mask_token, config.padding_token) + 1
    rows = [config.outcome_probs(not_drawable).as_tuple(),
            config.outcome_probs(drawable).as_tuple() if drawable is not None else (0, 0, 0)]
    weights = outcomes.sum(axis=1)
    return (weights[:, None] * np.array(rows)).sum(axis=0) / max(1, weights.sum())


def effective(config: MaskingConfig, counts: dict) -> dict[str, list[Estimate] | dict]:
    """What the masker did in a run, from its host counts (`verify.counts.Counts.host`).

    Returns:
        `selection`: the selection rate among eligible tokens; `outcomes`: the observed
        shares of `[MASK]`, original and other at selected positions; `categories`: the
        estimated (mask, unchanged, random) split that would produce those outcomes, since
        random draws that hit the original or `[MASK]` are invisible as such.
    """
    s, out = counts["scalars"], np.asarray(counts["outcomes"])
    n_sel = int(out.sum())
    expected = expected_outcomes(config, out)
    observed = out.sum(axis=0) / max(1, n_sel)
    outcome_names = ("[MASK]", "original", "other")
    result = {
        "selection": [_estimate("selected among eligible", s["selected"], s["eligible"],
                                config.masking_prob)],
        "outcomes": [_estimate(f"output is {name}", k, n_sel, e)
                     for name, k, e in zip(outcome_names, out.sum(axis=0), expected)],
    }
    r = config.randomize_prob
    if r > 0 and n_sel:
        # the share of random draws that show as "other", and that land on [MASK]
        visible = expected[2] / r
        hit_mask = (expected[0] - config.mask_token_prob) / r
        random = observed[2] / visible if visible > 0 else math.nan
        mask = observed[0] - random * hit_mask
        result["categories"] = {"mask": mask, "unchanged": 1 - mask - random, "random": random}
    else:
        result["categories"] = {"mask": observed[0], "unchanged": observed[1], "random": 0.0}
    result["expected_categories"] = dict(zip(("mask", "random", "unchanged"),
                                             config.category_probs()))
    return result
