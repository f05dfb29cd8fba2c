"""The harness's own evidence: every planted defect is flagged, by the check built for it,
at the N used here, while correct maskers (ours and a plain third-party one) pass.

The runs are seeded, so these tests are deterministic; the default family-wise alpha (1e-5)
is the one a CI gate uses, so a pass here is a pass at the budget users get.
"""

import pytest
import torch

from mlm_ref import MaskingConfig
from tests.broken_maskers import BROKEN, Correct
from verify import assert_masker_conforms, check_masker, check_maskers

CONFIG = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
KWARGS = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=100)
TOKENS = 1_000_000  # the CI-sized N at which every defect below must be caught

# The check designed to catch each defect (others may fail as well).
CAUGHT_BY = {
    "overlapping categories": "category split (mask, original, other)",
    "skewed selection rate": "selection rate",
    "random-id range off by one": "random ids: most extreme single id",
    "biased random-id draw": "random ids uniform (ranges)",
    "masks repeated across calls": "selection independent of a replayed call (same input, new seed)",
    "masks shared across the batch": "selection independent of neighbouring batch columns",
    "never-selected position": "selection homogeneous over positions",
    "exact-count selection": "selected count per sequence ~ Binomial (dispersion)",
    "correlated neighbours": "selection independent of neighbouring positions",
    "input mutation": "input not mutated",
    "masked special tokens": "ineligible positions never selected",
    "wrong labels": "labels are padding or the original",
    "exact count per call": "selected count per call ~ Binomial (dispersion)",
    "quota per position": "selected count per position of a call ~ Binomial (dispersion)",
    "masks token types": "selected count per id in a call ~ Binomial (dispersion)",
    "one id never masked": "selection: most extreme single id",
    "category depends on the id": "category homogeneous over id ranges",
    "random ids near the original": "random ids independent of the original's id range",
    "random ids ignore the seed": "random ids differ between replays (same input, new seed)",
    "category depends on position": "category homogeneous over positions",
    "categories copy the neighbour": "category independent of neighbouring positions",
    "exact [MASK] share per sequence": "[MASK] count per sequence ~ Binomial (dispersion)",
    "quieter second segment": "selection homogeneous over segments",
    "at least one per sequence": "selection homogeneous over sequence lengths",
    "frequent ids less often": "selection homogeneous over in-call repeat classes",
    "drifting rate": "selection homogeneous over calls",
    "pool of masks": "no selection pattern repeats",
    "skips the last token": "selection homogeneous over neighbourhoods (left, right neighbour "
                            "eligible)",
}


def test_every_defect_has_a_designated_check():
    assert set(CAUGHT_BY) == set(BROKEN)


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_planted_defect_is_flagged_by_its_check(defect):
    report = check_masker(BROKEN[defect](**KWARGS), CONFIG, tokens=TOKENS, seed=7)
    failed = {c.name for c in report.failures}
    assert not report.passed, f"{defect} passed every check:\n{report}"
    assert CAUGHT_BY[defect] in failed, (
        f"{defect}: expected {CAUGHT_BY[defect]!r} to fail, failed: {sorted(failed)}\n{report}")


def test_overlapping_categories_failure_names_expected_and_observed():
    report = check_masker(BROKEN["overlapping categories"](**KWARGS), CONFIG, tokens=TOKENS,
                          seed=7)
    message = report.failure_message()
    line = next(m for m in message.splitlines() if "category split" in m)
    observed = float(line.split("observed (")[1].split(",")[0])
    assert "expected (0.80" in line and observed == pytest.approx(0.81, abs=0.003)


@pytest.mark.parametrize("seed", [7, 8])
def test_correct_third_party_masker_passes(seed):
    report = check_masker(Correct(**KWARGS), CONFIG, tokens=TOKENS, seed=seed)
    assert report.passed, str(report)


def test_our_three_backends_pass_alone_and_against_each_other():
    report = check_maskers(["numpy", "torch", "jax"], CONFIG, tokens=TOKENS, seed=7)
    assert report.passed, str(report)
    subjects = {c.subject for c in report.stat}
    assert {"numpy", "torch", "jax", "numpy vs torch", "numpy vs jax", "torch vs jax"} <= subjects
    assert not report.not_applicable


def test_cross_implementation_check_flags_a_masker_that_disagrees():
    # SkewedRate against our torch masker: the pairwise selection-rate test must object.
    from verify.token.adapters import resolve
    skewed = resolve(BROKEN["skewed selection rate"](**KWARGS), CONFIG)
    report = check_maskers([resolve("torch", CONFIG), skewed], CONFIG, tokens=TOKENS, seed=7)
    failed = {(c.subject, c.name) for c in report.failures}
    assert ("torch vs SkewedRate", "agreement: selection rate") in failed, failed


def test_assert_masker_conforms_raises_with_the_failing_check():
    with pytest.raises(AssertionError, match="selection rate"):
        assert_masker_conforms(BROKEN["skewed selection rate"](**KWARGS), CONFIG, tokens=TOKENS)
    assert assert_masker_conforms("torch", CONFIG, tokens=200_000).passed


UNUSUAL = {
    "random_exclude": dict(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100,
                           random_exclude=(0, 2, 3, 50)),
    "special ids above the vocabulary": dict(padding_token=101, mask_token=100,
                                             no_mask_tokens=(5,), n_tokens=100),
    "no no-mask tokens, 60/20/20": dict(padding_token=0, mask_token=1, n_tokens=50,
                                        randomize_prob=0.2, no_change_prob=0.2),
}


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_our_backends_pass_on_unusual_configs(name):
    config = MaskingConfig(**UNUSUAL[name])
    report = check_maskers(["numpy", "torch", "jax"], config, tokens=500_000, seed=3)
    assert report.passed, str(report)
    # without no-mask tokens there is no [SEP], hence no segments to compare
    no_segments = {"selection homogeneous over segments", "category homogeneous over segments"}
    assert {c.name for c in report.not_applicable} <= (no_segments if not config.no_mask_tokens
                                                       else set())


def test_a_masker_that_ignores_random_exclude_is_flagged():
    config = MaskingConfig(**UNUSUAL["random_exclude"])
    kwargs = {k: v for k, v in UNUSUAL["random_exclude"].items() if k != "random_exclude"}
    report = check_masker(Correct(**kwargs), config, tokens=TOKENS, seed=7)
    assert "replacements are [MASK], original or a drawable id" in {c.name for c in report.failures}


def test_a_masker_that_raises_or_reshapes_fails_an_exact_check_not_the_harness():
    def raises(x):
        raise RuntimeError("boom")

    def transposes(x):
        out, y = Correct(**KWARGS)(x)
        return out.T, y.T

    for masker, check in ((raises, "masker runs without error"),
                          (transposes, "outputs keep shape, dtype and device")):
        report = check_masker(masker, CONFIG, tokens=200_000)
        assert check in {c.name for c in report.failures}, str(report)


class _ReusesOutputBuffers(Correct):
    """A correct masker that writes every call's outputs into the same two tensors (one pair per
    shape), as a pipeline that preallocates its buffers does: the gate must count each call's
    outputs, not whatever the buffers hold when it gets to them."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.buffers = {}

    def __call__(self, x):
        out, y = super().__call__(x)
        if x.shape not in self.buffers:
            self.buffers[x.shape] = (torch.empty_like(out), torch.empty_like(y))
        kept_out, kept_y = self.buffers[x.shape]
        return kept_out.copy_(out), kept_y.copy_(y)


class _ReusesBuffersIgnoresSeed(_ReusesOutputBuffers):
    """Draws from its own generator, seeded once: the same seed does not give the same output."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.generator = torch.Generator().manual_seed(11)

    def select(self, x, eligible):
        return eligible & (torch.rand(x.shape, generator=self.generator) < self.p)


def test_a_masker_that_reuses_its_output_buffers_is_counted_call_by_call():
    report = check_masker(_ReusesOutputBuffers(**KWARGS), CONFIG, tokens=TOKENS, seed=7)
    assert report.passed, str(report)


def test_a_masker_that_reuses_its_buffers_and_ignores_the_seed_fails_determinism():
    report = check_masker(_ReusesBuffersIgnoresSeed(**KWARGS), CONFIG, tokens=TOKENS, seed=7)
    assert "same seed gives same output" in {c.name for c in report.failures}, str(report)
