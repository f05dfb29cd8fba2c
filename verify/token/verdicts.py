"""The outcome of a run: a table for the terminal, a dict for `--json`, a failure message."""

from __future__ import annotations

import dataclasses
import json

from mlm_ref.config import MaskingConfig

from .host_counts import HostCounts
from ..engine.primitives import Check
from ..engine.reporting import (SCHEMA, failure_message, format_critical, format_number,
                                skeleton)
from .summary import effective

__all__ = ["Report", "SCHEMA", "format_number", "format_critical"]

@dataclasses.dataclass
class Report:
    """Every check of a run and its verdict.

    `passed` is True when every exact invariant holds and no statistical check is rejected
    by Holm at the family-wise level `alpha`. `str(report)` is the terminal table.
    """

    config: MaskingConfig
    alpha: float
    seed: int
    tokens: int
    device: str
    checks: list[Check]
    skipped: dict[str, str]
    # each masker's host counts, for summaries and plots
    counts: dict[str, HostCounts] = dataclasses.field(default_factory=dict, repr=False)
    # which gate wrote it: `token`, `wwm`, `pipeline` (the JSON's `gate` field)
    gate: str = "token"

    @property
    def exact(self) -> list[Check]:
        """The exact invariants (every one applies)."""
        return [c for c in self.checks if c.kind == "exact" and c.applicable]

    @property
    def stat(self) -> list[Check]:
        """The statistical checks that ran (decided by Holm)."""
        return [c for c in self.checks if c.kind == "statistical" and c.applicable]

    @property
    def not_applicable(self) -> list[Check]:
        return [c for c in self.checks if not c.applicable]

    @property
    def runs(self) -> dict[str, dict]:
        """Per masker: seconds, shape `[seq_len, batch]` and calls of its run."""
        return {k: {"seconds": h.seconds, "shape": list(h.shape), "calls": h.calls}
                for k, h in self.counts.items()}

    @property
    def inconclusive(self) -> list[str]:
        """The maskers for which the run tested nothing that matters: no eligible position
        was seen, or none was selected where the configuration says some should be. Such a
        run is not a pass (the CLI exits 3)."""
        out = []
        for name in self.counts:
            mine = [c for c in self.checks if c.subject == name and c.kind == "statistical"]
            core = {c.name: c for c in mine}
            if not any(c.applicable for c in mine) or not core.get(
                    "selection rate", Check.not_applicable("", "")).applicable:
                out.append(name)
            elif self.config.masking_prob > 0 and not core.get(
                    "category split (mask, original, other)",
                    Check.not_applicable("", "")).applicable:
                out.append(name)
        return out

    @property
    def passed(self) -> bool:
        """No check failed and every masker was actually tested."""
        return not self.failures and not self.inconclusive

    @property
    def verdict(self) -> str:
        """`PASS`, `FAIL` or `INCONCLUSIVE` (nothing failed, but a masker was not tested)."""
        return "FAIL" if self.failures else "INCONCLUSIVE" if self.inconclusive else "PASS"

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    def __bool__(self) -> bool:
        return self.passed

    def rows(self) -> list[tuple[str, ...]]:
        rows = [(c.subject, c.name, str(c.violations), "0", "exact", _verdict(c))
                for c in self.exact]
        rows += [(c.subject, c.name, format_number(c.statistic), format_critical(c),
                  f"{format_number(c.mde_value)} ({c.mde_unit})", _verdict(c))
                 for c in self.stat]
        rows += [(c.subject, c.name, "-", "-", "-", _verdict(c)) for c in self.not_applicable]
        return rows

    def __str__(self) -> str:
        head = ("masker", "check", "statistic", "critical", "MDE (50% power)", "verdict")
        rows = self.rows()
        width = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        line = lambda r: "  ".join(s.ljust(w) for s, w in zip(r, width)).rstrip()  # noqa: E731
        runs = ", ".join(f"{k}: {v['calls']} calls of {v['shape']} in {v['seconds']:.1f} s"
                         for k, v in self.runs.items())
        out = [f"{self.config}", f"tokens per masker >= {self.tokens}, seed {self.seed}, "
               f"device {self.device}; {runs}",
               f"family-wise alpha {self.alpha:g} split by Holm over {len(self.stat)} "
               f"statistical checks; {len(self.exact)} exact invariants",
               line(head), line(tuple("-" * w for w in width)), *map(line, rows)]
        out += [f"skipped {k}: {v}" for k, v in self.skipped.items()]
        if self.failures:
            out += [f"FAIL: {len(self.failures)} check(s)", self.failure_message()]
        elif self.inconclusive:
            out.append(f"INCONCLUSIVE: nothing was tested for {', '.join(self.inconclusive)} "
                       f"(no eligible or no selected positions in the run; more tokens or "
                       f"another configuration)")
        else:
            out.append("PASS")
        return "\n".join(out)

    def failure_message(self) -> str:
        """What failed, expected vs observed, in the style of JAX's `_CheckChiSquared`."""
        return failure_message(self.checks)

    def to_dict(self) -> dict:
        """The JSON report: the shared skeleton (`verify.engine.reporting.skeleton`) and this
        gate's sections (docs/report-schema.md)."""
        shared = skeleton(self.gate, passed=self.passed, verdict=self.verdict, alpha=self.alpha,
                          seed=self.seed, checks=self.checks)
        checks = {k: shared.pop(k) for k in ("exact", "statistical", "not_applicable")}
        return {**shared, "tokens": self.tokens, "device": self.device,
                "config": dataclasses.asdict(self.config), "runs": self.runs,
                "skipped": self.skipped, **checks,
                "effective": {name: _effective(self.config, h) for name, h in self.counts.items()}}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)


def _effective(config: MaskingConfig, counts: HostCounts) -> dict:
    e = effective(config, counts)
    return {"selection": [x.as_dict() for x in e["selection"]],
            "outcomes": [x.as_dict() for x in e["outcomes"]],
            "categories": e["categories"], "expected_categories": e["expected_categories"]}


def _verdict(c: Check) -> str:
    return "FAIL" if c.failed else c.outcome.value
