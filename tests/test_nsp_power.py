"""The NSP gate sees what docs/nsp.md promises beyond the label: pairs redrawn each epoch, where
random B starts and which document it comes from, how far B is read, how each side is cut, the
assembled input, and any clear refusal of a one-document corpus. Each realistic defect of
tests/nsp_defects.py fails the check that names it; correct generators pass; the new checks'
p-values are uniform under the null (slow)."""

import functools

import numpy as np
import pytest
from scipy import stats

from mlm_ref.nsp import make_pairs
from tests import nsp_defects
from tests.nsp_thirdparty import ThirdParty, empty_for_one_document, thirdparty
from verify import check_nsp
from verify.sentence_pairs.nsp_corpus import synthetic_corpus
from verify.sentence_pairs.nsp_draws import CUT_CHECKS, START_BY_LENGTH
from verify.sentence_pairs.nsp_epochs import EPOCH_CHECKS, binomial_check
from verify.sentence_pairs.nsp_pairs import ASSEMBLED, assembled_checks

PAIRS = 2500
# defects whose check needs more pairs than PAIRS for a sure failure (the start weighted by
# length: z about 9 at the CI size of 20,000 pairs, 3 at 2,500)
PAIRS_FOR = {"start_by_token": 12000}
NEW_STATISTICAL = (*EPOCH_CHECKS, "B reaches the target (IsNext)",
                   "B reaches the target (random next)",
                   "random B's document uniform over document sizes",
                   "random B's document uniform over the corpus order",
                   "random B's documents spread as independent draws",
                   "random B starts at a uniform sentence", START_BY_LENGTH, *CUT_CHECKS)
# bounds, rare-event counts, Bonferroni maxima and exact binomials over a few hundred
# documents (atoms of about 0.05 at 1,500 pairs): conservative p-values (never below uniform)
CONSERVATIVE = {"B reaches the target (IsNext)", "B reaches the target (random next)",
                "random B redrawn each epoch", "labels redrawn each epoch",
                "labels independent of nearby documents in the other epoch"}


@functools.lru_cache(maxsize=None)
def _report(name):
    return check_nsp(getattr(nsp_defects, name), pairs=PAIRS_FOR.get(name, PAIRS), seed=1)


@pytest.mark.parametrize("name", list(nsp_defects.DEFECTS))
def test_each_realistic_defect_fails_the_check_that_names_it(name):
    report = _report(name)
    check = nsp_defects.DEFECTS[name][1]
    assert check in {c.name for c in report.failures}, str(report)
    failed = next(c for c in report.failures if c.name == check)
    assert failed.detail        # expected vs observed, in words


@pytest.mark.parametrize("generator", [thirdparty, empty_for_one_document, "ours"],
                         ids=["thirdparty-assembled", "thirdparty-tuples", "ours"])
def test_correct_generators_pass_every_new_check(generator):
    report = check_nsp(generator, pairs=PAIRS, seed=2)
    assert report.passed, str(report)
    applicable = {c.name for c in report.checks if c.applicable}
    assert set(NEW_STATISTICAL) <= applicable
    assert ("one-document corpus refused" in applicable and
            (set(ASSEMBLED) <= applicable) == (generator is thirdparty))


class _RefusesWith(ThirdParty):
    """Correct, refusing a one-document corpus with an exception of any type."""

    def __init__(self, error):
        self.error = error

    def __call__(self, documents, *, seed, epoch=0, max_seq_len=128):
        if sum(1 for d in documents if any(len(s) for s in d)) < 2:
            raise self.error("only one document")
        return super().__call__(documents, seed=seed, epoch=epoch, max_seq_len=max_seq_len)


@pytest.mark.parametrize("error", [ValueError, IndexError, KeyError, AssertionError])
def test_any_clear_refusal_of_a_one_document_corpus_passes(error):
    report = check_nsp(_RefusesWith(error), pairs=300, seed=0)
    check = next(c for c in report.checks if c.name == "one-document corpus refused")
    assert check.passed and report.passed, str(report)


def test_pairs_from_a_one_document_corpus_fail_the_refusal_check():
    report = check_nsp(nsp_defects.DEFECTS["epoch_ignored"][0](), pairs=300, seed=0)
    assert "one-document corpus refused" not in {c.name for c in report.failures}
    report = check_nsp("google", pairs=300, seed=0)
    failed = next(c for c in report.failures if c.name == "one-document corpus refused")
    assert "made 2 pairs" in failed.detail


def test_the_epoch_comparison_runs_even_when_one_epoch_gives_enough_pairs():
    report = check_nsp("ours", pairs=100, seed=0)
    assert report.epochs == 2
    assert all(c.applicable for c in report.checks if c.name in EPOCH_CHECKS)


def _pair_dicts(**change):
    corpus = synthetic_corpus(60, seed=0)
    out = []
    for p in make_pairs(corpus.documents, seed=0)[:40]:
        ids, types = p.inputs(cls_id=1, sep_id=2)
        out.append({"tokens_a": p.tokens_a, "tokens_b": p.tokens_b,
                    "is_random_next": p.is_random_next, "input_ids": ids,
                    "token_type_ids": types, **{k: f(p, ids, types) for k, f in change.items()}})
    return out


def _violations(pairs):
    return [c.violations for c in assembled_checks(pairs, "g")]


def test_the_assembled_form_of_mlm_ref_pairs_is_accepted_exactly():
    assert _violations(_pair_dicts()) == [0, 0]
    padded = _pair_dicts(input_ids=lambda p, i, t: np.concatenate([i, np.zeros(7, np.int64)]),
                         token_type_ids=lambda p, i, t: np.concatenate([t, np.zeros(7, int)]),
                         attention_mask=lambda p, i, t: np.arange(i.size + 7) < i.size)
    assert _violations(padded) == [0, 0]
    assert not any(c.applicable for c in assembled_checks([(1, 2, 0)], "g"))


@pytest.mark.parametrize("change, which", [
    ({"input_ids": lambda p, i, t: np.concatenate([i[:-1], [3]])}, 0),   # last [SEP] differs
    ({"input_ids": lambda p, i, t: np.where(np.arange(i.size) == 0, 7, i)}, None),
    ({"token_type_ids": lambda p, i, t: np.roll(t, -1)}, 1),
    ({"attention_mask": lambda p, i, t: np.ones(i.size + 1, np.int64)}, 0),
])
def test_each_assembled_mistake_is_named(change, which):
    pairs = _pair_dicts(**change)
    if which is None:        # [CLS] id changes from pair 0 to pair 1
        pairs[0]["input_ids"] = pairs[0]["input_ids"].copy()
        pairs[0]["input_ids"][0] = 1
        which = 0
    assert _violations(pairs)[which] > 0


def test_binomial_check_is_two_sided_and_states_its_mde():
    c = binomial_check("x", "g", 40, 1000, 1e-3, "share", "d")
    c.settle(1e-6, c.rejects(1e-6))
    assert c.failed and 0 < c.mde_value < 0.05
    low = binomial_check("x", "g", 0, 1000, 1e-3, "share", "d")
    assert not low.rejects(1e-6) and low.p_value > 0.5      # 0 of 1000 is no evidence


def _calibration_runs(runs: int = 200):
    """Each new statistical check's p-values over `runs` seeded runs of ours at alpha 0.1,
    and the number of runs in which any check raised an alarm."""
    p_values, alarms = {}, 0
    for seed in range(runs):
        report = check_nsp("ours", pairs=1500, seed=1000 + seed, alpha=0.1)
        alarms += not report.passed
        for c in report.checks:
            if c.name in NEW_STATISTICAL and c.applicable:
                p_values.setdefault(c.name, []).append(c.p_value)
    return p_values, alarms


_calibration = functools.lru_cache(maxsize=1)(_calibration_runs)


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW_STATISTICAL)
def test_each_new_check_is_calibrated_over_200_seeds(name):
    """Under the null (ours), a new check's p-values are uniform (one-sided KS for the bound
    and rare-count checks, which are conservative by construction) and the gate's false-alarm
    share at alpha 0.1 stays within binomial noise of 0.1."""
    p_values, alarms = _calibration()
    p = p_values[name]
    assert len(p) >= 200
    side = "greater" if name in CONSERVATIVE else "two-sided"
    assert stats.kstest(p, "uniform", alternative=side).pvalue > 1e-3, name
    assert alarms <= stats.binom.isf(1e-3, 200, 0.1)


def test_pearson_over_blocks_with_fixed_totals_has_one_constraint_per_block():
    """Rows of a table whose totals are fixed (random pairs per A's group) each lose one
    degree of freedom: over 8 x 8 cells the statistic's null mean is 56, not 63."""
    from verify.sentence_pairs.nsp_draws import blockwise_pearson
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.ones(8) * 5, size=8)
    block = np.repeat(np.arange(8), 8)
    expected = (shares * 200).ravel()
    stats_ = []
    for _ in range(1000):
        observed = np.concatenate([rng.multinomial(200, s) for s in shares])
        stat, df = blockwise_pearson(observed, expected, block)
        stats_.append(stat)
    assert df == 56
    assert abs(np.mean(stats_) - 56) < 1.5      # standard error about 0.33
