"""What `--plan` says about the checks of `verify.token.power`: each one's null, stratum,
false-alarm share and minimal detectable effect (50% power) at a given run size, from the
expected counts of a correct masker on the harness's inputs (no masker is run).
"""

from __future__ import annotations

import math

from scipy import stats

from mlm_ref.config import MaskingConfig

from ...engine.primitives import lambda50
from .call_shapes import MAX_CALLS_PER_SHAPE, SHAPES
from .power_checks import NAMES
from .seeding import SEEDINGS, USAGE_BATCH, USAGE_SEQ, extra_tokens

__all__ = ["power_rows", "format_power_rows", "DESCRIPTIONS"]

# (null hypothesis, stratum) of each check, as `--plan` prints them
DESCRIPTIONS = {
    "neighbours": ("category independent of selection", "left/right neighbour selected (4)"),
    "order": ("category independent of selection", "only/first/middle/last selected (4)"),
    "count": ("category independent of selection", "mid-p class of the sequence's count (8)"),
    "collisions": ("ids independent uniform draws", "pairs of random ids of one call"),
    "seeded": ("same laws however seeded", "per-call seeds / first / later calls (3)"),
    "same": ("calls of one seeding independent", "every shift of two consecutive calls"),
    "near": ("seeds s, s+1 independent", "every shift of the same call of both"),
    "shape": ("same laws on every shape", "8 call shapes and the main shape (9)"),
    "ends": ("same selection rate everywhere", "distance from either end of a call (22)"),
    "lags": ("positions of a call independent", "every shift within a call"),
}


def _w(df: int, level: float, n: float) -> float:
    """Cohen's w at 50% power of a two-sided chi-square table of `df` over `n` counts."""
    return math.sqrt(lambda50(df, float(stats.chi2.isf(level / 2, df))) / n) if n > 0 else math.inf


def power_rows(config: MaskingConfig, *, tokens: int, level: float, share: float,
               chunk: int = 1 << 17) -> list[dict]:
    """One row per check: `name`, `null`, `stratum`, `level` (its false-alarm share at the
    first Holm step) and `mde` with its `unit`, at `tokens` per masker."""
    p, r = config.masking_prob, config.randomize_prob
    numel = max(2, min(chunk, tokens) // 128) * 128
    calls = max(2, -(-tokens // numel))
    selected = calls / 2 * numel * share * p           # tabulated: every other call
    a = config.n_random - (1 if config.is_random_id(config.mask_token) else 0)
    visible = numel * share * p * r * (1 - 2 / max(a, 3))
    collisions = calls * visible ** 2 / 2 / max(a - 1, 1)
    n_u = USAGE_SEQ * USAGE_BATCH
    u_calls = max(2, 2 * round(extra_tokens(tokens) / (SEEDINGS * n_u * 2)))
    per_shape = extra_tokens(tokens) / len(SHAPES)
    shape_calls = [min(max(round(per_shape / (s * b)), 1), MAX_CALLS_PER_SHAPE) for s, b in SHAPES]
    shape_tokens = sum(c * s * b for c, (s, b) in zip(shape_calls, SHAPES))

    def lag(var: float, shifts: int) -> float:
        return float(stats.norm.isf(level / (2 * shifts))) / math.sqrt(var)
    w, corr = "Cohen's w", "correlation at one shift"
    mdes = {"neighbours": (_w(6, level, selected), w), "order": (_w(6, level, selected), w),
            "count": (_w(14, level, selected), w),
            "collisions": (float(stats.norm.isf(level / 2)) / math.sqrt(collisions),
                           "relative excess of equal pairs"),
            "seeded": (_w(6, level, (calls * numel + SEEDINGS * u_calls * n_u) * share), w),
            "same": (lag(SEEDINGS * (u_calls - 1) * n_u * share ** 2, 2 * n_u), corr),
            "near": (lag((SEEDINGS - 1) * u_calls * n_u * share ** 2, 2 * n_u), corr),
            "shape": (_w(24, level, (calls * numel + shape_tokens) * share), w),
            "ends": (_w(21, level, shape_tokens * share), w),
            "lags": (lag(sum(c * s * b for c, (s, b) in zip(shape_calls, SHAPES)) * share ** 2,
                         max(s * b for s, b in SHAPES)), corr)}
    return [{"name": NAMES[k], "null": DESCRIPTIONS[k][0], "stratum": DESCRIPTIONS[k][1],
             "level": level, "mde": mde, "unit": unit} for k, (mde, unit) in mdes.items()]


def format_power_rows(rows: list[dict], tokens: int) -> str:
    """The table `--plan` prints below the effects."""
    lines = [f"checks of joint laws, seeding and call shapes at {tokens:.3g} tokens per masker "
             f"(false-alarm share: the first Holm level, half per tail; MDE: 50% power)",
             f"{'check':82s} {'null':34s} {'stratum':42s} {'share':>9s} {'MDE':>10s}  unit"]
    for row in rows:
        lines.append(f"{row['name']:82s} {row['null']:34s} {row['stratum']:42s} "
                     f"{row['level']:9.3g} {row['mde']:10.4g}  {row['unit']}")
    return "\n".join(lines)
