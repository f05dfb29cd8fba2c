"""`python -m verify.stats`: exit codes, the table, the JSON report, masker selection."""

import json
import subprocess
import sys

import pytest

from verify import stats

SMALL = ["--device", "cpu", "--tokens", "3e5", "--no-progress"]
V100 = ["--n-tokens", "100"]


def test_cli_passes_correct_backends_and_writes_json(tmp_path, capsys):
    path = tmp_path / "report.json"
    assert stats.main([*SMALL, "--masker", "numpy", "torch", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "numpy vs torch" in out and "MDE" in out
    report = json.loads(path.read_text())
    assert report["passed"] is True and report["alpha"] == 1e-5
    assert {c["subject"] for c in report["statistical"]} == {"numpy", "torch", "numpy vs torch"}
    assert all(c["level"] <= 1e-5 for c in report["statistical"])


def test_cli_fails_a_third_party_masker_named_module_attr(capsys):
    code = stats.main(["--device", "cpu", "--tokens", "1e6", "--no-progress", *V100,
                       "--masker", "tests.broken_maskers:OverlappingCategories"])
    out = capsys.readouterr().out
    assert code == 1 and "FAIL" in out and "category split" in out


@pytest.mark.parametrize("argv, message", [
    (["--masking-prob", "1.5"], "masking_prob"),
    (["--padding-token", "1", "--mask-token", "1"], "must differ"),
    (["--masker", "no_such_module_xyz:make"], "cannot import"),
    (["--masker", "verify.stats:no_such_factory"], "no attribute"),
    (["--masker", "nonsense"], "MODULE:ATTR"),
])
def test_cli_config_and_usage_errors_exit_2_with_a_message(argv, message, capsys):
    assert stats.main([*SMALL, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_rejects_a_bad_token_count_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        stats.main(["--tokens", "-3"])
    assert e.value.code == 2


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_without_a_gpu_exits_2(capsys):
    assert stats.main([*SMALL, "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_python_m_verify_stats_runs_as_a_module():
    r = subprocess.run([sys.executable, "-m", "verify.stats", *SMALL, "--masker", "torch"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
