"""The pipeline gate's order, coverage, model-input and whole-word checks, its report and its
seed: our pipelines pass; each broken pipeline of `tests/pipelines_stream.py` fails the check
that names its defect, at the CI size (768 examples, 2 epochs, 2 ranks, batches of 16).

False alarms: the new exact checks cannot fail for a pipeline that keeps the contract of
docs/pipelines.md ("What a pipeline promises"); the two reshuffle checks are in the run's Holm
family (1e-5); `test_reshuffle_checks_are_calibrated` holds their p-values to uniformity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tests import pipelines as P
from tests import pipelines_stream as S
from verify.pipeline import assert_pipeline_conforms, check_pipeline
from verify.stream.collect import Batch, Rows, Stream, decode
from verify.stream.pipeline_order import ORDER_CHECKS, order_checks

ATTENTION = "attention_mask is 1 exactly on real tokens"
SEGMENTS = "token_type_ids are segment ids (0, then 1 after a [SEP]; 0 on padding)"
SIGHTINGS = "attention_mask and token_type_ids are the same at every sighting"
COVERAGE = "every example is seen in every epoch"
SHARE = "every rank gets its 1/world_size share"


def _failed(report) -> set[str]:
    return {c.name for c in report.failures}


def _applicable(report) -> set[str]:
    return {c.name for c in report.checks if c.applicable}


def test_our_pipeline_with_indices_passes_every_order_and_coverage_check():
    report = assert_pipeline_conforms(S.ours_indexed, P.CONFIG, epochs=2, world_size=2)
    assert set(ORDER_CHECKS) <= _applicable(report)


def test_our_sentence_pairs_pass_the_attention_and_segment_checks():
    report = assert_pipeline_conforms(S.ours_pairs, P.CONFIG, epochs=2, world_size=2)
    assert {ATTENTION, SEGMENTS, SIGHTINGS} <= _applicable(report)


def test_our_whole_word_pipeline_is_gated_with_the_whole_word_checks_and_passes():
    report = assert_pipeline_conforms(S.ours_whole_words, P.CONFIG, epochs=2, world_size=2)
    assert report.words and "words all-or-nothing" in _applicable(report)
    assert "word selection rate" in _applicable(report)
    assert "selection independent of neighbouring positions" not in _applicable(report)
    assert report.to_dict()["mode"] == "pipeline-wwm"


@pytest.mark.parametrize("pipeline", sorted(S.BROKEN))
def test_a_broken_pipeline_fails_the_check_that_names_its_defect(pipeline):
    report = check_pipeline(getattr(S, pipeline), P.CONFIG, epochs=2, world_size=2)
    missing = S.BROKEN[pipeline] - _failed(report)
    assert report.verdict == "FAIL" and not missing, f"{pipeline} passed {missing}:\n{report}"
    assert not {"pipeline runs without error", "every (epoch, rank) yields batches"} & \
        _failed(report), report.failure_message()
    if pipeline in S.CAUSES:
        assert S.CAUSES[pipeline] in (report.likely_cause or ""), report.likely_cause


def test_a_missing_set_epoch_is_named_as_the_likely_cause_and_rows_by_epoch_rank_batch():
    report = check_pipeline(S.set_epoch_never_called, P.CONFIG, epochs=2, world_size=2)
    assert len(report.failures) > 4
    assert report.likely_cause.startswith("set_epoch is not called")
    text = str(report)
    assert "likely cause: set_epoch is not called" in text
    assert f"it explains all {len(report.failures)} failures" in text
    repeat = next(c for c in report.failures if c.name.startswith("no mask pattern repeats"))
    assert "epoch 0, rank" in repeat.detail and ", batch " in repeat.detail and \
        ", row " in repeat.detail and "of the stream" not in repeat.detail
    assert "no seed (the pipeline seeds itself)" in text and "seed 0" not in text


def test_a_whole_word_pipeline_whose_batches_hide_the_words():
    """Gated token by token, correct whole-word masks fail (the laws differ): the report says
    why; with wwm=True the missing word ids are the failure."""
    report = check_pipeline(S.ours_whole_words_unlabelled, P.CONFIG, epochs=1, world_size=2)
    assert "word_ids" in (report.likely_cause or ""), report
    report = check_pipeline(S.ours_whole_words_unlabelled, P.CONFIG, epochs=1, world_size=2,
                            wwm=True)
    assert "batches carry word_ids" in _failed(report)


def test_the_seed_is_passed_to_a_pipeline_that_takes_it_and_refused_to_one_that_does_not():
    seen = []

    def seeded(*, epoch, rank, world_size, seed=7):
        seen.append(seed)
        return P.ours(epoch=epoch, rank=rank, world_size=world_size, seed=seed)

    report = check_pipeline(seeded, P.CONFIG, epochs=1, world_size=1, seed=3, max_batches=2)
    assert seen == [3] and "seed 3 (passed to the pipeline)" in str(report)
    assert report.to_dict()["pipeline_seed"] == 3
    seen.clear()
    check_pipeline(seeded, P.CONFIG, epochs=1, world_size=1, max_batches=2)
    assert seen == [7]                     # no seed asked for: the pipeline's own default

    def unseeded(*, epoch, rank, world_size):
        raise AssertionError("must not run")
    with pytest.raises(ValueError, match="takes no seed keyword"):
        check_pipeline(unseeded, P.CONFIG, seed=3)
    with pytest.raises(TypeError, match="seed must be an int"):
        check_pipeline(seeded, P.CONFIG, seed=1.5)


def test_the_dataset_size_makes_examples_never_seen_count():
    report = check_pipeline(S.ours_indexed, P.CONFIG, epochs=2, world_size=2, examples=770)
    coverage = next(c for c in report.checks if c.name == COVERAGE)
    assert coverage.failed and "leaves out 2 of 770" in coverage.detail


def test_drop_last_allows_the_loaders_drop_and_no_shuffle_the_fixed_order():
    report = check_pipeline(S.truncated_epoch, P.CONFIG, epochs=2, world_size=2, drop_last=True)
    assert not {COVERAGE, SHARE} & _failed(report), report.failure_message()
    report = check_pipeline(S.sampler_not_reshuffled, P.CONFIG, epochs=2, world_size=2,
                            shuffle=False)
    assert report.passed and not set(ORDER_CHECKS[5:]) & _applicable(report)


def test_decode_keeps_the_optional_keys_and_refuses_bad_shapes():
    b = decode({"input_ids": [[101, 5, 102]], "labels": [[-100, 5, -100]],
                "attention_mask": np.array([[True, True, True]]), "index": [4]}, 0, 0, 0)
    assert b.fields["attention_mask"].dtype == np.int64 and b.fields["index"].tolist() == [4]
    with pytest.raises(ValueError, match="index has 2 entries"):
        decode({"input_ids": [[1]], "labels": [[1]], "index": [1, 2]}, 0, 0, 0)
    with pytest.raises(ValueError, match="token_type_ids"):
        decode({"input_ids": [[1, 2]], "labels": [[1, 2]], "token_type_ids": [[0]]}, 0, 0, 0)


def _shuffled_stream(seed: int, n: int = 200, world: int = 2, epochs: int = 3) -> Stream:
    """A stream of `n` examples (index only), freshly shuffled each epoch, 8 per batch."""
    rng = np.random.default_rng(seed)
    batches = []
    for e in range(epochs):
        order = rng.permutation(n)
        for r in range(world):
            mine = order[r::world]
            for k in range(0, mine.size, 8):
                ids = np.full((mine[k:k + 8].size, 2), 1000, np.int64)
                batches.append(Batch(e, r, k // 8, ids, np.full(ids.shape, -100),
                                     {"index": mine[k:k + 8]}))
    return Stream(batches, epochs, world, ignore=-100)


@pytest.mark.slow
def test_reshuffle_checks_are_calibrated():
    """Under fresh uniform shuffles over 300 seeds: the position correlation's p-values are
    uniform (KS), the neighbours' Poisson tail is conservative (P(p <= a) <= a, with slack
    for 300 draws), and the exact checks never fail."""
    p = {name: [] for name in ORDER_CHECKS[5:]}
    for seed in range(300):
        stream = _shuffled_stream(seed)
        checks = order_checks(stream, Rows(stream, P.CONFIG), "s")
        assert not any(c.violations for c in checks if c.kind == "exact")
        for c in checks[5:]:
            p[c.name].append(c.p_value)
    assert stats.kstest(p[ORDER_CHECKS[6]], "uniform").pvalue > 1e-3
    neighbours = np.array(p[ORDER_CHECKS[5]])
    for a in (0.05, 0.1, 0.2):
        bound = a + 3 * math.sqrt(a * (1 - a) / neighbours.size)
        assert (neighbours <= a).mean() <= bound, (a, (neighbours <= a).mean())


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("pipeline", ["ours", "ours_indexed", "ours_pairs",
                                      "ours_whole_words"])
def test_our_pipelines_raise_no_false_alarm_over_seeds(pipeline, seed):
    fn = getattr(P, pipeline, None) or getattr(S, pipeline)
    assert_pipeline_conforms(fn, P.CONFIG, epochs=2, world_size=2, seed=seed)


def test_the_command_line_refuses_a_seed_for_a_pipeline_without_one():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "verify.pipeline",
                          "tests.pipelines_stream:sampler_not_reshuffled", "--seed", "3",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "takes no seed keyword" in out.stderr and \
        "Traceback" not in out.stderr, out.stderr


def test_the_command_line_refuses_plots_of_a_whole_word_stream(tmp_path):
    import subprocess
    import sys
    plots = tmp_path / "plots"
    for extra in (["tests.pipelines_stream:ours", "--wwm"],
                  ["tests.pipelines_stream:ours_whole_words", "--epochs", "1",
                   "--max-batches", "2"]):
        out = subprocess.run([sys.executable, "-m", "verify.pipeline", *extra, "--plot",
                              str(plots), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 2 and "--plot draws token-level counts" in out.stderr and \
            "Traceback" not in out.stderr, out.stderr
        assert not list(plots.glob("*.png"))     # the directory check may create it
