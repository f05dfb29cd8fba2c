"""The pipeline gate's whole-word path is calibrated: on a correct whole-word pipeline
(`MLMCollator` with `word_ids`) over 200 seeds, the p-values of the whole-word checks and of
the shared-selection checks on the word view are uniform (slow)."""

import functools

import pytest
from scipy import stats

from tests import pipelines as P
from tests import pipelines_stream as S
from verify.pipeline import check_pipeline
from verify.words.wwm_checks import WWM_STATISTICAL

RUNS = 200
# eight batches per (epoch, rank): about a sixth of the CI size, one second a run
MAX_BATCHES = 8
# conservative by construction (p-values never below uniform): exact binomial cells with a
# handful of expected hits, Bonferroni maxima over ids or alignments, one-sided bounds
CONSERVATIVE = {"random pieces of a word equal their original at rate 1/V'",
                "random pieces of a word show [MASK] at rate 1/V'",
                "random ids: most extreme single id", "random pieces of a word drawn independently"}
SHARED = ("an example seen again is masked afresh", "mask independently")


def _shared(name: str) -> bool:
    return name.startswith(SHARED[0]) or SHARED[1] in name


@functools.lru_cache(maxsize=1)
def _p_values() -> dict:
    """p-values of every applicable whole-word and shared-selection check over RUNS seeds."""
    p = {}
    for seed in range(RUNS):
        report = check_pipeline(S.ours_whole_words, P.CONFIG, epochs=2, world_size=2,
                                seed=10_000 + seed, alpha=0.1, max_batches=MAX_BATCHES)
        for c in report.checks:
            if c.kind == "statistical" and c.applicable and (
                    c.name in WWM_STATISTICAL or _shared(c.name)):
                p.setdefault(c.name, []).append(c.p_value)
    return p


@pytest.mark.slow
def test_whole_word_pipeline_checks_are_calibrated_over_200_seeds():
    p = _p_values()
    assert len([n for n in p if n in WWM_STATISTICAL]) >= 20 and any(map(_shared, p)), sorted(p)
    bad = {}
    for name, values in p.items():
        assert len(values) == RUNS, name
        side = "greater" if name in CONSERVATIVE or _shared(name) else "two-sided"
        ks = stats.kstest(values, "uniform", alternative=side).pvalue
        if ks < 1e-3 / len(p):
            bad[name] = ks
    assert not bad, f"p-values not uniform (KS p-value per check): {bad}"
