"""The outcome of a run: a table for the terminal, a dict for `--json`, a failure message."""

from __future__ import annotations

import dataclasses
import json
import math

from mlm_ref.config import MaskingConfig

__all__ = ["Report", "NotApplicable", "SCHEMA"]

# The JSON report's schema name and version (docs/report-schema.md); bump the number on any
# change that removes or renames a field.
SCHEMA = "mlm-verify.report/1"


@dataclasses.dataclass
class NotApplicable:
    """A check the run's counts cannot support (e.g. no random draws when randomize_prob=0)."""

    name: str
    subject: str


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"


def _crit(c) -> str:
    lo, hi = c.critical
    return f"<= {_num(hi)}" if lo == -math.inf else f"[{_num(lo)}, {_num(hi)}]"


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
    runs: dict
    exact: list
    stat: list
    not_applicable: list
    skipped: dict
    # each masker's host counts (verify.counts.Counts.host), for summaries and plots
    counts: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.exact) and all(c.passed for c in self.stat)

    @property
    def failures(self) -> list:
        return [c for c in self.exact + self.stat if not c.passed]

    def __bool__(self) -> bool:
        return self.passed

    def rows(self) -> list[tuple[str, ...]]:
        rows = [(c.subject, c.name, str(c.violations), "0", "exact", _verdict(c.passed))
                for c in self.exact]
        rows += [(c.subject, c.name, _num(c.statistic), _crit(c),
                  f"{_num(c.mde_value)} ({c.mde_unit})", _verdict(c.passed)) for c in self.stat]
        rows += [(c.subject, c.name, "-", "-", "-", "n/a") for c in self.not_applicable]
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
        out.append("PASS" if self.passed else f"FAIL: {len(self.failures)} check(s)")
        if not self.passed:
            out.append(self.failure_message())
        return "\n".join(out)

    def failure_message(self) -> str:
        """What failed, expected vs observed, in the style of JAX's `_CheckChiSquared`."""
        lines = []
        for c in self.failures:
            if hasattr(c, "violations"):
                lines.append(f"{c.subject}: {c.name}: {c.detail or c.violations}")
            else:
                lines.append(f"{c.subject}: {c.name}: statistic {_num(c.statistic)} outside "
                             f"{_crit(c)} at level {c.level:.3g}; {c.detail}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        return {
            "schema": SCHEMA, "passed": self.passed, "alpha": self.alpha, "seed": self.seed,
            "tokens": self.tokens, "device": self.device,
            "config": dataclasses.asdict(self.config), "runs": self.runs,
            "skipped": self.skipped,
            "exact": [dict(dataclasses.asdict(c), passed=c.passed) for c in self.exact],
            "statistical": [{
                "subject": c.subject, "name": c.name, "statistic": clean(c.statistic),
                "critical": [clean(c.critical[0]), clean(c.critical[1])], "level": c.level,
                "p_value": c.p_value, "mde": clean(c.mde_value), "mde_unit": c.mde_unit,
                "n": c.n, "passed": c.passed, "detail": c.detail} for c in self.stat],
            "not_applicable": [dataclasses.asdict(c) for c in self.not_applicable],
            "effective": {name: _effective(self.config, h) for name, h in self.counts.items()},
        }

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)


def _effective(config: MaskingConfig, counts: dict) -> dict:
    from .summary import effective
    e = effective(config, counts)
    return {"selection": [x.as_dict() for x in e["selection"]],
            "outcomes": [x.as_dict() for x in e["outcomes"]],
            "categories": e["categories"], "expected_categories": e["expected_categories"]}


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"
