"""The whole-word gate's joint laws and realistic inputs: draws shared between words are named,
word ids as tokenizers give them are fed, maskers that derive words or take `[batch, seq_len]`
are tested as they are, and the new checks are calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from mlm_ref import word_ids_from_pieces
from mlm_ref.config import MaskingConfig
from verify import check_wwm_masker
from verify.words.pair_words import PairWords, spell_pieces
from verify.words.wwm_counts import word_runs
from verify.words.wwm_joint import (JOINT_STATISTICAL, concordance_moments,
                                      concordance_sums)
from verify.stats import main

from .wwm_broken_joint import (BROKEN_JOINT, CAUGHT_BY_JOINT, BatchFirst, OffsetsWords,
                               PiecesWords)
from .wwm_maskers import CorrectWWM

KWARGS = dict(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=1000)
CONFIG = MaskingConfig(**KWARGS)
TOKENS = 1_000_000
CI_TOKENS = 2_000_000      # the CI size: the 1/V cells need it
DISCRETE = {"random pieces of a word equal their original at rate 1/V'",   # exact binomial
            "random pieces of a word show [MASK] at rate 1/V'",            # p-values: never
            "random ids of a word differ between replays (same input, new seed)"}  # below U


def _simulated_z(draw_classes, calls=40, groups=300, seed=0):
    """z of the concordance statistic over simulated calls: 3 strata with their own laws,
    groups of 2..12 items, classes from `draw_classes(rng, laws_of_items, group)`."""
    rng = np.random.default_rng(seed)
    laws = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.5, 0.25, 0.25]])
    sums = []
    for _ in range(calls):
        group = np.repeat(np.arange(groups), rng.integers(2, 13, groups))
        stratum = rng.integers(0, 3, group.size)
        cls = draw_classes(rng, laws[stratum], group)
        sums.append(concordance_sums(group, stratum, cls, groups, 3, 3))
    t, var, _ = concordance_moments(sums)
    return t / np.sqrt(var)


def _independent(rng, p, group):
    return (rng.random(p.shape[0])[:, None] > np.cumsum(p, 1)).sum(1)


def _shared(rng, p, group):
    return (rng.random(group.max() + 1)[group][:, None] > np.cumsum(p, 1)).sum(1)


def _alternating(rng, p, group):
    """Within a group, classes alternate between 0 and the rest: too few equal pairs."""
    cls = _independent(rng, p, group)
    first = np.r_[True, group[1:] != group[:-1]]
    rank = np.arange(group.size) - np.maximum.accumulate(np.where(first, np.arange(group.size),
                                                                  0))
    return np.where(rank % 2 == 0, 0, np.maximum(cls, 1))


def test_concordance_is_centred_for_independent_draws_and_moves_for_shared_or_regular():
    z = [_simulated_z(_independent, seed=s) for s in range(4)]
    assert all(abs(v) < 4 for v in z), z
    assert _simulated_z(_shared) > 10
    assert _simulated_z(_alternating) < -10


def test_concordance_ignores_a_wrong_marginal_law():
    """Every item of one class (a wrong law, not a dependence): the statistic stays at 0."""
    def constant(rng, p, group):
        return np.zeros(p.shape[0], np.int64)
    sums = [concordance_sums(np.arange(40) // 4, np.zeros(40, int), constant(None, np.ones(
        (40, 3)), None), 10, 1, 3) for _ in range(3)]
    t, var, pairs = concordance_moments(sums)
    assert t == pytest.approx(0.0, abs=1e-9) and var == pytest.approx(0.0, abs=1e-9)


def test_every_joint_defect_names_a_joint_check():
    assert set(CAUGHT_BY_JOINT) == set(BROKEN_JOINT)


@pytest.mark.parametrize("defect", sorted(BROKEN_JOINT))
def test_joint_defect_is_caught_by_its_check(defect):
    tokens = CI_TOKENS if "never the original" in defect else TOKENS
    report = check_wwm_masker(BROKEN_JOINT[defect](**KWARGS), CONFIG, tokens=tokens, seed=7)
    failed = {c.name for c in report.failures}
    assert CAUGHT_BY_JOINT[defect] in failed, f"{defect}: failed {sorted(failed)}\n{report}"


@pytest.mark.parametrize("masker", [PiecesWords, OffsetsWords])
def test_a_masker_that_derives_words_from_pieces_or_offsets_passes(masker):
    report = check_wwm_masker(masker(**KWARGS), CONFIG, tokens=TOKENS, seed=3)
    assert report.passed, str(report)


def test_layout_batch_seq_feeds_batch_first_maskers():
    good = check_wwm_masker(BatchFirst(**KWARGS), CONFIG, tokens=300_000, seed=1)
    assert "words all-or-nothing" in {c.name for c in good.failures}
    from verify import check_wwm_maskers
    report = check_wwm_maskers([BatchFirst(**KWARGS)], CONFIG, tokens=TOKENS, seed=1,
                               layout="batch-seq")
    assert report.passed, str(report)
    with pytest.raises(ValueError, match="outside maskers"):
        check_wwm_maskers(["numpy"], CONFIG, tokens=TOKENS, layout="batch-seq")


def test_pair_words_have_word_ids_as_tokenizers_give_them():
    b = PairWords(CONFIG, 128, 512, seed=5)(0)
    x, w = b.x, b.word_ids
    sep = (x == 3) & (w == -1)
    assert (sep.sum(0) >= 2).all() and (x[0] == 2).all() and (w[0] == -1).all()
    assert (sep[1:] & sep[:-1]).any()                              # [SEP] [SEP]
    restart = same_across = 0
    for c in range(w.shape[1]):
        rows = np.flatnonzero(sep[:, c])
        a, bb = w[1:rows[0], c], w[rows[0] + 1:rows[-1], c]
        a, bb = a[a >= 0], bb[bb >= 0]
        if a.size and bb.size:
            restart += bb.min() == 0 and a.max() > 0
            same_across += a[-1] == bb[0] and bb[0] > 0
    assert restart > 100 and same_across > 5
    pad = x == 0
    assert (w[pad & (np.cumsum(pad[::-1], 0)[::-1] > 0) & (x == 0)].min() >= -1)
    pieces = spell_pieces(b, CONFIG)
    derived = word_ids_from_pieces([list(col) for col in pieces.T], "wordpiece")
    assert np.array_equal(word_runs(derived)[0], word_runs(w)[0])


def test_cli_wwm_plan_and_layout(capsys):
    assert main(["--wwm", "--tokens", "2e5", "--plan"]) == 0
    out = capsys.readouterr().out
    for name in JOINT_STATISTICAL:
        assert name in out
    assert "false-alarm share" in out and "MDE" in out
    assert main(["--wwm", "--tokens", "3e5", "--layout", "batch-seq",
                 "--masker", "tests.wwm_broken_joint:BatchFirst"]) == 0
    assert main(["--wwm", "--tokens", "3e5", "--layout", "batch-seq",
                 "--masker", "numpy"]) == 2
    assert main(["--wwm", "--tokens", "3e5", "--plot", "x"]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_joint_checks_are_calibrated():
    """200 seeded runs of the correct masker: each new check's p-values uniform (KS at 1e-3;
    one-sided for the exact binomial counts, whose discrete p-values are conservative)."""
    from scipy import stats
    p_values = {}
    for seed in range(200):
        report = check_wwm_masker(CorrectWWM(**KWARGS), CONFIG, tokens=300_000,
                                  seed=10_000 + seed, alpha=0.1)
        for c in report.stat:
            if c.name in JOINT_STATISTICAL:
                p_values.setdefault(c.name, []).append(c.p_value)
    assert set(p_values) == set(JOINT_STATISTICAL)
    for name, p in p_values.items():
        side = "greater" if name in DISCRETE else "two-sided"
        assert stats.kstest(p, "uniform", alternative=side).pvalue > 1e-3, name


def test_hugging_face_whole_word_mode_fails_no_joint_check():
    """Its words are all [MASK] (a wrong law, named by the split checks), but its draws are
    independent between words and calls: no joint check may fire."""
    pytest.importorskip("transformers")
    report = check_wwm_masker("hf-wwm", CONFIG, tokens=TOKENS, seed=2)
    failed = {c.name for c in report.failures}
    assert "word outcome split (all [MASK], all original, all other, mixed)" in failed
    assert not failed & set(JOINT_STATISTICAL), sorted(failed)


def test_two_sided_binomial_score_doubles_the_smaller_exact_tail():
    from scipy import stats

    from verify.words.wwm_cells import two_sided_binomial_score
    for k, n, q in [(0, 10, 1e-3), (0, 19_000, 1e-3), (5, 19_000, 1e-3), (40, 19_000, 1e-3),
                    (19, 19_000, 1e-3), (3, 20, 0.5)]:
        z = two_sided_binomial_score(k, n, q)
        exact = min(1.0, 2 * min(stats.binom.cdf(k, n, q), stats.binom.sf(k - 1, n, q)))
        assert 2 * stats.norm.sf(abs(z)) == pytest.approx(exact, rel=1e-6)
        assert (z < 0) == (exact < 1 and stats.binom.cdf(k, n, q) < stats.binom.sf(k - 1, n, q))
