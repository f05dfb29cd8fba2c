"""Calibration pictures: are a correct masker's p-values uniform, check by check?

Under the null (a correct masker) every check's p-value is Uniform(0, 1); a check whose
reference distribution is off (a degree of freedom too few, a skewed approximation) shows up
as a QQ line leaving the diagonal. `calibration_p_values` collects p-values over seeded runs,
`plot_calibration` draws them with a 99% simultaneous Kolmogorov-Smirnov band.

Also home to `figure()`, the lazy matplotlib entry point shared with `plots.py`.
"""

from __future__ import annotations

import collections
import os

import numpy as np
from scipy import stats

__all__ = ["calibration_p_values", "plot_calibration", "figure"]

KS_LEVEL = 0.99  # coverage of the simultaneous band around the diagonal


def figure(**kwargs):
    """A matplotlib `Figure` on an Agg canvas (PNG, no window, no global backend switch).

    Args:
        **kwargs: passed to `matplotlib.figure.Figure` (e.g. `figsize`); the layout defaults
            to `constrained`, which keeps titles, labels and outside legends from overlapping.

    Raises:
        ImportError: matplotlib is not installed, with how to install it.
    """
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("verify's plots need matplotlib: pip install matplotlib "
                          "(or pip install 'mlm-verify[bench]')") from e
    fig = Figure(**{"layout": "constrained", **kwargs})
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: savefig renders through Agg
    return fig


def calibration_p_values(masker, config, runs: int, tokens: int, seed: int = 0) -> dict:
    """Each statistical check's p-values over `runs` independent runs of one masker.

    Args:
        masker: anything `verify.check_masker` accepts (a name, an `MLM`, a callable).
        config: the `MaskingConfig` to check against.
        runs: how many runs (seeds `seed`, `seed + 1`, ...).
        tokens: tokens per run.
        seed: the first seed.

    Returns:
        `{check name: [p-value per run]}`, in the report's order of checks.
    """
    from ..token.runner import check_maskers
    p_values = collections.defaultdict(list)
    for i in range(runs):
        # alpha only sets the Holm levels, not the p-values; 0.1 as in the calibration test
        report = check_maskers([masker], config, tokens=tokens, seed=seed + i, alpha=0.1)
        for c in report.stat:
            p_values[c.name].append(float(c.p_value))
    return dict(p_values)


def plot_calibration(p_values: dict, path) -> str:
    """QQ plot of each check's p-values against Uniform(0, 1), written as a PNG.

    Left: the whole range on linear axes. Right: the lower tail on log axes, where the
    false alarms of a run happen. The grey band is where a uniform sample's ordered values lie
    with 99% probability, all points at once (Kolmogorov-Smirnov, at the smallest sample).

    Args:
        p_values: `{check name: p-values}` (e.g. from `calibration_p_values`).
        path: the PNG to write (its directory is created if missing).

    Returns:
        `path`.
    """
    p_values = {k: np.sort(np.asarray(v, np.float64)) for k, v in p_values.items() if len(v)}
    if not p_values:
        raise ValueError("no p-values to plot")
    fig = figure(figsize=(12, 6.2))
    lin, log = fig.subplots(1, 2)
    n_min = min(len(p) for p in p_values.values())
    d = float(stats.kstwo.ppf(KS_LEVEL, n_min))
    floor = 0.5 / (max(len(p) for p in p_values.values()) + 1)  # log axes: show p = 0 here
    _ks_band(lin, log, d, floor, n_min)
    # dozens of checks: the ones inside the band are drawn thin and grey under one legend
    # entry; each one that leaves it (a conservative Bonferroni or discrete test, or a
    # miscalibrated one) gets a colour and a name
    expected = {k: np.arange(1, len(p) + 1) / (len(p) + 1) for k, p in p_values.items()}
    outside = [k for k, p in p_values.items() if np.max(np.abs(p - expected[k])) > d]
    colours = dict(zip(outside, _colours(len(outside))))
    inside_label = f"{len(p_values) - len(outside)} checks inside the band"
    for name, p in p_values.items():
        u = expected[name]
        if name in colours:
            style = dict(lw=1.4, color=colours[name], label=f"{name} (n={len(p)})")
        else:
            style = dict(lw=0.8, color="0.45", alpha=0.6, label=inside_label)
            inside_label = None  # one legend entry for all of them
        lin.plot(u, p, **style)
        log.plot(u, np.maximum(p, floor), **{k: v for k, v in style.items() if k != "label"})
    lin.set(xlim=(0, 1), ylim=(0, 1), title="whole range",
            xlabel="expected p-value (uniform quantile)", ylabel="observed p-value (sorted)")
    log.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1),
            title="lower tail (log axes; p = 0 drawn at the bottom)",
            xlabel="expected p-value (uniform quantile)", ylabel="observed p-value (sorted)")
    for ax in (lin, log):
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=2, fontsize="small")
    fig.suptitle("p-value calibration: each check's p-values against Uniform(0, 1)\n"
                 "above the diagonal: conservative (fewer false alarms than the level, e.g. "
                 "a Bonferroni bound); below: anti-conservative", fontsize="medium")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    return os.fspath(path)


def _ks_band(lin, log, d: float, floor: float, n: int):
    """The diagonal and the 99% simultaneous KS band (|ECDF - identity| <= d) on both axes."""
    for ax, lo in ((lin, 0.0), (log, floor)):
        u = np.geomspace(floor, 1, 400) if ax is log else np.linspace(0, 1, 400)
        ax.fill_between(u, np.clip(u - d, lo, 1), np.clip(u + d, lo, 1), color="0.85",
                        label=f"{KS_LEVEL:.0%} simultaneous KS band (n={n})" if ax is lin
                        else None)
        ax.plot(u, u, color="black", lw=0.8, ls="--",
                label="uniform (diagonal)" if ax is lin else None)


def _colours(k: int) -> list:
    """`k` distinguishable colours: tab10, then tab20's lighter shades for more lines."""
    from matplotlib import colormaps
    base = list(colormaps["tab10"].colors)
    return (base + list(colormaps["tab20"].colors)[1::2])[:k] if k <= 20 else \
        [colormaps["viridis"](i / max(k - 1, 1)) for i in range(k)]
