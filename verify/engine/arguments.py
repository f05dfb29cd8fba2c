"""One validator for what every gate is given: tokens, seed, alpha, a timeout, and a
configuration under which something can be tested. A bad value is a usage error (exit 2),
raised before any user code runs, never blamed on it."""

from __future__ import annotations

import math
import numbers

import numpy as np

from mlm_ref.config import MaskingConfig

from ..cli import MAX_SEED, MAX_TOKENS

__all__ = ["check_run_arguments", "check_alpha", "check_seed", "check_timeout",
           "check_testable", "derive_seed"]


def check_run_arguments(*, tokens, seed, alpha) -> tuple[int, int, float]:
    """`(tokens, seed, alpha)` validated: a usage error is raised here, never blamed on a masker.

    `tokens` may be a whole-number float (`2e6`), at most `MAX_TOKENS` as on the command line;
    `seed` is an integer in [0, 2**63).

    Raises:
        TypeError: a value of the wrong type (bools are refused).
        ValueError: a value out of range.
    """
    def whole(name, v, low, high, shown):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, float)):
            raise TypeError(f"{name} must be an integer, got {v!r} of type {type(v).__name__}")
        if isinstance(v, float) and not (math.isfinite(v) and v == int(v)):
            raise ValueError(f"{name} must be a whole number, got {v!r}")
        if not low <= int(v) <= high:
            raise ValueError(f"{name} must lie in {shown}, got {v!r}")
        return int(v)
    tokens = whole("tokens", tokens, 1, MAX_TOKENS, f"[1, {MAX_TOKENS:.0e}]")
    if isinstance(seed, float):
        raise TypeError(f"seed must be an integer, got {seed!r} of type float")
    seed = whole("seed", seed, 0, MAX_SEED, "[0, 2**63)")
    return tokens, seed, check_alpha(alpha)


def check_seed(seed) -> int:
    """`seed` validated: an integer in [0, 2**63) (a float or bool is a TypeError)."""
    return check_run_arguments(tokens=1, seed=seed, alpha=0.5)[1]


def check_alpha(alpha) -> float:
    """`alpha` validated: a probability in (0, 1), as a float.

    Raises:
        TypeError: not a real number (bools are refused).
        ValueError: outside (0, 1).
    """
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a probability, got {alpha!r}")
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    return float(alpha)


def check_timeout(timeout) -> float | None:
    """`timeout` validated: None (no limit) or a positive number of seconds.

    Raises:
        ValueError: anything else.
    """
    if timeout is not None and (isinstance(timeout, bool) or not (
            isinstance(timeout, (int, float)) and timeout > 0)):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return timeout


def check_testable(config: MaskingConfig) -> None:
    """Refuse a configuration under which no input id can be selected: nothing could be tested,
    and a run would 'pass' whatever the masker does.

    Raises:
        ValueError: every id of `0 .. n_tokens-1` is padding, `[MASK]` or a no-mask id.
    """
    inside = {t for t in config.ineligible_tokens if t < config.n_tokens}
    if len(inside) >= config.n_tokens:
        raise ValueError(f"nothing to test: all {config.n_tokens} ids of the vocabulary are "
                         f"ineligible (padding, [MASK] or no_mask_tokens), so no position can "
                         f"be selected; enlarge n_tokens")


def derive_seed(seed: int, stream: str, index: int) -> int:
    """An independent 32-bit seed for call `index` of `stream` (inputs, or a masker's draws)."""
    entropy = [int(seed) & 0xFFFFFFFF, int(seed) >> 32, sum(map(ord, stream)), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])
