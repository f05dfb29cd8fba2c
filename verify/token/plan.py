"""How many tokens a run needs to catch a given defect: the sample-size planner.

A check rejects at the level Holm gives it; a defect large enough to matter is rejected at
the first step, where the level is `alpha / m` for `m` statistical checks in the run. For an
effect (`selection=0.1505`: the masker selects at 0.1505 where the contract says 0.15;
`split=0.81,0.09,0.10`: it draws [MASK], random, unchanged at those rates) the planner finds
the tokens per masker at which the designated check has 50% and 95% power at that level:

* selection rate, a two-sided test of a binomial share: `n = ((z_level + z_power) sd / d)^2`
  eligible positions, with the standard deviations under null and alternative;
* category split, a chi-square goodness of fit with 2 degrees of freedom: the noncentrality
  `lambda` with the wanted power, and `n = lambda / w^2` selected positions, where `w` is
  Cohen's w between the expected and the alternative outcome shares.

Positions become tokens through the share of eligible positions in the harness's inputs (and
`masking_prob` for selected ones), measured on a few generated batches.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize, stats

from mlm_ref.config import MaskingConfig

__all__ = ["Effect", "parse_effect", "plan", "DEFAULT_EFFECTS", "format_plan"]


@dataclasses.dataclass(frozen=True)
class Effect:
    """A defect to plan for: `kind` is `selection` (values: the masker's rate) or `split`
    (values: the masker's [MASK], random and unchanged probabilities)."""

    kind: str
    values: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.kind}=" + ",".join(f"{v:g}" for v in self.values)


DEFAULT_EFFECTS = (Effect("selection", (0.1505,)), Effect("selection", (0.16,)),
                   Effect("split", (0.81, 0.09, 0.10)), Effect("split", (0.79, 0.11, 0.10)))


def parse_effect(text: str) -> Effect:
    """`selection=0.1505` or `split=0.81,0.09,0.10` as an `Effect`.

    Raises:
        ValueError: anything else, with what is expected.
    """
    kind, _, rest = text.partition("=")
    try:
        values = tuple(float(v) for v in rest.split(","))
    except ValueError:
        values = ()
    ok = (kind == "selection" and len(values) == 1 and 0 < values[0] < 1) or (
        kind == "split" and len(values) == 3 and all(0 <= v <= 1 for v in values)
        and abs(sum(values) - 1) < 1e-9)
    if not ok:
        raise ValueError(f"an effect is selection=P (0 < P < 1) or split=MASK,RANDOM,UNCHANGED "
                         f"(summing to 1), got {text!r}")
    return Effect(kind, values)


def _lambda_for_power(df: int, critical: float, power: float) -> float:
    f = lambda lam: stats.ncx2.sf(critical, df, lam) - power  # noqa: E731
    hi = max(1.0, critical)
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 1e-9, hi, xtol=1e-6))


def _outcome_shares(cfg: MaskingConfig, mask: float, random: float, unchanged: float):
    """Outcome shares (mask, original, other) of a drawable original under given categories."""
    hit = 1.0 / cfg.n_random
    hit_mask = hit if cfg.is_random_id(cfg.mask_token) else 0.0
    m = mask + random * hit_mask
    o = unchanged + random * hit
    return np.array([m, o, 1 - m - o])


def eligible_share(cfg: MaskingConfig, seed: int = 0) -> float:
    """The share of eligible positions in the harness's inputs, measured on a few batches."""
    import torch

    from .inputs import SyntheticBatches
    batches = SyntheticBatches(cfg, 128, 256, "cpu", seed)
    ineligible = torch.tensor(cfg.ineligible_tokens)
    shares = [float((~torch.isin(batches(2 * t), ineligible)).double().mean()) for t in range(8)]
    return float(np.mean(shares))


def plan(config: MaskingConfig, effects=DEFAULT_EFFECTS, *, alpha: float, n_checks: int,
         powers=(0.5, 0.95), share: float | None = None) -> list[dict]:
    """Tokens per masker needed to detect each effect with each power.

    Args:
        config: the configuration a run checks against.
        effects: `Effect`s (or strings for `parse_effect`).
        alpha: the run's family-wise false-alarm probability.
        n_checks: statistical checks in the run (the first Holm level is `alpha / n_checks`).
        powers: the powers to plan for.
        share: the eligible share of the inputs (measured when None).

    Returns:
        One dict per effect: `effect`, `check`, `level`, and `tokens` per power.
    """
    share = eligible_share(config) if share is None else share
    level = alpha / n_checks
    p = config.masking_prob
    rows = []
    for e in effects:
        e = parse_effect(e) if isinstance(e, str) else e
        tokens = {}
        if e.kind == "selection":
            d = abs(e.values[0] - p)
            z = float(stats.norm.isf(level / 2))
            for power in powers:
                zp = float(stats.norm.ppf(power))
                n = ((z * math.sqrt(p * (1 - p)) + zp * math.sqrt(e.values[0] * (1 - e.values[0])))
                     / d) ** 2 if d > 0 else math.inf
                tokens[power] = n / share
            check = "selection rate"
        else:
            q0 = _outcome_shares(config, *config.category_probs())
            q1 = _outcome_shares(config, *e.values)
            w = math.sqrt(float(((q1 - q0) ** 2 / q0).sum()))
            crit = float(stats.chi2.isf(level / 2, 2))  # the split is two-sided
            for power in powers:
                n = _lambda_for_power(2, crit, power) / w ** 2 if w > 0 else math.inf
                tokens[power] = n / (share * p)
            check = "category split (mask, original, other)"
        rows.append({"effect": str(e), "check": check, "level": level,
                     "tokens": {pw: float(math.ceil(t)) if math.isfinite(t) else math.inf
                                for pw, t in tokens.items()}})
    return rows


def format_plan(rows: list[dict], alpha: float, n_checks: int) -> str:
    """The planner's table for the terminal."""
    powers = list(rows[0]["tokens"]) if rows else []
    head = f"{'effect':28s} {'designated check':40s} " + " ".join(
        f"{f'{int(100 * pw)}% power':>14s}" for pw in powers)
    lines = [f"tokens per masker to detect each effect, at the first Holm level "
             f"alpha/m = {alpha:g}/{n_checks} = {alpha / n_checks:.3g}", head]
    for r in rows:
        lines.append(f"{r['effect']:28s} {r['check']:40s} " + " ".join(
            f"{r['tokens'][pw]:14.3g}" for pw in powers))
    return "\n".join(lines)
