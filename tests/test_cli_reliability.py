"""The command-line tools' promise: never a traceback; exit 0 (pass), 1 (a check failed),
2 (usage error) or 130 (Ctrl-C, nothing half-written), whatever the arguments and whatever the
masker does: raise at import or in its factory, exit, hang, or be interrupted (each a failed
check, exit 1; only a spec that names nothing is a usage error)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
from verify import check_maskers, stats  # noqa: E402
from verify.token.adapters import callable_name, resolve  # noqa: E402

SMALL = ["--device", "cpu", "--tokens", "3e5", "--no-progress", "--n-tokens", "100"]
M = "tests.cli_maskers:"


def _stats(argv, capsys):
    code = stats.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("tokens", ["inf", "1e400", "nan", "1e20", "-3", "2.5"])
def test_absurd_token_counts_are_usage_errors(tokens, capsys):
    with pytest.raises(SystemExit) as e:
        stats.main(["--tokens", tokens])
    assert e.value.code == 2 and "--tokens" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1", "1.5"])
def test_seeds_outside_int64_are_usage_errors(seed, capsys):
    with pytest.raises(SystemExit) as e:
        stats.main(["--seed", seed])
    assert e.value.code == 2 and "--seed" in capsys.readouterr().err


@pytest.mark.parametrize("source, message", [
    ("raise ZeroDivisionError('boom')\n", "ZeroDivisionError: boom"),
    ("def make(:\n", "SyntaxError"),
    ("import sys\nsys.exit(4)\n", "sys.exit(4)"),
])
def test_a_module_that_fails_at_import_fails_masker_runs_without_error(source, message, tmp_path,
                                                                       monkeypatch, capsys):
    (tmp_path / "bad_masker_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = _stats([*SMALL, "--masker", "bad_masker_module:make"], capsys)
    assert code == 1 and "masker runs without error" in out
    assert any("importing 'bad_masker_module'" in line and message in line
               for line in out.splitlines()), out


def test_a_module_that_is_not_installed_is_a_usage_error(capsys):
    code, _, err = _stats([*SMALL, "--masker", "no_such_masker_module_xyz:make"], capsys)
    assert code == 2 and "cannot import 'no_such_masker_module_xyz'" in err
    assert len(err.strip().splitlines()) == 1


def test_a_factory_that_raises_fails_its_check_naming_masker_and_error(capsys):
    code, out, _ = _stats([*SMALL, "--masker", M + "factory_raises"], capsys)
    assert code == 1 and any(
        M + "factory_raises" in line and "RuntimeError: no GPU left for masking" in line
        for line in out.splitlines()), out


def test_a_masker_calling_sys_exit_fails_its_check_and_the_report_is_printed(capsys):
    code, out, _ = _stats([*SMALL, "--masker", M + "Exits"], capsys)
    assert code == 1 and "masker runs without error" in out and "sys.exit(3)" in out


def test_a_hanging_masker_is_timed_out_and_the_tool_exits(capsys):
    code, out, _ = _stats([*SMALL, "--timeout", "0.5", "--masker", M + "Hangs",
                           "numpy"], capsys)
    assert code == 1 and "did not return within 0.5 s" in out
    assert "numpy" in out  # the other masker still ran


def test_check_maskers_takes_a_timeout():
    from mlm_ref import MaskingConfig
    config = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
    report = check_maskers([M + "Hangs"], config, tokens=1 << 12, timeout=0.2)
    assert not report.passed and "did not return within 0.2 s" in report.failure_message()


def test_duplicate_maskers_are_a_usage_error(capsys):
    code, _, err = _stats([*SMALL, "--masker", "torch", "torch"], capsys)
    assert code == 2 and "more than once" in err


def test_a_closure_is_named_by_module_and_qualname_and_names_stay_distinct():
    from mlm_ref import MaskingConfig
    from tests.cli_maskers import closure
    config = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
    f = closure(**{k: getattr(config, k) for k in ("padding_token", "mask_token",
                                                   "n_tokens")}, no_mask_tokens=[2, 3])
    assert resolve(f, config).name == "tests.cli_maskers:closure.<locals>.f"
    assert callable_name(lambda x: x).endswith("stay_distinct.<locals>.<lambda>")
    assert callable_name(functools.partial(closure, n_tokens=5)) == \
        "partial(tests.cli_maskers:closure)"
    report = check_maskers([f, f], config, tokens=1 << 12)
    assert set(report.counts) == {"tests.cli_maskers:closure.<locals>.f",
                                  "tests.cli_maskers:closure.<locals>.f #2"}


@pytest.mark.parametrize("make_target", [
    lambda tmp: str(tmp),                                  # a folder
    lambda tmp: str(tmp / "file.txt" / "report.json"),     # below a file
])
def test_an_unwritable_json_path_is_refused_before_the_run(make_target, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("")
    code, out, err = _stats([*SMALL, "--masker", "numpy", "--json", make_target(tmp_path)],
                            capsys)
    assert code == 2 and "PASS" not in out and "--json" not in err.split(":", 2)[-1][:0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused_before_the_run(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    code, out, err = _stats([*SMALL, "--masker", "numpy", "--json", str(ro / "r.json")], capsys)
    assert code == 2 and "cannot write" in err and out == ""


def test_missing_parent_folders_are_created(tmp_path, capsys):
    path = tmp_path / "a" / "b" / "report.json"
    code, _, _ = _stats([*SMALL, "--masker", "numpy", "--json", str(path)], capsys)
    assert code == 0 and path.exists()


def test_ctrl_c_exits_130_with_one_line_and_no_half_written_file(tmp_path, capsys):
    path = tmp_path / "report.json"
    code, out, err = _stats([*SMALL, "--masker", M + "InterruptedOnFifthCall",
                             "--json", str(path)], capsys)
    assert code == 130 and out == ""
    from verify.token.runner import default_chunk
    # the fifth call of the masker is the run's second (the estimate and the determinism
    # check make the others): one call of default_chunk tokens had returned
    assert err.strip().splitlines() == [
        f"verify.stats: interrupted after {default_chunk('cpu'):,} tokens of masker "
        "'tests.cli_maskers:InterruptedOnFifthCall'"]
    assert os.listdir(tmp_path) == []


def test_a_long_run_says_how_long_it_will_take(capsys):
    code, _, err = _stats([*SMALL, "--tokens", "3e7", "--masker", M + "SlowAndInterrupted"],
                          capsys)
    assert code == 130 and "3e+07 tokens per masker: about" in err and "Ctrl-C" in err


def test_ctrl_c_in_a_subprocess_exits_130_without_a_traceback():
    r = subprocess.run([sys.executable, "-m", "verify.stats", *SMALL, "--masker",
                        M + "InterruptedOnFifthCall"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 130 and "Traceback" not in r.stderr
    assert "interrupted after" in r.stderr


# verify.exact, verify.bench and verify.conformance keep the same promise.

def test_exact_refuses_a_seed_beyond_int64(capsys):
    from verify import exact
    for seed in ["99999999999999999999999", str(2 ** 63 - 1)]:
        with pytest.raises(SystemExit) as e:
            exact.main(["--seed", seed, "--batches", "2"])
        assert e.value.code == 2 and "--seed" in capsys.readouterr().err


def test_exact_ctrl_c_exits_130_saying_how_far_it_got(monkeypatch, capsys):
    from verify import exact
    calls = [0]
    compare = exact.compare

    def interrupted_on_third(*a, **k):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return compare(*a, **k)
    monkeypatch.setattr(exact, "compare", interrupted_on_third)
    assert exact.main(["--device", "cpu", "--batches", "4"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("verify.exact: interrupted after ") and "Traceback" not in err


def test_bench_refuses_an_unwritable_json_before_timing(tmp_path, monkeypatch, capsys):
    from verify.bench import cli as bench
    monkeypatch.setattr(bench, "run", lambda args: pytest.fail("timed before checking --json"))
    assert bench.main(["--device", "cpu", "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_bench_ctrl_c_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from verify.bench import cli as bench

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(bench, "time_maskers", interrupted)
    path = tmp_path / "bench.json"
    assert bench.main(["--device", "cpu", "--only", "numpy", "--seq-len", "8", "--batches",
                       "2", "--json", str(path)]) == 130
    assert capsys.readouterr().err.strip() == "verify.bench: interrupted"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [["--tokens", "nan"], ["--tokens", "inf"],
                                  ["--seed", "99999999999999999999999"],
                                  ["--out", "{tmp}"], ["--plot", "{tmp}/page.md"]])
def test_conformance_usage_errors_come_before_the_run(argv, tmp_path, monkeypatch, capsys):
    from verify.conformance import cli as conformance
    (tmp_path / "page.md").write_text("")
    monkeypatch.setattr(conformance, "run", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(SystemExit) as e:
        conformance.main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "error" in err and "Traceback" not in err


def test_conformance_ctrl_c_exits_130_and_leaves_the_page_alone(tmp_path, monkeypatch,
                                                                capsys):
    from verify.conformance import cli as conformance

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(conformance, "run", interrupted)
    page = tmp_path / "conformance.md"
    page.write_text("the old page")
    assert conformance.main(["--out", str(page)]) == 130
    assert capsys.readouterr().err.strip() == "verify.conformance: interrupted"
    assert page.read_text() == "the old page" and os.listdir(tmp_path) == ["conformance.md"]


def test_write_atomically_leaves_the_old_file_when_writing_fails(tmp_path):
    from verify.cli import write_atomically
    path = tmp_path / "out.json"
    path.write_text("old")

    with pytest.raises(TypeError):
        write_atomically(str(path), 42)  # not text: fails mid-write
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]


def test_written_reports_get_the_usual_permissions_not_private_ones(tmp_path):
    from verify.cli import write_atomically
    old = os.umask(0o022)
    try:
        write_atomically(str(tmp_path / "report.json"), "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
