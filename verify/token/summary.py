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

from mlm_ref.config import MaskingConfig

from .random_ids import representative_original
from .host_counts import HostCounts

__all__ = ["Estimate", "effective", "expected_split", "wilson"]

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


Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (lower, upper) of a binomial share `k / n`; NaN where `n == 0`.

    Wilson rather than the plain normal interval: it stays inside [0, 1] and keeps its
    coverage for shares near 0 or 1 (a masker that never draws `other`, say). Works on
    scalars and arrays alike."""
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (k + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * np.sqrt(k * (n - k) / n + z * z / 4)
    bad = n <= 0  # clipped: rounding can put an exact 0 or 1 a hair outside
    return (np.where(bad, np.nan, np.clip(centre - half, 0, 1)),
            np.where(bad, np.nan, np.clip(centre + half, 0, 1)))


def _estimate(name: str, k: int, n: int, expected: float) -> Estimate:
    low, high = wilson(int(k), int(n))
    return Estimate(name, int(k), int(n), float(expected), float(low), float(high))


def expected_split(counts: HostCounts, config: MaskingConfig) -> np.ndarray:
    """Expected (mask, original, other) shares at this masker's selected positions.

    `outcome_probs` depends on the original only through whether a random draw could hit it,
    so the expectation is the mix of the two rows of `outcomes` (`HostCounts.outcomes`: original not
    drawable, drawable) by how many selected originals fell in each."""
    rows = np.asarray(counts.outcomes, np.float64)  # [drawable?, outcome]
    m = rows.sum(1)
    if m.sum() == 0:
        return np.full(3, np.nan)
    mix = sum(m[d] * np.asarray(config.outcome_probs(representative_original(config, bool(d)))
                                .as_tuple()) for d in (0, 1) if m[d] > 0)
    return mix / m.sum()


def effective(config: MaskingConfig, counts: HostCounts) -> dict[str, list[Estimate] | dict]:
    """What the masker did in a run, from its host counts (`verify.token.counts.HostCounts`).

    Returns:
        `selection`: the selection rate among eligible tokens; `outcomes`: the observed
        shares of `[MASK]`, original and other at selected positions; `categories`: the
        estimated (mask, unchanged, random) split that would produce those outcomes, since
        random draws that hit the original or `[MASK]` are invisible as such.
    """
    out = np.asarray(counts.outcomes)
    n_sel = int(out.sum())
    expected = expected_split(counts, config)
    observed = out.sum(axis=0) / max(1, n_sel)
    outcome_names = ("[MASK]", "original", "other")
    result = {
        "selection": [_estimate("selected among eligible", counts.selected, counts.eligible,
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
