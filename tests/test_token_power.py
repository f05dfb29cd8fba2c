"""The token-level gate's checks of joint laws, of the masker seeded once and with nearby seeds,
of call shapes, and its two-sided tests: each planted defect of `tests/broken_power.py` is
flagged by the check named for it, the statistics have the null moments they claim, and the
runs call the masker as documented (seeds, shapes, layout).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from scipy import stats

from mlm_ref import MaskingConfig
from tests.broken_maskers import Correct
from tests.broken_power import POWER_BROKEN, POWER_CAUGHT_BY
from verify import check_masker
from verify.token.adapters import resolve
from verify.token.power.call_shapes import SHAPES, shapes_run
from verify.token.power.power_checks import NAMES, RUNS_WITHOUT_ERROR
from verify.token.power import seeding
from verify.token.power.seeding import (SEEDINGS, USAGE_BATCH, USAGE_SEQ, lags_from_spectrum,
                                        spectra, usage_run)
from verify.token.power.two_sided import collision_moments, pearson_gof

CONFIG = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
KWARGS = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=100)
# CI sizes: most defects are caught with a third of the harness test's 1e6 tokens
TOKENS = collections.defaultdict(lambda: 300_000, {"balanced categories": 1_000_000,
                                                   "drops the partial tile": 1_000_000,
                                                   "at least one [MASK] per sequence": 2_000_000})


def test_every_power_defect_has_a_designated_check():
    assert set(POWER_CAUGHT_BY) == set(POWER_BROKEN)
    assert set(POWER_CAUGHT_BY.values()) - {"category homogeneous over calls",
                                            "category split (mask, original, other)",
                                            "input not mutated"} \
        <= set(NAMES.values()) | {RUNS_WITHOUT_ERROR}


@pytest.mark.parametrize("defect", sorted(POWER_BROKEN))
def test_planted_defect_is_flagged_by_the_check_named_for_it(defect):
    report = check_masker(POWER_BROKEN[defect](**KWARGS), CONFIG, tokens=TOKENS[defect], seed=7)
    failed = {c.name for c in report.failures}
    assert POWER_CAUGHT_BY[defect] in failed, (
        f"{defect}: expected {POWER_CAUGHT_BY[defect]!r} to fail, failed: {sorted(failed)}\n"
        f"{report}")


def test_a_failure_prints_expected_and_observed():
    report = check_masker(POWER_BROKEN["balanced random ids"](**KWARGS), CONFIG, tokens=300_000,
                          seed=7)
    c = next(c for c in report.failures if c.name == NAMES["collisions"])
    assert "expected" in c.detail and "observed" in c.detail and c.statistic < 0


@pytest.mark.parametrize("seed", [1, 2])
def test_a_correct_third_party_masker_passes_the_new_checks(seed):
    report = check_masker(Correct(**KWARGS), CONFIG, tokens=300_000, seed=seed)
    new = set(NAMES.values()) | {RUNS_WITHOUT_ERROR}
    assert not [c for c in report.failures if c.name in new], str(report)
    assert not [c for c in report.not_applicable if c.name in new], str(report)


def test_pearson_gof_has_the_exact_null_mean_and_variance():
    rng = np.random.default_rng(0)
    probs = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    n = 120
    draws = [pearson_gof(rng.multinomial(n, probs), n * probs) for _ in range(20_000)]
    s = np.array([d[0] for d in draws])
    _, df, var = draws[0]
    assert df == 5
    assert abs(s.mean() - df) < 4 * np.sqrt(var / s.size)
    assert var == pytest.approx(s.var(), rel=0.05)


def test_collision_moments_match_independent_uniform_draws():
    rng = np.random.default_rng(1)
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=12)
    drawable = np.array([t for t in range(12) if t != 1])           # [MASK] is never seen
    originals = rng.choice(drawable, size=30)
    allowed = np.stack([drawable[drawable != o] for o in originals])       # [30, 10]
    runs = 40_000
    ids = allowed[np.arange(30), rng.integers(0, 10, size=(runs, 30))]     # [runs, 30]
    h = np.bincount((ids + 12 * np.arange(runs)[:, None]).ravel(), minlength=12 * runs)
    h = h.reshape(runs, 12)
    equal = (h * (h - 1) // 2).sum(1)
    m = np.bincount(originals, minlength=12)
    same = int((m * (m - 1) // 2).sum())
    mean, var = collision_moments(cfg, 30 * 29 // 2 - same, same)
    assert np.mean(equal) == pytest.approx(mean, rel=0.01)
    assert np.var(equal) == pytest.approx(var, rel=0.1)


def test_lags_from_spectrum_are_the_correlations_at_every_shift():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=37), rng.normal(size=37)
    size = 128
    fa, _ = spectra(torch.tensor(a), torch.tensor(a), size)
    fb, _ = spectra(torch.tensor(b), torch.tensor(b), size)
    got = lags_from_spectrum(torch.conj(fa) * fb, 37, size).numpy()
    want = np.array([sum(a[i] * b[i + lag] for i in range(37) if 0 <= i + lag < 37)
                     for lag in range(-36, 37)])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_a_two_sided_table_rejects_strata_more_alike_than_chance():
    from verify.engine.primitives import holm, rows_homogeneity
    even = np.tile([850, 150], (40, 1))                    # every stratum exactly at the share
    check = rows_homogeneity("t", "m", even, "strata", two_sided=True)
    holm([check], 1e-5)
    assert check.failed and "expected 39" in check.detail
    one_sided = rows_homogeneity("t", "m", even, "strata")
    holm([one_sided], 1e-5)
    assert one_sided.passed


class _Recorder(Correct):
    """A correct masker that records the global seed and the shape of every call."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen = []

    def __call__(self, x):
        self.seen.append((torch.initial_seed(), tuple(x.shape)))
        return super().__call__(x)


def test_the_usage_run_seeds_once_per_nearby_seed():
    masker = _Recorder(**KWARGS)
    u = usage_run(resolve(masker, CONFIG), CONFIG, tokens=1 << 18, seed=3, device="cpu")
    seeds = [s for s, _ in masker.seen]
    assert u.calls == len(seeds) and not u.problems
    distinct = sorted(set(seeds))
    assert len(distinct) == SEEDINGS and distinct == list(range(distinct[0],
                                                                distinct[0] + SEEDINGS))
    per_seed = len(seeds) // SEEDINGS
    assert seeds == [s for s in distinct for _ in range(per_seed)]   # each seeding in one go


@pytest.mark.parametrize("layout", ["seq-batch", "batch-seq"])
def test_the_shapes_run_feeds_every_shape_in_the_maskers_layout(layout):
    masker = _Recorder(**KWARGS)
    adapter = resolve(masker, CONFIG)
    adapter.layout = layout
    s = shapes_run(adapter, CONFIG, tokens=1 << 18, seed=3, device="cpu")
    shapes = {shape for _, shape in masker.seen}
    want = set(SHAPES) if layout == "seq-batch" else {(b, n) for n, b in SHAPES}
    assert shapes == want and not s.problems


class _BreaksThenRaises(Correct):
    """Correct for two calls; its third labels a position with an id not its own, its fourth
    raises."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == 4:
            raise RuntimeError("fourth call")
        out, y = super().__call__(x)
        if self.calls == 3:
            y = y.clone()
            y.view(-1)[0] = x.view(-1)[0] + 1
        return out, y


@pytest.mark.parametrize("block", [1, 2, 64])
def test_the_usage_run_stops_at_the_first_call_that_broke_an_invariant(block, monkeypatch):
    """The calls before it are counted, the call itself is named, nothing after it counts
    (not even the raise that followed), however many calls are coded at once."""
    monkeypatch.setattr(seeding, "USAGE_BLOCK", block)
    u = usage_run(resolve(_BreaksThenRaises(**KWARGS), CONFIG), CONFIG, tokens=1 << 18, seed=3,
                  device="cpu")
    assert u.calls == 2 and len(u.problems) == 1
    assert u.problems[0].endswith("call 2 after it: outputs break the contract's invariants")
    assert u.codes[0].sum() == USAGE_SEQ * USAGE_BATCH == u.codes[1].sum()   # calls 0 and 1


def test_the_usage_run_counts_the_same_however_many_calls_it_codes_at_once(monkeypatch):
    whole = usage_run(resolve("torch", CONFIG), CONFIG, tokens=1 << 21, seed=3, device="cpu")
    monkeypatch.setattr(seeding, "USAGE_BLOCK", 3)
    blocks = usage_run(resolve("torch", CONFIG), CONFIG, tokens=1 << 21, seed=3, device="cpu")
    assert whole.calls == blocks.calls and whole.calls // SEEDINGS > 3 and not whole.problems
    for name in ("codes", "same_var", "near_var"):
        assert np.array_equal(getattr(whole, name), getattr(blocks, name)), name
    for name in ("same_num", "near_num"):      # the FFTs of other batches: to rounding
        np.testing.assert_allclose(getattr(whole, name), getattr(blocks, name), atol=1e-9)


def test_our_numpy_masker_is_seeded_once_with_one_generator():
    u = usage_run(resolve("numpy", CONFIG), CONFIG, tokens=1 << 18, seed=5, device="cpu")
    assert not u.problems and u.calls >= 2 * SEEDINGS
    assert stats.norm.sf(np.abs(u.same_num[u.same_var > 0]
                                / np.sqrt(u.same_var[u.same_var > 0]))).min() > 1e-9


def _new_check_p_values(masker: str, runs: int) -> dict[str, list[float]]:
    """p-values of the new and the newly two-sided checks over `runs` seeded runs."""
    p = collections.defaultdict(list)
    for seed in range(runs):
        report = check_masker(masker, CONFIG, tokens=1 << 18, seed=20_000 + seed, alpha=0.1,
                              chunk=1 << 15)
        for c in report.stat:
            p[c.name].append(c.p_value)
    return p


@pytest.mark.slow
@pytest.mark.parametrize("masker", ["numpy", "torch"])
def test_new_checks_are_calibrated_over_200_seeds(masker):
    """Calibration of every check of `verify.token.power` and of the checks made two-sided:
    200 seeded runs of a correct masker; each check's p-values must look uniform (KS, at
    1e-3 over the checks; one-sided for the Bonferroni maxima over shifts and the discrete
    replay collisions, conservative by construction)."""
    runs = 200
    p = _new_check_p_values(masker, runs)
    names = set(NAMES.values()) | {
        "category split (mask, original, other)", "random ids uniform (all ids)",
        "random ids uniform (ranges)", "random ids independent of the original's id range",
        "random ids independent of position", "per-sequence count ~ Binomial (distribution)",
        "random ids differ between replays (same input, new seed)",
        "selection homogeneous over positions", "category homogeneous over calls",
        "selection independent of neighbouring positions"}
    assert names <= set(p), sorted(names - set(p))
    bad = {}
    for name in names:
        assert len(p[name]) == runs, name
        side = "greater" if "all shifts" in name or "between replays" in name else "two-sided"
        ks = stats.kstest(p[name], "uniform", alternative=side).pvalue
        if ks < 1e-3 / len(names):
            bad[name] = ks
    assert not bad, f"p-values not uniform (KS p-value per check): {bad}"


@pytest.mark.parametrize("n, p", [(20, 1 / 98), (400, 1 / 98), (5000, 0.3)])
def test_the_two_sided_binomial_is_never_anticonservative(n, p):
    from verify.token.power.two_sided import binomial_two_sided
    k = np.random.default_rng(4).binomial(n, p, size=4000)
    table = {int(v): binomial_two_sided("t", "m", int(v), n, p, "share").p_value
             for v in np.unique(k)}
    p_values = np.array([table[int(v)] for v in k])
    assert stats.kstest(p_values, "uniform", alternative="greater").pvalue > 1e-3
    assert (p_values <= 0.05).mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / k.size)


def test_outputs_that_break_an_invariant_in_one_call_shape_are_reported_with_that_shape():
    """Only calls of an odd size break the labels; the first such call of the call-shape run
    is named (the shape `[1, 1]`, its first call), and nothing else stops the run."""
    report = check_masker(POWER_BROKEN["labels the tail of odd calls"](**KWARGS), CONFIG,
                          tokens=1 << 16, seed=7)
    c = next(c for c in report.failures if c.name == RUNS_WITHOUT_ERROR)
    assert c.detail.startswith("shape [1, 1] (as [seq_len, batch]), call 0: outputs break"), \
        c.detail


@pytest.mark.parametrize("defect, where", [
    ("writes into its input after the first call", "set once, call 1 after it"),
    ("writes into its input's tail", "shape [1, 1]")])
def test_input_written_only_in_the_extra_runs_fails_input_not_mutated_and_says_where(defect,
                                                                                    where):
    report = check_masker(POWER_BROKEN[defect](**KWARGS), CONFIG, tokens=1 << 16, seed=7)
    c = next(c for c in report.failures if c.name == "input not mutated")
    assert "0 in the main run" in c.detail and where in c.detail, c.detail
