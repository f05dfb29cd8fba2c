"""Pictures of a run: what each masker did against what the contract expects.

`plot_report(report, directory)` draws three PNGs from a `Report`'s host counts:

* `split.png`: the outcome split at selected positions (mask / original / other), observed
  with 95% Wilson intervals, next to the expected share, one zoomed panel per outcome;
* `random_ids.png`: where visible random ids land over equal id ranges, against the expected
  shares with a +-2 SE band;
* `selection_by_position.png`: the selection rate among eligible tokens at each position, with
  the expected rate and a +-3 SE band.

`plot_calibration` (in `verify.plots.calibration`) draws a p-value QQ plot.

The expected values are not re-derived here: they come from `MaskingConfig.outcome_probs` and
`verify.token.checks`, exactly as the checks use them. matplotlib is imported on first use and
drawn through its Agg canvas directly, so no global backend is switched (a caller's notebook
keeps its own) and no window ever opens.
"""

from __future__ import annotations

import os

import numpy as np

from ..token.random_ids import coarse_drawable_counts
from ..token.host_counts import HostCounts
from ..token.summary import expected_split, wilson
from .calibration import figure

__all__ = ["plot_report"]

OUTCOMES = ("mask", "original", "other")


def plot_report(report, directory) -> list[str]:
    """Write the report's PNGs into `directory` (created if missing).

    Args:
        report: a `verify.token.verdicts.Report` (its `counts` and `config` are used).
        directory: where to write `split.png`, `random_ids.png`, `selection_by_position.png`.

    Returns:
        The paths written, in that order.

    Raises:
        ImportError: matplotlib is not installed.
    """
    figure()  # fail on a missing matplotlib before creating anything
    os.makedirs(directory, exist_ok=True)
    counts, cfg = report.counts, report.config
    if not counts:
        raise ValueError("the report holds no masker counts to plot")
    drawers = (("split.png", _split), ("random_ids.png", _random_ids),
               ("selection_by_position.png", _selection))
    paths = []
    for name, draw in drawers:
        path = os.path.join(os.fspath(directory), name)
        draw(counts, cfg, path)
        paths.append(path)
    return paths


def _split(counts: dict[str, HostCounts], cfg, path: str):
    """One panel per outcome, maskers along x: observed share with its 95% Wilson interval,
    and the expected share as a short horizontal line over each masker (the expectation
    can differ in the last digits between maskers: it follows each one's own selections)."""
    names = list(counts)
    obs = np.array([np.asarray(counts[k].outcomes).sum(0) for k in names], np.float64)
    n = obs.sum(1)                                           # [maskers]
    exp = np.array([expected_split(counts[k], cfg) for k in names])  # [maskers, 3]
    lo, hi = wilson(obs, n[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = obs / n[:, None]
    labels = [f"{k}\n({int(m):,} selected)" for k, m in zip(_short(names), n)]
    long = len(names) > 3 or max(map(len, labels)) > 24
    fig = figure(figsize=(max(12.6, 1.4 * 3 * len(names)), 5.6 if long else 4.8))
    axes = fig.subplots(1, 3)
    for j, ax in enumerate(axes):
        _split_panel(ax, OUTCOMES[j], share[:, j], lo[:, j], hi[:, j], exp[:, j], n)
        ax.set_xticks(np.arange(len(names)), labels, rotation=30 if long else 0,
                      ha="right" if long else "center")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    fig.suptitle("Outcome split at selected positions: observed vs expected")
    fig.savefig(path, dpi=100)


def _split_panel(ax, outcome, share, lo, hi, expected, n):
    """One outcome's panel: points with Wilson bars, the expectation as a short line over each
    masker; the y-axis zooms to them (0.800 against 0.810 is plainly apart)."""
    x = np.arange(share.size)
    ax.hlines(expected, x - 0.3, x + 0.3, colors="tab:red", lw=2,
              label="expected (config.outcome_probs)")
    # clipped: rounding can put a Wilson bound a hair past a share of exactly 0 or 1
    yerr = np.clip([share - lo, hi - share], 0, None)
    ax.errorbar(x, share, yerr=yerr, fmt="o", color="tab:blue", capsize=5,
                label="observed, 95% Wilson CI")
    for i in np.flatnonzero(n == 0):
        ax.annotate("no data", (x[i], 0.5), xycoords=("data", "axes fraction"), ha="center",
                    color="0.4")
    ax.set_xlim(-0.6, share.size - 0.4)
    what = {"mask": "mask_token", "original": "the original", "other": "another id"}
    known = expected[np.isfinite(expected)]
    title = f"{outcome}: output is {what[outcome]}"
    ax.set_title(title + (f"\n(expected {known[0]:.5f})" if known.size else "\n(no data)"))
    ax.set_ylabel(f"share of selected positions ({outcome})")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.grid(axis="y", alpha=0.3)


def _short(names: list[str]) -> list[str]:
    """Tick labels: `MODULE:ATTR` maskers by their ATTR alone, unless that makes two alike."""
    short = [k.rsplit(":", 1)[-1] for k in names]
    return short if len(set(short)) == len(short) else names


def _coarse_expected(h: HostCounts, cfg, bins: int) -> np.ndarray:
    """Expected share of visible random ids per coarse bin, as in the ranges check: each
    drawable id (not `mask_token`) is hit equally often, except by draws on its own original."""
    w = coarse_drawable_counts(cfg, bins) * h.selected - h.coarse_orig[:bins]
    w = np.asarray(w, np.float64)
    return w / w.sum() if w.sum() > 0 else np.full(bins, np.nan)


def _random_ids(counts: dict[str, HostCounts], cfg, path: str):
    """Small multiples, one row per masker: observed share of visible random ids per equal
    id range, the expected share and its +-2 SE band (binomial, at this masker's count)."""
    v = cfg.n_tokens
    bins = len(next(iter(counts.values())).coarse_other) - 1
    edges = -(-np.arange(bins + 1) * v // bins)              # first id of each bin, as counted
    mid = (edges[:-1] + edges[1:] - 1) / 2
    fig = figure(figsize=(11, 1.2 + 2.6 * len(counts)))
    axes = np.atleast_1d(fig.subplots(len(counts), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (name, h) in zip(axes, counts.items()):
        obs = np.asarray(h.coarse_other[:bins], np.float64)
        n = obs.sum()
        q = _coarse_expected(h, cfg, bins)
        ax.set_ylabel("share of random ids")
        ax.grid(alpha=0.3)
        if n == 0 or np.isnan(q).all():
            why = "randomize_prob is 0" if cfg.randomize_prob == 0 else "none in the counts"
            _empty(ax, f"{name}: no visible random ids ({why})", (0, v))
            continue
        se = np.sqrt(q * (1 - q) / n)
        ax.fill_between(mid, q - 2 * se, q + 2 * se, step="mid", color="tab:red", alpha=0.18,
                        label="expected +-2 SE")
        ax.step(mid, q, where="mid", color="tab:red", lw=1.2, label="expected share")
        ax.plot(mid, obs / n, "o", ms=3.5, color="tab:blue", label="observed share")
        ax.set_title(f"{name}: {int(n):,} visible random ids over {bins} equal id ranges",
                     fontsize="medium")
    _legend_below(fig, axes)
    width = "one id per range" if bins == v else f"centre of each range of ~{v / bins:.4g} ids"
    axes[-1].set_xlabel(f"token id ({width}; vocabulary {v:,})")
    fig.suptitle("Visible random replacements by id range")
    fig.savefig(path, dpi=100)


def _empty(ax, title: str, xlim):
    """A panel with nothing to show says so, instead of leaving blank axes to puzzle over."""
    ax.set_title(title, fontsize="medium")
    ax.set_xlim(*xlim)
    ax.set_yticks([])
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
            color="0.4", fontsize="large")


def _legend_below(fig, axes):
    """One legend for all rows, below them: inside a panel it would hide some points."""
    handles = max((ax.get_legend_handles_labels() for ax in axes), key=lambda h: len(h[0]))
    if handles[0]:
        fig.legend(*handles, loc="outside lower center", ncol=3)


def _selection(counts: dict[str, HostCounts], cfg, path: str):
    """Small multiples, one row per masker: selected / eligible at each position, the expected
    `masking_prob` and a +-3 SE band from each position's own eligible count."""
    p = cfg.masking_prob
    fig = figure(figsize=(11, 1.2 + 2.6 * len(counts)))
    axes = np.atleast_1d(fig.subplots(len(counts), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (name, h) in zip(axes, counts.items()):
        elig = np.asarray(h.strata["pos"][:, 1:].sum(1), np.float64)         # [seq_len]
        sel = np.asarray(h.strata["pos"][:, 2:].sum(1), np.float64)
        pos = np.arange(elig.size)
        if elig.sum() == 0:  # e.g. a masker that raised on its first call
            _empty(ax, f"{name}: no eligible positions counted", (-1, elig.size))
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            rate, se = sel / elig, np.sqrt(p * (1 - p) / elig)
        ax.fill_between(pos, p - 3 * se, p + 3 * se, color="tab:red", alpha=0.18,
                        label="expected +-3 SE", step="mid")
        ax.axhline(p, color="tab:red", lw=1.2, label=f"masking_prob = {p:g}")
        ax.plot(pos, rate, "o-", ms=2.5, lw=0.6, color="tab:blue", label="observed rate")
        ax.set_ylabel("selected / eligible")
        ax.set_xlim(-1, elig.size)
        ax.set_title(f"{name}: {int(sel.sum()):,} selected of {int(elig.sum()):,} eligible",
                     fontsize="medium")
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    axes[-1].set_xlabel("position in the sequence (token index, 0-based)")
    fig.suptitle("Selection rate by position")
    fig.savefig(path, dpi=100)
