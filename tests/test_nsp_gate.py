"""`verify.nsp`: the gate passes ours, flags the published algorithm and each planted defect of
tests/nsp_broken.py, and its command line keeps its exit codes without tracebacks."""

import functools
import json

import numpy as np
import pytest

from tests import nsp_broken
from verify import check_nsp
from verify.nsp import main
from verify.sentence_pairs import nsp_pairs
from verify.sentence_pairs.nsp_corpus import BASE, synthetic_corpus

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


def _refills_one_dict(documents, *, seed, epoch):
    """Ours, every pair written into one dict that is yielded again and again."""
    from mlm_ref.nsp import make_pairs
    held = {}
    for pair in make_pairs(documents, seed=seed, epoch=epoch):
        held.update(tokens_a=pair.tokens_a, tokens_b=pair.tokens_b,
                    is_random_next=pair.is_random_next)
        yield held


def test_a_generator_that_refills_one_dict_is_read_pair_by_pair():
    report = check_nsp(_refills_one_dict, pairs=PAIRS, seed=1)
    assert report.verdict == "PASS", str(report)


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


def _read_one_by_one(corpus, pairs):
    """`read_pairs`, one chunk per pair."""
    return [x for p in pairs for x in nsp_pairs.read_pairs(corpus, [p])]


def test_pairs_are_read_the_same_in_batches_as_one_at_a_time(monkeypatch):
    corpus = synthetic_corpus(60, seed=1)
    s0 = int(np.flatnonzero(corpus.doc == 4)[0])            # document 4: 'long', 16+ sentences
    ok = np.arange(s0, s0 + 10) + BASE
    pairs = [(ok[:4], ok[5:], 0), (ok[:4].astype(np.int32), ok[4:].astype(np.uint64), 1),
             (ok[::-1], ok, 1), (np.array([2**64 - 1], np.uint64), ok, 0), (ok, [], 0),
             (ok.reshape(2, 5), ok, 0), ([1, [2]], ok, 0), (ok, ok, 0.0), (ok, ok, 2), (ok,),
             (np.array([BASE - 1]), ok, 1), (np.arange(BASE, BASE + corpus.n_tokens), ok, 1),
             {"tokens_a": ok[:3], "tokens_b": ok[3:], "next_sentence_label": np.int64(0)}, 5]
    one = _read_one_by_one(corpus, pairs)
    monkeypatch.setattr(nsp_pairs, "CHUNK", 3)
    assert [repr(x) for x in nsp_pairs.read_pairs(corpus, pairs)] == [repr(x) for x in one]
    a, b, label = one[0]
    assert (a.first, a.last, a.length, a.doc, b.first, b.length, label) == \
        (s0, s0 + 3, 4, 4, s0 + 5, 5, 0) and a.contiguous and b.contiguous
    assert one[1][0] == a and one[1][1].first == s0 + 4 and one[1][2] == 1
    assert not one[2][0].contiguous and one[3][0] is None and one[4][1] is None
    assert one[5][0] is None and isinstance(one[6], ValueError) and one[7][2] is None
    assert one[8][2] is None and isinstance(one[9], ValueError) and one[10][0] is None
    assert not one[11][0].contiguous and one[12][2] == 0 and isinstance(one[13], TypeError)
