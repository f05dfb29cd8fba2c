"""Conformance of the published maskers: the harness must flag what is wrong in code nobody
here wrote, and pass what is right. Small N (CI); docs/conformance.md is the full run."""

import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("labml_nn")
pytest.importorskip("transformers")

from verify.conformance import cli as conformance  # noqa: E402
from verify.conformance.page import render  # noqa: E402

TOKENS = 1 << 19


@pytest.fixture(scope="module")
def report():
    return conformance.run(TOKENS, seed=0, names=("numpy", "labml", "hf-torch", "hf-numpy"))


def _failed(report, name):
    return {c.name for c in report.failures if c.subject == name}


def test_labml_is_flagged_for_its_81_9_10_split_and_for_writing_into_its_input(report):
    failed = _failed(report, "labml")
    assert {"category split (mask, original, other)", "input not mutated"} <= failed
    # what else fails follows from the split: the [MASK] counts are off the 0.8 binomial
    assert failed <= {"category split (mask, original, other)", "input not mutated",
                      "[MASK] count per sequence ~ Binomial (dispersion)",
                      "[MASK] count per call ~ Binomial (dispersion)"}, failed
    from verify.token.summary import effective
    cats = effective(report.config, report.counts["labml"])["categories"]
    assert cats["mask"] == pytest.approx(0.81, abs=0.005)
    assert cats["unchanged"] == pytest.approx(0.09, abs=0.005)


@pytest.mark.parametrize("name", ["hf-torch", "hf-numpy"])
def test_hugging_face_writes_into_its_argument_but_its_statistics_conform(report, name):
    assert _failed(report, name) == {"input not mutated"}


def test_our_reference_passes_beside_them(report):
    assert _failed(report, "numpy") == set()


def test_the_page_reports_the_numbers_and_the_plain_words(report):
    page = render(report, images={}, command="python -m verify.conformance", versions="v",
                  date="today", out_dir="docs")
    assert "| labml | **FAIL** |" in page and "| numpy | pass |" in page
    assert "writes the masked ids into the tensor it was given" in page
    # labml's [MASK] share, 0.81, estimated (to the noise of the run, as in the test above)
    shown = re.search(r"Estimated categories: mask (\d\.\d+)", page)
    assert shown and float(shown.group(1)) == pytest.approx(0.81, abs=0.005)
