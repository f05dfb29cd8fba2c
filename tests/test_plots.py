"""verify.plots: the PNGs of a report, the calibration QQ plot and `--plot` on the CLI.

A picture cannot be asserted pixel by pixel, so these check what can go wrong silently: a
file that is not a PNG, an empty or tiny canvas, a figure with nothing drawn on it (one flat
colour). Whether the pictures are readable was judged by eye when they were written.
"""

import dataclasses
import importlib.util
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib import image  # noqa: E402

from mlm_ref.config import MaskingConfig  # noqa: E402
from verify import check_maskers, stats  # noqa: E402
from verify.token.summary import expected_split, wilson  # noqa: E402
from verify.plots import calibration_p_values, plot_calibration, plot_report  # noqa: E402

CONFIG = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=1000)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["split.png", "random_ids.png", "selection_by_position.png"]


def assert_real_png(path, min_side=300):
    """A PNG of sensible size with something drawn on it."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    pixels = image.imread(path)                                  # [height, width, channels]
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_side, pixels.shape
    colours = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colours) > 20, f"{path} is nearly one flat colour ({len(colours)} colours)"


@pytest.fixture(scope="module")
def report():
    return check_maskers(["numpy", "torch"], CONFIG, tokens=1 << 17)


def test_plot_report_writes_three_real_pngs(report, tmp_path):
    paths = plot_report(report, tmp_path / "plots")  # a missing directory is created
    assert [p.rsplit("/", 1)[-1] for p in map(str, paths)] == NAMES
    for path in paths:
        assert_real_png(path)


def test_expected_split_mixes_drawable_and_undrawable_originals(report):
    """The expectation weights config.outcome_probs by how many selected originals could be
    drawn and how many not; the Wilson interval stays in [0, 1]."""
    h = report.counts["torch"]  # the default config: every selected original is drawable
    assert h.outcomes[0].sum() == 0 and h.outcomes[1].sum() > 0
    drawable = np.array(CONFIG.outcome_probs(5).as_tuple())
    np.testing.assert_allclose(expected_split(h, CONFIG), drawable)
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=1000, random_exclude=(7,))
    undrawable = np.array(cfg.outcome_probs(7).as_tuple())
    # 30 selected undrawable originals and 10 drawable ones, all masked: only row totals matter
    mixed = dataclasses.replace(h, by_call=np.array([[0, 0, 10, 0, 0, 30, 0, 0]]))
    np.testing.assert_allclose(expected_split(mixed, cfg),
                               (30 * undrawable + 10 * np.array(cfg.outcome_probs(5).as_tuple()))
                               / 40)
    lo, hi = wilson([0, 5, 10], [10, 10, 10])
    assert lo[0] == 0 and 0 < lo[1] < 0.5 < hi[1] < 1 and hi[2] == 1
    assert np.isnan(wilson(0, 0)[0])


def test_plot_report_survives_a_masker_that_produced_nothing(tmp_path):
    """A masker that raises on its first call leaves zero counts: its panels say so."""
    def broken(x):
        raise RuntimeError("broken on purpose")
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=50, randomize_prob=0.0)
    r = check_maskers(["torch", broken], cfg, tokens=1 << 14)
    for path in plot_report(r, tmp_path):
        assert_real_png(path)


def test_calibration_p_values_and_qq_plot(tmp_path):
    p_values = calibration_p_values("torch", CONFIG, runs=4, tokens=1 << 14, seed=7)
    # a check the counts cannot support in a run (e.g. a 3 x 3 table of the few pairs selected
    # in a call and its replay with an empty row, at 16 Ki tokens) gives that run no p-value
    assert all(1 <= len(p) <= 4 for p in p_values.values())
    assert sum(len(p) == 4 for p in p_values.values()) >= 30
    assert all(0 <= p <= 1 for ps in p_values.values() for p in ps)
    path = plot_calibration(p_values, tmp_path / "qq" / "calibration.png")
    assert_real_png(path)
    with pytest.raises(ValueError):
        plot_calibration({}, tmp_path / "empty.png")


def test_cli_plot_writes_the_pngs_and_lists_them(tmp_path, capsys):
    out_dir = tmp_path / "cli"
    code = stats.main(["--device", "cpu", "--tokens", "1e5", "--no-progress",
                       "--masker", "torch", "--plot", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 0 and "PASS" in out
    for name in NAMES:
        assert f"wrote {out_dir / name}" in out
        assert_real_png(out_dir / name)


def test_cli_plot_without_matplotlib_exits_2_before_running(tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a))
    assert stats.main(["--tokens", "1e9", "--plot", str(tmp_path)]) == 2  # 1e9: would be slow
    err = capsys.readouterr().err
    assert "matplotlib" in err and "Traceback" not in err


def test_plots_raise_a_clear_import_error_without_matplotlib(tmp_path, monkeypatch, report):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_report(report, tmp_path)
