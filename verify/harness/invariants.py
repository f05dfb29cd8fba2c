"""The exact invariants of one masker: checks that must hold at every position of every call.

They are counted on the device (`verify.harness.counts.INVARIANTS`: the number of positions
that break each) or seen on the host while the run goes (`HOST_INVARIANTS`: outputs of the
wrong type, shape, dtype or device; a second call with the same seed giving other outputs; a
masker that raises). An invariant passes when nothing breaks it; none spends any of the
false-alarm budget.
"""

from __future__ import annotations

from .counts import INVARIANTS, HostCounts
from .primitives import Check

__all__ = ["HOST_INVARIANTS", "invariant_checks"]

HOST_INVARIANTS = ("outputs keep shape, dtype and device", "same seed gives same output",
                   "masker runs without error")


def invariant_checks(h: HostCounts, subject: str) -> list[Check]:
    """The invariants counted on the device, then the ones seen on the host."""
    out = [Check.exact(name, subject, h.invariants[name],
                       f"{h.invariants[name]} {what}" if h.invariants[name] else "")
           for name, what in INVARIANTS.items()]
    for name in HOST_INVARIANTS:
        problems = h.host_problems.get(name, [])
        out.append(Check.exact(name, subject, len(problems), "; ".join(problems[:3])))
    return out
