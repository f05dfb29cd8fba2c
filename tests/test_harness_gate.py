"""The gate's verdicts mean something: usage errors are raised before any masker runs, a run
with nothing to test is never a PASS, and the inputs include replays and text-like batches."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlm_ref import MaskingConfig  # noqa: E402
from tests.broken_maskers import Correct  # noqa: E402
from verify import check_masker  # noqa: E402
from verify.token.counts import Counts  # noqa: E402
from verify.token.inputs import SyntheticBatches  # noqa: E402
from verify.token.plan import parse_effect, plan  # noqa: E402
from verify.engine.primitives import holm  # noqa: E402
from verify.token.verdicts import Report  # noqa: E402
from verify.token.checks import masker_checks  # noqa: E402
from verify.token.power.call_shapes import SHAPES  # noqa: E402

CONFIG = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
KWARGS = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=100)


class Recording(Correct):
    calls = 0

    def __call__(self, x):
        Recording.calls += 1
        return super().__call__(x)


@pytest.mark.parametrize("kwargs, error", [
    (dict(tokens=1.5), ValueError), (dict(tokens="1e6"), TypeError), (dict(tokens=0), ValueError),
    (dict(tokens=float("inf")), ValueError), (dict(tokens=True), TypeError),
    (dict(seed=1.5), TypeError), (dict(seed=-5), ValueError), (dict(seed=2**64), ValueError),
    (dict(alpha=0.0), ValueError), (dict(alpha="0.1"), TypeError),
    (dict(layout="rows"), ValueError)])
def test_a_usage_error_is_raised_before_any_masker_runs(kwargs, error):
    Recording.calls = 0
    with pytest.raises(error):
        check_masker(Recording(**KWARGS), CONFIG, **{"tokens": 10_000, **kwargs})
    assert Recording.calls == 0


def test_a_whole_number_float_is_a_token_count():
    report = check_masker(Correct(**KWARGS), CONFIG, tokens=2e5, seed=1)
    assert report.tokens == 200_000 and report.passed


def test_a_configuration_with_nothing_eligible_is_refused_not_passed():
    """With four ids, all special, nothing can be selected: even labml's 0.81/0.09/0.10 split
    would 'pass' every check. The harness refuses to run."""
    nothing = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=4)
    Recording.calls = 0
    with pytest.raises(ValueError, match="nothing to test"):
        check_masker(Recording(padding_token=0, mask_token=1, no_mask_tokens=[2, 3],
                               n_tokens=4), nothing, tokens=10_000)
    assert Recording.calls == 0


def test_a_run_whose_statistical_checks_all_lack_data_is_inconclusive_not_a_pass():
    h = Counts(CONFIG, 128, 2, 2, "cpu").host()          # nothing counted
    checks = masker_checks(h, CONFIG, "m")
    holm(checks, 1e-5)
    report = Report(config=CONFIG, alpha=1e-5, seed=0, tokens=1, device="cpu", checks=checks,
                    skipped={}, counts={"m": h})
    assert not report.failures and report.inconclusive == ["m"]
    assert not report.passed and report.verdict == "INCONCLUSIVE"
    assert "INCONCLUSIVE" in str(report) and report.to_dict()["verdict"] == "INCONCLUSIVE"


def test_calls_come_in_pairs_that_replay_the_same_batch():
    batches = SyntheticBatches(CONFIG, 64, 32, "cpu", seed=3)
    first, again, fresh = batches(4), batches(5), batches(6)
    assert torch.equal(first, again) and not torch.equal(first, fresh)
    again[0, 0] = 99                                  # a masker writing into its input...
    assert not torch.equal(batches(5), again)         # ...does not change the replay


def test_text_like_columns_repeat_frequent_ids_and_have_segments():
    x = SyntheticBatches(CONFIG, 128, 256, "cpu", seed=0)(0)
    counts = np.bincount(x.flatten().numpy(), minlength=100)[4:]
    assert counts.max() > 5 * np.median(counts)       # Zipfian: a few ids dominate
    seps = (x == 3).sum(0)
    assert (seps >= 2).any()                          # several [SEP]-closed segments


def test_the_batch_seq_layout_feeds_the_transpose_and_our_maskers_pass_in_it():
    seen = []

    class BatchFirst(Correct):
        def __call__(self, x):
            seen.append(tuple(x.shape))
            return super().__call__(x)

    report = check_masker(Correct(**KWARGS), CONFIG, tokens=200_000, seed=2, layout="batch-seq")
    assert report.passed, str(report)
    check_masker(BatchFirst(**KWARGS), CONFIG, tokens=10_000, seed=2, layout="batch-seq")
    # [batch, seq_len]: the run's calls 78 < 128, the extra runs each call shape transposed
    assert seen and seen[0] == (78, 128)
    assert set(seen) <= {seen[0]} | {(batch, seq) for seq, batch in SHAPES}


def test_the_planner_needs_more_tokens_for_smaller_effects_and_more_power():
    rows = plan(CONFIG, ["selection=0.1505", "selection=0.16", "split=0.81,0.09,0.10"],
                alpha=1e-5, n_checks=40, share=0.7)
    small, large, split = (r["tokens"] for r in rows)
    assert small[0.5] > 100 * large[0.5] and small[0.95] > small[0.5]
    assert split[0.95] > split[0.5] > 0
    with pytest.raises(ValueError):
        parse_effect("split=0.8,0.1")


def test_cli_plan_prints_the_tokens_needed_and_runs_no_masker(capsys):
    from verify import stats
    Recording.calls = 0
    code = stats.main(["--plan", "--masker", "tests.test_harness_gate:Recording",
                       "--effect", "selection=0.16", "--effect", "split=0.81,0.09,0.10",
                       "--no-mask-tokens", "2", "3", "--n-tokens", "100"])
    out = capsys.readouterr().out
    assert code == 0 and Recording.calls == 0
    cfg = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
    per_masker = len(masker_checks(Counts(cfg, 128, 2, 2, "cpu").host(), cfg, "m"))
    assert "selection=0.16" in out and "95% power" in out
    assert f"alpha/m = 1e-05/{per_masker} " in out    # one masker: its checks, no pairs


def test_cli_refuses_a_configuration_with_nothing_to_test_before_any_masker_runs(capsys):
    from verify import stats
    Recording.calls = 0
    code = stats.main(["--masker", "tests.test_harness_gate:Recording", "--n-tokens", "4",
                       "--tokens", "1e4", "--no-progress"])
    assert code == 2 and Recording.calls == 0
    assert "nothing to test" in capsys.readouterr().err
