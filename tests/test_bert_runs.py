"""mlm_bert.runs: files written whole or not at all, a torn metrics line survived, every bad
checkpoint refused in one line, and no run overwritten or relabelled without being asked."""

from __future__ import annotations

import json
import os
import pickle
import signal

import pytest
import torch

from mlm_bert.presets import build_model, prepare
from mlm_bert.runs import (RunError, check_run_dir, check_same_run, clear_run,
                           deferred_interrupt, read_checkpoint, read_metrics, read_tokenizer,
                           write_atomically, write_text)
from mlm_bert.trainer import BertTrainer, TrainConfig


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real checkpoint (micro model, 2 steps on the generated corpus) and its tokenizer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # small matrices: a second thread on a busy machine waits
    out = tmp_path_factory.mktemp("run")
    prep = prepare("generated:40", 96, 8, out, seed=0)
    torch.manual_seed(0)
    model = build_model("micro", prep.tokenizer.get_vocab_size())
    config = TrainConfig(steps=2, warmup=1, checkpoint_every=2, eval_every=2)
    BertTrainer(model, prep.train, config, out, progress=False,
                meta={"masking": "wwm", "seed": 0}).train()
    torch.set_num_threads(threads)
    return out


def _one_line(message: str) -> bool:
    return "\n" not in message.strip() and "Traceback" not in message


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    write_text(path, "old\n")

    def half_then_fail(f):
        f.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())   # not mkstemp's 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_ctrl_c_during_a_write_waits_for_the_file_to_be_whole(tmp_path):
    path = tmp_path / "checkpoint.pt"
    before = signal.getsignal(signal.SIGINT)    # SIG_IGN when the runner was started with `&`
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_during_a_write(path)
    finally:
        signal.signal(signal.SIGINT, before)


def _ctrl_c_during_a_write(path) -> None:
    """A Ctrl-C mid-write is held until the file is whole, then raised; the handler is back."""
    def interrupted_mid_write(f):
        f.write(b"first half ")
        os.kill(os.getpid(), signal.SIGINT)              # Ctrl-C arrives here
        f.write(b"second half")

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, interrupted_mid_write)
    assert path.read_bytes() == b"first half second half"
    with pytest.raises(KeyboardInterrupt):              # the usual handler is back
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    records = [{"kind": "train", "step": s, "loss": 1.0 / s} for s in (1, 2)]
    whole = "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(whole + json.dumps({"kind": "train", "step": 3})[:17])
    assert read_metrics(path) == records
    err = capsys.readouterr().err
    assert "torn last line 3" in err and _one_line(err)
    path.write_text(whole)
    assert read_metrics(path) == records
    assert capsys.readouterr().err == ""
    path.write_text('{"kind": "tr\n' + whole)                  # damage before the end
    with pytest.raises(RunError, match="line 1 is not a JSON record.*--overwrite"):
        read_metrics(path)


def _bad_checkpoints(good: bytes) -> dict:
    """Every way a checkpoint.pt can be bad, as file contents."""
    import io
    foreign_dict, foreign_object = io.BytesIO(), io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, foreign_dict)
    torch.save(torch.nn.Linear(2, 2), foreign_object)      # a pickled object: not unpickled
    return {"empty": b"", "truncated": good[:len(good) // 2], "garbage": os.urandom(4096),
            "pickle": pickle.dumps({"model": 1}), "foreign dict": foreign_dict.getvalue(),
            "foreign object": foreign_object.getvalue()}


def test_every_bad_checkpoint_is_one_run_error(checkpoint, tmp_path):
    state = read_checkpoint(checkpoint / "checkpoint.pt")
    assert state["step"] == 2 and state["meta"]["masking"] == "wwm"
    for what, data in _bad_checkpoints((checkpoint / "checkpoint.pt").read_bytes()).items():
        path = tmp_path / "checkpoint.pt"
        path.write_bytes(data)
        with pytest.raises(RunError) as e:
            read_checkpoint(path)
        assert str(path) in str(e.value) and _one_line(str(e.value)), what
    with pytest.raises(RunError, match="no checkpoint"):
        read_checkpoint(tmp_path / "none.pt")


def test_a_truncated_tokenizer_is_one_run_error(checkpoint, tmp_path):
    good = (checkpoint / "tokenizer.json").read_text()
    assert read_tokenizer(checkpoint / "tokenizer.json").get_vocab_size() > 5
    for what, text in {"empty": "", "truncated": good[:len(good) // 2],
                       "other json": '{"a": 1}'}.items():
        path = tmp_path / "tokenizer.json"
        path.write_text(text)
        with pytest.raises(RunError) as e:
            read_tokenizer(path)
        assert str(path) in str(e.value) and _one_line(str(e.value)), what


def test_a_run_directory_is_never_overwritten_unasked(checkpoint, tmp_path):
    check_run_dir(tmp_path / "new")                         # nothing there: fine
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")  # a vocabulary alone is reused
    check_run_dir(tmp_path / "tok")
    with pytest.raises(RunError, match="--resume.*--overwrite"):
        check_run_dir(checkpoint)
    check_run_dir(checkpoint, resume=True)
    check_run_dir(checkpoint, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        check_run_dir(tmp_path / "file", overwrite=True)


def test_clear_run_removes_only_the_run_files(tmp_path):
    for name in ("checkpoint.pt", "metrics.jsonl", "tokenizer.json", ".checkpoint.pt.x.tmp",
                 "notes.txt"):
        (tmp_path / name).write_text("x")
    clear_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_resume_under_other_flags_is_refused_naming_them(checkpoint):
    state = read_checkpoint(checkpoint / "checkpoint.pt")
    same = {"meta": dict(state["meta"]), "train_config": dict(state["train_config"])}
    check_same_run("ckpt", state, same)
    for key, value, flag in (("masking", "ours", "--masking wwm (asked: ours)"),
                             ("seed", 1, "--seed 0 (asked: 1)")):
        asked = {"meta": {**state["meta"], key: value}, "train_config": state["train_config"]}
        with pytest.raises(RunError, match="--overwrite") as e:
            check_same_run("ckpt", state, asked)
        assert flag in str(e.value)
    asked = {"meta": state["meta"], "train_config": {**state["train_config"], "steps": 9}}
    with pytest.raises(RunError, match=r"--steps 2 \(asked: 9\)"):
        check_same_run("ckpt", state, asked)
