"""The report every gate shares: one JSON skeleton (schema and version, `gate`, verdict,
alpha, seed, and every check in the `exact`, `statistical` and `not_applicable` sections), the
number formats of the terminal table, and the failure message. A gate's report adds its own
sections (docs/report-schema.md): the token-level `Report` (`verify.token.verdicts`) its
config, runs and effective rates, the NSP report (`verify.sentence_pairs.nsp_checks`) its pairs.
"""

from __future__ import annotations

import math

from .primitives import Check

__all__ = ["SCHEMA", "format_number", "format_critical", "clean", "skeleton", "failure_message",
           "table"]

# The JSON report's schema name and version (docs/report-schema.md); bump the number on any
# change that removes or renames a field.
SCHEMA = "mlm-verify.report/1"


def format_number(v: float | None) -> str:
    """A statistic as the report prints it: 4 significant digits, `-` for a missing value."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"


def format_critical(c: Check) -> str:
    """A statistical check's acceptance region: `<= hi` (one-sided) or `[lo, hi]`."""
    lo, hi = c.critical
    return f"<= {format_number(hi)}" if lo == -math.inf else \
        f"[{format_number(lo)}, {format_number(hi)}]"


def clean(v):
    """A float as JSON can hold it: None for an infinite or missing value."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def skeleton(gate: str, *, passed: bool, verdict: str, alpha: float, seed: int,
             checks: list[Check]) -> dict:
    """The fields every gate's JSON report has, in this order.

    Args:
        gate: `token`, `wwm`, `pipeline` or `nsp`.
        passed, verdict, alpha, seed: the run's.
        checks: every check of the run, decided.
    """
    exact = [c for c in checks if c.kind == "exact" and c.applicable]
    stat = [c for c in checks if c.kind == "statistical" and c.applicable]
    return {
        "schema": SCHEMA, "gate": gate, "passed": passed, "verdict": verdict, "alpha": alpha,
        "seed": seed,
        "exact": [{"name": c.name, "subject": c.subject, "violations": c.violations,
                   "detail": c.detail, "passed": c.passed} for c in exact],
        "statistical": [{
            "subject": c.subject, "name": c.name, "statistic": clean(c.statistic),
            "critical": [clean(c.critical[0]), clean(c.critical[1])], "level": c.level,
            "p_value": c.p_value, "mde": clean(c.mde_value), "mde_unit": c.mde_unit,
            "n": c.n, "passed": c.passed, "detail": c.detail} for c in stat],
        "not_applicable": [{"name": c.name, "subject": c.subject}
                           for c in checks if not c.applicable],
    }


def failure_message(checks: list[Check]) -> str:
    """What failed, expected vs observed, one line per failed check."""
    lines = []
    for c in checks:
        if not c.failed:
            continue
        if c.kind == "exact":
            lines.append(f"{c.subject}: {c.name}: {c.detail or c.violations}")
        else:
            lines.append(f"{c.subject}: {c.name}: statistic {format_number(c.statistic)} "
                         f"outside {format_critical(c)} at level {c.level:.3g}; {c.detail}")
    return "\n".join(lines)


def table(head: tuple, rows: list) -> list[str]:
    """The terminal table: `head`, a rule, and `rows`, columns padded to their widest cell."""
    width = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(s.ljust(w) for s, w in zip(r, width)).rstrip()  # noqa: E731
    return [line(head), line(tuple("-" * w for w in width)), *map(line, rows)]
