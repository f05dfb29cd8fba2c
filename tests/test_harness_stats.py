"""The statistics under the harness: Holm, bin merging, critical values, MDE, calibration."""

import collections
import math

import numpy as np
import pytest
from scipy import stats

from mlm_ref import MaskingConfig
from verify import check_masker
from verify.engine.primitives import (Check, binomial_score, chi2_check, holm, lambda50,
                                      merge_sparse, pearson)
from verify.token.random_ids import coarse_drawable_counts, other_id_weights

CONFIG = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)


def _p_check(p: float) -> Check:
    """A check whose statistic is its p-value's normal score (one-sided)."""
    z = float(stats.norm.isf(p))
    return Check.statistical("c", "s", z, lambda a: (-math.inf, float(stats.norm.isf(a))), p,
                             lambda a: 0.0, "-")


@pytest.mark.parametrize("seed", range(20))
def test_holm_on_critical_values_matches_holm_on_sorted_p_values(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=8), rng.uniform(0, 1e-3, size=rng.integers(0, 6))])
    checks = [_p_check(x) for x in p]
    holm(checks, 0.05)
    # textbook Holm: reject the sorted p(i) while p(i) <= alpha / (m - i)
    want, m = set(), len(p)
    for i, j in enumerate(np.argsort(p)):
        if p[j] > 0.05 / (m - i):
            break
        want.add(int(j))
    assert {i for i, c in enumerate(checks) if not c.passed} == want


@pytest.mark.parametrize("k, n, p", [(0, 100, 1e-9), (0, 10, 1e-3), (0, 19_000, 1e-3),
                                     (1, 10, 0.09), (2, 10, 0.09), (5, 19_000, 1e-3),
                                     (40, 19_000, 1e-3), (3, 20, 0.5), (10, 20, 0.5),
                                     (17, 20, 0.5), (520, 1000, 0.5)])
def test_binomial_score_is_the_two_sided_exact_p_value_signed_by_the_smaller_tail(k, n, p):
    """With a small mean, a count of 0 has P(X <= 0) near 1: it is no evidence of anything,
    and a score taken from the tail on the count's side of the mean calls it "too many"."""
    z = binomial_score(k, n, p)
    low, high = stats.binom.cdf(k, n, p), stats.binom.sf(k - 1, n, p)
    exact = min(1.0, 2 * min(low, high))
    assert 2 * stats.norm.sf(abs(z)) == pytest.approx(exact, rel=1e-6)
    assert np.sign(z) == (0 if exact == 1 else (1 if high < low else -1))


def test_binomial_score_of_no_event_at_a_tiny_mean_passes_any_two_sided_test():
    z = binomial_score(0, 100, 1e-9)          # expected 1e-7 events, none seen
    assert z == 0.0


def test_merge_sparse_keeps_totals_and_reaches_the_minimum():
    rng = np.random.default_rng(0)
    exp = rng.exponential(1.0, size=500)
    obs = rng.poisson(exp)
    o, e = merge_sparse(obs, exp)
    assert o.sum() == obs.sum() and math.isclose(e.sum(), exp.sum())
    assert e.min() >= 5.0 and e.size >= 50


def test_pearson_is_infinite_when_a_count_lands_where_none_is_possible():
    stat, _ = pearson([10, 5, 1], [12, 4, 0])
    assert stat == math.inf


@pytest.mark.parametrize("df", [1, 2, 63, 999])
def test_mde_is_the_effect_with_half_power(df):
    c = chi2_check("c", "s", 0.0, df, n=10_000)
    level = 1e-6
    w = c.mde(level)
    crit = stats.chi2.isf(level, df)
    assert stats.ncx2.sf(crit, df, 10_000 * w * w) == pytest.approx(0.5, abs=1e-4)
    assert lambda50(df, crit) > crit - df  # power 1/2 needs the mean shifted about to crit


def test_other_id_weights_follow_the_uniform_draw():
    orig = np.zeros(CONFIG.n_tokens + 1, np.int64)
    orig[10] = 7
    w = other_id_weights(CONFIG, 100, orig)
    assert w[1] == 0                  # mask_token is never visible as a random id
    assert w[10] == 93 and w[11] == 100 and w[0] == 100
    assert coarse_drawable_counts(CONFIG, 64).sum() == CONFIG.n_tokens - 1


def masker_checks_names(config) -> list[str]:
    """The names of one masker's statistical checks under `config` (from empty counts)."""
    from verify.token.checks import masker_checks
    from verify.token.counts import Counts
    return [c.name for c in masker_checks(Counts(config, 128, 2, 2, "cpu").host(), config, "m")]


def _calibration(runs: int, tokens: int, masker: str = "torch"):
    """For `runs` seeded runs at alpha 0.1: each check's p-values and the number of alarms."""
    p_values, alarms = collections.defaultdict(list), 0
    for seed in range(runs):
        # calls of 2^15 tokens: enough calls for the per-call and consecutive-call checks
        report = check_masker(masker, CONFIG, tokens=tokens, seed=10_000 + seed, alpha=0.1,
                              chunk=1 << 15)
        alarms += not report.passed
        for c in report.stat:
            p_values[c.name].append(c.p_value)
    return p_values, alarms


def _non_uniform(p_values: dict, level: float) -> dict:
    bad = {}
    for name, p in p_values.items():
        # discrete or Bonferroni tests are conservative by construction: one-sided KS
        side = "greater" if "extreme" in name or "between replays" in name \
            or "all shifts" in name else "two-sided"
        ks = stats.kstest(p, "uniform", alternative=side).pvalue
        if ks < level / len(p_values):
            bad[name] = ks
    return bad


def test_a_correct_masker_passes_at_the_stated_rate_and_its_p_values_are_uniform():
    """Calibration: 500 seeded runs of a correct masker at a loose alpha. Each check's
    p-values must look uniform (two-sided KS; one-sided for the Bonferroni extreme-id test,
    which is conservative by construction), and the share of runs with a false alarm must not
    exceed the family-wise alpha beyond binomial noise."""
    runs, alpha = 500, 0.1
    p_values, alarms = _calibration(runs, 1 << 18)
    assert len(p_values) == len(masker_checks_names(CONFIG))
    bad = _non_uniform(p_values, 1e-4)
    assert not bad, f"p-values not uniform (KS p-value per check): {bad}"
    assert alarms <= stats.binom.isf(1e-5, runs, alpha), f"{alarms} of {runs} runs false-alarmed"


@pytest.mark.slow
@pytest.mark.parametrize("masker", ["numpy", "torch", "jax"])
def test_calibration_holds_over_many_runs_for_each_backend(masker):
    """The long form (2 to 5 minutes per backend on 2 cores): 1,000 runs of 2^18 tokens."""
    runs = 1000
    p_values, alarms = _calibration(runs, 1 << 18, masker)
    bad = _non_uniform(p_values, 1e-4)
    assert not bad, f"p-values not uniform (KS p-value per check): {bad}"
    assert alarms <= stats.binom.isf(1e-5, runs, 0.1), f"{alarms} of {runs} runs false-alarmed"


def test_a_miscalibrated_check_would_be_caught_by_the_calibration_test():
    """The calibration test has teeth: a chi-square referred to one degree of freedom too few
    (3 vs 2, anti-conservative) or too many (2 vs 3, conservative) makes 500 p-values clearly
    non-uniform, while the right reference passes."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        for true_df, used_df in ((3, 2), (2, 3)):
            draws = rng.chisquare(true_df, size=500)
            assert stats.kstest(stats.chi2.sf(draws, used_df), "uniform").pvalue < 1e-4 / 12
            assert stats.kstest(stats.chi2.sf(draws, true_df), "uniform").pvalue > 1e-4 / 12
