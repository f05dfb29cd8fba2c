"""`--seed` for a pipeline: the seed is passed as `pipeline(*, epoch, rank, world_size, seed)`
when the pipeline takes a `seed` keyword (a parameter of that name, or `**kwargs`); a pipeline
without one keeps working when no seed is asked for, and is refused (before it runs) when one
is, rather than running unseeded under a seed it never saw."""

from __future__ import annotations

import inspect

__all__ = ["takes_seed", "check_seed_argument"]


def takes_seed(pipeline) -> bool:
    """Whether `pipeline(..., seed=...)` is a valid call (True when it cannot be told)."""
    try:
        params = inspect.signature(pipeline).parameters.values()
    except (TypeError, ValueError):          # a builtin or C callable: let the call decide
        return True
    return any(p.kind is p.VAR_KEYWORD or (p.name == "seed" and p.kind in (
        p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)) for p in params)


def check_seed_argument(pipeline, seed) -> None:
    """Refuse a bad seed, or a seed for a pipeline that cannot take one.

    Raises:
        TypeError: a seed that is not an int.
        ValueError: a negative seed, or a pipeline without a `seed` keyword.
    """
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if callable(pipeline) and not takes_seed(pipeline):
        raise ValueError("the pipeline takes no seed keyword: define it as "
                         "batches(*, epoch, rank, world_size, seed=...) to use a seed")
