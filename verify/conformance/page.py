"""The markdown of docs/conformance.md, from a conformance run's `Report`."""

from __future__ import annotations

import os

from .. import registry
from ..token.verdicts import format_critical, format_number
from ..token.summary import effective

__all__ = ["render", "summary_rows", "findings"]

WHO = {name: info.label for name, info in registry.REGISTRY.items()}

# What a failed check means for someone training with the masker, in plain words.
MEANING = {
    "category split (mask, original, other)":
        "The three categories are not split as configured. A masker that under-draws \"unchanged\" "
        "gives the model fewer selected positions whose input is the true token, the signal "
        "that ties the representations of visible tokens to their identity; the bias is small "
        "per step but applies to every step of pretraining.",
    "input not mutated":
        "It writes the masked ids into the tensor it was given. Any code that uses that batch "
        "afterwards (a second loss, logging, a metric on the unmasked text, a retry) silently "
        "sees masked ids.",
    "selection rate":
        "It selects a different share of tokens than configured, which changes the amount of "
        "training signal and the corruption rate the model learns under.",
}
GENERIC = ("This check is part of the contract (docs/contract.md); see docs/statistics.md for "
           "what it tests and why it matters.")


def _pct(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}"


def _estimate(e) -> str:
    return f"{_pct(e.observed, 4)} [{_pct(e.low, 4)}, {_pct(e.high, 4)}]"


def summary_rows(report) -> list[str]:
    rows = ["| masker | verdict | selected among eligible | output [MASK] | output original | "
            "output other | estimated mask / unchanged / random |",
            "|---|---|---|---|---|---|---|"]
    first = None
    for name, counts in report.counts.items():
        e = effective(report.config, counts)
        first = first or e
        cats = e["categories"]
        verdict = "pass" if not _failed(report, name) else "**FAIL**"
        rows.append(f"| {name} | {verdict} | {_estimate(e['selection'][0])} | "
                    + " | ".join(_estimate(o) for o in e["outcomes"])
                    + f" | {cats['mask']:.4f} / {cats['unchanged']:.4f} / {cats['random']:.4f} |")
    if first:
        exp = first["expected_categories"]
        rows.append("| *contract* | | " + f"{report.config.masking_prob:.4f} | "
                    + " | ".join(f"{o.expected:.6f}" for o in first["outcomes"])
                    + f" | {exp['mask']:.4f} / {exp['unchanged']:.4f} / {exp['random']:.4f} |")
    return rows


def _failed(report, name: str) -> list:
    return [c for c in report.failures if c.subject == name]


def _mutates(report, name: str) -> bool:
    return any(c.name == "input not mutated" for c in _failed(report, name))


def findings(report, name: str) -> list[str]:
    failed = _failed(report, name)
    if not failed:
        return ["Every exact invariant holds and no statistical check rejects the contract at "
                "this N: within the minimal detectable effects listed below, it does what BERT's "
                "masking prescribes."]
    lines = []
    for c in failed:
        what = c.detail or c.violations
        lines.append(f"**{c.name}** fails: {what}. {MEANING.get(c.name, GENERIC)}")
        if c.name.startswith("category split"):
            cats = effective(report.config, report.counts[name])["categories"]
            lines[-1] += (f" Estimated categories: mask {cats['mask']:.4f}, unchanged "
                          f"{cats['unchanged']:.4f}, random {cats['random']:.4f}, against "
                          f"{report.config.mask_token_prob:.4f}, {report.config.no_change_prob:.4f}"
                          f" and {report.config.randomize_prob:.4f}.")
    if not any(c.kind == "statistical" for c in failed):
        lines.append("Every statistical check passes: its selection rate, category split, "
                     "random-id distribution and independence match the contract within the "
                     "minimal detectable effects listed below.")
    return lines


def _check_table(report, name: str) -> list[str]:
    rows = ["| check | statistic | critical | MDE (50% power) | verdict |", "|---|---|---|---|---|"]
    for c in report.exact:
        if c.subject == name:
            rows.append(f"| {c.name} | {c.violations} violations | 0 | exact | "
                        f"{'pass' if c.passed else '**FAIL**'} |")
    for c in report.stat:
        if c.subject == name:
            rows.append(f"| {c.name} | {format_number(c.statistic)} | {format_critical(c)} | "
                        f"{format_number(c.mde_value)} ({c.mde_unit}) | "
                        f"{'pass' if c.passed else '**FAIL**'} |")
    return rows


def render(report, *, images: dict, command: str, versions: str, date: str,
           out_dir: str) -> str:
    """The whole page. `images` maps plot kinds (split, random_ids, selection_by_position,
    calibration) to file paths, written relative to `out_dir` (where the page lives)."""
    cfg, runs = report.config, report.runs
    n = ", ".join(f"{k} {v['calls'] * v['shape'][0] * v['shape'][1]:,}" for k, v in runs.items())
    lines = [
        "# Conformance: what published maskers and ours actually do", "",
        f"Generated by `{command}` on {date} ({versions}); regenerate with that command, do "
        "not edit by hand.", "",
        f"Configuration: BERT's special ids and vocabulary ({cfg}). Tokens per masker: {n}. "
        f"One family-wise false-alarm budget of {report.alpha:g} for the whole run, split by "
        f"Holm over {len(report.stat)} statistical checks; exact invariants on every call. "
        "Intervals are 95% Wilson intervals. The harness sees only `(x, x_masked, y)`: "
        "docs/statistics.md explains every check.", "",
        "## Summary", "", *summary_rows(report), "",
        "\"Estimated mask / unchanged / random\" undoes the random draws that land on the "
        "original or on `[MASK]` (invisible as such), using the contract's 1/V terms.", ""]
    lines += [f"Not run: {k} ({v})." for k, v in report.skipped.items()]
    for name in report.counts:
        lines += ["", f"## {name}", "", f"{WHO.get(name, name)}.", "",
                  *[f"- {s}" for s in findings(report, name)], "",
                  *(_NOTES.get(name, []) if _mutates(report, name) else []),
                  *_check_table(report, name)]
    if images:
        lines += ["", "## Plots", ""]
        for kind, path in images.items():
            lines += [f"![{kind}]({os.path.relpath(path, out_dir or '.')})", ""]
    return "\n".join(lines) + "\n"


# Context a reader needs that the numbers alone don't give.
_NOTES = {
    "hf-torch": ["Note: the collator's own `__call__` builds a fresh batch tensor from the "
                 "examples before calling this method (checked: the examples come back "
                 "unchanged), so in the usual DataLoader use the in-place write does not reach "
                 "the caller's data; it does whenever `torch_mask_tokens` is called directly, "
                 "as here.", ""],
    "hf-numpy": ["Note: as for `torch_mask_tokens`, the collator's `__call__` hands this "
                 "method a batch it built itself.", ""],
}
