"""The exact invariants of one masker: checks that must hold at every position of every call.

They are counted on the device (`verify.token.counts.INVARIANTS`: the number of positions
that break each) or seen on the host while the run goes (`HOST_INVARIANTS`: outputs of the
wrong type, shape, dtype or device; a second call with the same seed giving other outputs; a
masker that raises), and one that is exact in practice: no sequence's set of selected positions
repeats another's. An invariant passes when nothing breaks it; none spends any of the
false-alarm budget.
"""

from __future__ import annotations

from .host_counts import INVARIANTS, HostCounts
from ..engine.primitives import Check
from .power.power_checks import runs_as_used

__all__ = ["HOST_INVARIANTS", "REPEATS", "invariant_checks", "counted_invariants"]

HOST_INVARIANTS = ("outputs keep shape, dtype and device", "same seed gives same output",
                   "masker runs without error")
REPEATS = "no selection pattern repeats"


def counted_invariants(h, subject: str, invariants: dict[str, str]) -> list[Check]:
    """Exact checks of the invariants counted per position (`h.invariants[name]`, described by
    `invariants[name]`), then of those seen on the host (`h.host_problems`)."""
    out = [Check.exact(name, subject, h.invariants[name],
                       f"{h.invariants[name]} {what}" if h.invariants[name] else "")
           for name, what in invariants.items()]
    for name in HOST_INVARIANTS:
        problems = h.host_problems.get(name, [])
        out.append(Check.exact(name, subject, len(problems), "; ".join(problems[:3])))
    return out


def invariant_checks(h: HostCounts, subject: str) -> list[Check]:
    """The invariants counted on the device, then the ones seen on the host. "input not
    mutated" covers every call the gate makes: the main run's, its replay, and the seeded-once
    and call-shape runs' (`usage`, `shapes`)."""
    out = counted_invariants(h, subject, INVARIANTS)
    extra = [r for r in (h.usage, h.shapes) if r is not None and r.mutated]
    if extra:
        main = h.invariants["input not mutated"]
        total = main + sum(r.mutated for r in extra)
        at = [c.name for c in out].index("input not mutated")
        out[at] = Check.exact("input not mutated", subject, total, (
            f"{total} {INVARIANTS['input not mutated']}: {main} in the main run, "
            + ", ".join(f"{r.mutated} from {r.mutated_at}" for r in extra)))
    # Two independent Bernoulli(p) selections with >= PATTERN_MIN selected and unselected
    # positions coincide with probability below 1e-24 whatever p, and two 64-bit fingerprints of
    # different patterns with about 2**-64: over a run's pairs of sequences a false alarm is
    # below 1e-7.
    out.append(Check.exact(REPEATS, subject, h.repeated_patterns,
                           f"{h.repeated_patterns} sequences repeat an earlier sequence's set of "
                           f"selected positions (a pool of masks, or draws that ignore the seed)"
                           if h.repeated_patterns else ""))
    out.append(runs_as_used(h, subject))
    return out
