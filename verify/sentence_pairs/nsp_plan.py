"""`python -m verify.nsp --plan`: what each NSP check can see at `--pairs`, and the pairs an
effect needs, without running the user's generator.

The MDEs are measured, not guessed: the plan runs our generator (`mlm_ref.nsp.make_pairs`) on
the gate's own synthetic corpus at `--pairs` and reads each statistical check's MDE at the
first Holm level (`verify.engine.planner`). `--effect label=P` (a generator that labels a pair
random next with probability P instead of 1/2) gives the pairs the label-rate check needs for
50% and 95% power at that level (a two-sided binomial test, normal approximation:
`n = ((z_level 0.5 + z_power sqrt(P (1 - P))) / |P - 0.5|)^2`).
"""

from __future__ import annotations

import math

from scipy import stats

from ..engine.planner import format_mde_rows, mde_rows
from .nsp_checks import LABEL_RATE

__all__ = ["parse_label_effect", "pairs_needed", "nsp_plan", "DEFAULT_EFFECTS"]

DEFAULT_EFFECTS = (0.51, 0.52, 0.55)


def parse_label_effect(text: str) -> float:
    """`label=P` (0 < P < 1, P != 0.5) as P.

    Raises:
        ValueError: anything else, saying what is expected.
    """
    kind, _, value = text.partition("=")
    try:
        p = float(value)
    except ValueError:
        p = math.nan
    if kind != "label" or not 0 < p < 1 or p == 0.5:
        raise ValueError(f"an NSP effect is label=P (the share labelled random next, 0 < P < 1, "
                         f"not 0.5), got {text!r}")
    return p


def pairs_needed(p: float, level: float, power: float) -> float:
    """Pairs for the two-sided label-rate test at `level` to reject with `power` when the
    generator's random-next share is `p`."""
    z, zp = float(stats.norm.isf(level / 2)), float(stats.norm.ppf(power))
    return math.ceil(((z * 0.5 + zp * math.sqrt(p * (1 - p))) / abs(p - 0.5)) ** 2)


def nsp_plan(checks: list, *, pairs: int, seed: int, alpha: float, max_seq_len: int,
             effects=DEFAULT_EFFECTS) -> str:
    """The plan as text: each statistical check's MDE at `pairs`, then the pairs each label
    effect needs.

    Args:
        checks: the checks of a run of our generator at `pairs` (`verify.nsp.check_nsp("ours",
            ...)`: the command line makes it, so that this gate module needs no command).
        pairs, seed, alpha, max_seq_len: that run's.
        effects: random-next shares P to plan for.
    """
    rows = mde_rows(checks, alpha)
    level = rows[0]["level"] if rows else alpha
    out = [format_mde_rows(rows, f"NSP gate plan: {pairs:,} pairs (measured on our generator, "
                                 f"seed {seed}, max_seq_len {max_seq_len}), family-wise alpha "
                                 f"{alpha:g} over {len(rows)} statistical checks (Holm)"), "",
           f"pairs to detect a random-next share P != 0.5 with the check {LABEL_RATE!r} at the "
           f"first Holm level {level:.3g}",
           f"{'effect':14s} {'50% power':>12s} {'95% power':>12s}"]
    for p in effects:
        out.append(f"{f'label={p:g}':14s} {pairs_needed(p, level, 0.5):>12,d} "
                   f"{pairs_needed(p, level, 0.95):>12,d}")
    return "\n".join(out)
