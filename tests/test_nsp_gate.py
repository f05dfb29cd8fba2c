"""`verify.nsp`: the gate passes ours, flags the published algorithm and each planted defect of
tests/nsp_broken.py, and its command line keeps its exit codes without tracebacks."""

import functools
import json

import pytest

from tests import nsp_broken
from verify import check_nsp
from verify.nsp import main

PAIRS = 2500


@functools.lru_cache(maxsize=None)
def _report(defect):
    """One gate run per defect, shared by the tests that look at it. The published algorithm
    gets more pairs: only ~0.7% of pairs reach a tie that its tie check can see."""
    return check_nsp(getattr(nsp_broken, defect), pairs=6000 if defect == "google_style"
                     else PAIRS, seed=1)


def test_ours_passes_every_check():
    report = check_nsp("ours", pairs=PAIRS, seed=1)
    assert report.verdict == "PASS", str(report)
    names = {c.name for c in report.checks if c.applicable}
    assert {"cuts front vs back: A, IsNext", "cuts front vs back: B, random next",
            "ties cut A vs B", "label rate by document class"} <= names


@pytest.mark.parametrize("defect, check", [
    ("google_style", "label rate (1 = random next)"),
    ("google_style", "one-document corpus refused"),
    ("google_style", "ties cut A vs B"),
    ("biased_labels", "label rate (1 = random next)"),
    ("random_b_same_document", "random B from another document"),
    ("no_truncation", "segment lengths within max_seq_len"),
    ("always_cut_back", "cuts front vs back: A, IsNext"),
    ("always_cut_back", "cuts front vs back: B, random next"),
    ("always_cut_b", "the longer side is cut"),
    ("label_by_document", "label rate by document class"),
    ("isnext_skips_a_sentence", "IsNext B follows A"),
    ("raises", "the generator runs on the corpus"),
    ("malformed", "pairs are well-formed"),
])
def test_each_planted_defect_is_caught_by_its_check(defect, check):
    report = _report(defect)
    assert report.verdict == "FAIL"
    assert check in {c.name for c in report.failures}, str(report)


def test_google_compat_rate_is_reported_with_its_binomial_detail():
    rate = next(c for c in _report("google_style").checks
                if c.name == "label rate (1 = random next)")
    assert rate.failed and "expected 0.5" in rate.detail and rate.statistic > 0


def test_cli_exit_codes_and_json(tmp_path, capsys):
    path = tmp_path / "nsp.json"
    assert main(["--pairs", "2000", "--no-progress", "--json", str(path)]) == 0
    assert "PASS" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["verdict"] == "PASS" and data["schema"] == "mlm-verify.report/1"
    # the shared skeleton, and every key the NSP report had before it (its old schema too)
    assert data["gate"] == "nsp" and data["nsp_schema"] == "mlm-verify.nsp-report/1"
    assert {"passed", "alpha", "seed", "exact", "statistical", "not_applicable", "subject",
            "max_seq_len", "pairs", "epochs", "checks"} <= set(data)
    assert len(data["exact"]) + len(data["statistical"]) + len(data["not_applicable"]) == \
        len(data["checks"])
    assert all(c["level"] is None or c["level"] <= 1e-5 for c in data["checks"])
    assert main(["--google", "--pairs", "1000", "--no-progress"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_inconclusive_when_no_pair_is_made(capsys):
    assert main(["tests.nsp_broken:nothing", "--pairs", "100", "--no-progress"]) == 3
    assert "INCONCLUSIVE" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["no_such_module_xyz:make"], "cannot import"),
    (["verify.nsp:no_such_generator"], "no attribute"),
    (["nonsense"], "MODULE:ATTR"),
    (["ours", "--google"], "two generators"),
    (["--alpha", "2"], "alpha"),
    (["--max-seq-len", "4"], "max_seq_len"),
])
def test_cli_usage_errors_exit_2_without_traceback(argv, message, capsys):
    assert main([*argv, "--pairs", "100", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_refuses_a_bad_pair_count():
    with pytest.raises(SystemExit) as e:
        main(["--pairs", "0"])
    assert e.value.code == 2


def test_api_refuses_bad_arguments():
    with pytest.raises(ValueError, match="pairs"):
        check_nsp("ours", pairs=0)
    with pytest.raises(TypeError, match="generator"):
        check_nsp(42)
