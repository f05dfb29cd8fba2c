"""Run directories that survive a kill: atomic writes, tolerant metrics, checked checkpoints.

A training run may be killed at any moment (Ctrl-C, an out-of-memory killer, a power cut), so
every file of a run directory is either whole or absent:

- `checkpoint.pt`, `tokenizer.json`, `summary.json` (and the other results) are written
  atomically: into a temporary file in the same folder, flushed, `fsync`ed, then renamed over
  the old file (a rename within a folder is atomic), and the folder is `fsync`ed so that the
  rename itself survives a power cut. A kill mid-write leaves the previous file intact and a
  stray `.NAME.*.tmp`, which the next run removes.
- `metrics.jsonl` is appended a line at a time, so a kill can tear only its last line:
  `read_metrics` drops a torn last line with a warning (a damaged line elsewhere is an error).
- `read_checkpoint` loads with `weights_only=True` (a checkpoint is data; unpickling arbitrary
  objects from a file would run code) and turns every way a file can be bad (empty, truncated,
  garbage, another program's) into one `RunError` line.
- `check_run_dir` refuses to overwrite a run's records unless asked (`--resume` continues them,
  `--overwrite` replaces them), and `check_same_run` refuses to continue a run under other
  flags (a resumed run would otherwise be relabelled: its summary would claim a masking or seed
  the model was not trained with).

For tests, the environment variable `MLM_BERT_FAULT=POINT:N[:SIGNAL]` makes the process send
itself SIGKILL (or SIGINT with `:int`) at a chosen moment: `step:N` after training step N,
`checkpoint:N` part-way through writing the checkpoint of step N (after its first 4 KiB reach
the disk), `metrics:N` half-way through the first metrics line of step N, `tokenizer:0`
part-way through writing the tokenizer.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import sys
import tempfile
import warnings

__all__ = ["RunError", "RUN_RECORDS", "RUN_FILES", "write_atomically", "write_text",
           "read_metrics", "read_checkpoint", "check_run_dir", "clear_run", "check_same_run",
           "fault", "fault_point", "FAULT_ENV", "read_tokenizer",
           "remove_stray_temporaries", "deferred_interrupt"]

FAULT_ENV = "MLM_BERT_FAULT"
# The files that make a directory a run's: present, they are not overwritten unless asked.
RUN_RECORDS = ("checkpoint.pt", "metrics.jsonl", "summary.json")
# Every file a run writes (what --overwrite removes).
RUN_FILES = ("tokenizer.json", *RUN_RECORDS, "curves.png", "predictions.txt", "probes.txt",
             "context_examples.txt")
CHECKPOINT_KEYS = {"model": dict, "optimizer": dict, "scheduler": dict, "step": int,
                   "epoch": int, "position": int, "model_config": dict, "train_config": dict,
                   "meta": dict, "rng": object}
# bytes written before a fault fires part-way through a file
_FAULT_AFTER_BYTES = 4096


class RunError(ValueError):
    """A run directory or one of its files cannot be used; the message is one line that says
    what to do (a usage error: the command lines exit 2)."""


def fault_point(point: str, n: int = 0) -> str | None:
    """The signal ("kill" or "int") that `MLM_BERT_FAULT` asks for at `point` number `n`, or
    None (the variable is unset or names another moment)."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    parts = spec.split(":")
    if len(parts) < 2 or parts[0] != point or parts[1] != str(n):
        return None
    return parts[2] if len(parts) > 2 else "kill"


def fault(kind: str) -> None:
    """Send this process SIGKILL (`kind` "kill") or SIGINT ("int"), as a user or the system
    would."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGINT if kind == "int" else signal.SIGKILL)


class _Tripwire:
    """A file wrapper that fires a fault once `after` bytes have reached the disk."""

    def __init__(self, f, after: int, kind: str):
        self.f, self.after, self.kind, self.written = f, after, kind, 0

    def write(self, data) -> int:
        n = self.f.write(data)
        self.written += len(data)
        if self.written >= self.after:
            self.f.flush()
            os.fsync(self.f.fileno())
            fault(self.kind)
        return n

    def flush(self):
        self.f.flush()


def _fsync_dir(folder: pathlib.Path) -> None:
    """Make a rename in `folder` durable (not possible on every platform: then skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_deferring = False


@contextlib.contextmanager
def deferred_interrupt():
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise `KeyboardInterrupt`.

    A file write is short, and one interrupted half-way loses the file (PyTorch's writer turns
    the interrupt into a RuntimeError), so the write finishes first. Nested blocks defer to the
    outermost; outside the main thread (no signal handlers there) nothing is deferred.
    """
    global _deferring
    if _deferring:
        yield
        return
    received = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    except ValueError:                              # not the main thread
        yield
        return
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def write_atomically(path, write, *, fault_at: tuple[str, int] | None = None) -> pathlib.Path:
    """Write a file whole or not at all: `write(f)` fills a temporary binary file in the same
    folder, which is flushed, fsynced and renamed over `path`; Ctrl-C waits for the end.

    Args:
        path: the file to (re)place.
        write: called with the open temporary file.
        fault_at: `(point, n)` for `MLM_BERT_FAULT` (tests): a fault part-way through.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with deferred_interrupt():
        _write_and_rename(path, write, fault_at)
    return path


def _write_and_rename(path: pathlib.Path, write, fault_at) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes it private; a run's files are not
        with os.fdopen(fd, "wb") as f:
            kind = fault_point(*fault_at) if fault_at else None
            write(_Tripwire(f, _FAULT_AFTER_BYTES, kind) if kind else f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text(path, text: str, *, fault_at: tuple[str, int] | None = None) -> pathlib.Path:
    """`write_atomically` for UTF-8 text."""
    data = text.encode("utf-8")
    return write_atomically(path, lambda f: f.write(data), fault_at=fault_at)


def read_metrics(path) -> list[dict]:
    """The records of a `metrics.jsonl`; a torn last line (a run killed mid-write) is dropped
    with a warning on stderr.

    Raises:
        RunError: a damaged line before the last one.
    """
    path = pathlib.Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            if number == len(lines):
                print(f"warning: {path}: dropped its torn last line {number} (a run killed "
                      "while writing it)", file=sys.stderr)
                break
            raise RunError(f"{path} line {number} is not a JSON record: the file is damaged "
                           "(start the run again with --overwrite)") from None
        records.append(record)
    return records


def read_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by `BertTrainer.save_checkpoint`, checked to be one.

    Raises:
        RunError: the file is missing, empty, truncated, not a PyTorch file, or another
            program's (the message says which).
    """
    import pickle

    import torch
    path = pathlib.Path(path)
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise RunError(f"{path} is empty (a run killed while writing it?): delete it, or start "
                       "again with --overwrite")
    try:
        with warnings.catch_warnings():        # torch's warnings about foreign files: the
            warnings.simplefilter("ignore")    # error below says it in one line
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise RunError(f"{path} is not a mlm_bert checkpoint: it is garbage or holds Python "
                       "objects beyond tensors and plain data, which are not loaded (a file "
                       "could run code when unpickled)") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError,
            IndexError, KeyError, TypeError) as e:
        raise RunError(f"{path} is not a readable PyTorch checkpoint (truncated or damaged?): "
                       f"{_first_sentence(e)}") from None
    problem = _checkpoint_problem(state)
    if problem:
        raise RunError(f"{path} is not a mlm_bert checkpoint: {problem}")
    return state


def _first_sentence(e: BaseException) -> str:
    """The first sentence of an exception's message, at most 120 characters, on one line."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text.split(". ")[0][:120]


def _checkpoint_problem(state) -> str | None:
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a dict"
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        return f"no {', '.join(missing)}"
    wrong = [k for k, t in CHECKPOINT_KEYS.items() if not isinstance(state[k], t)]
    return f"wrong types for {', '.join(wrong)}" if wrong else None


def check_run_dir(out, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to write a run into `out` when that would lose or relabel another run.

    Raises:
        RunError: `out` is a file, or holds a run's records and neither `resume` nor
            `overwrite` was asked for.
    """
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file, not a run directory: name a folder with --out")
    present = [name for name in RUN_RECORDS if (out / name).exists()]
    if present and not (resume or overwrite):
        raise RunError(f"{out} already holds a run ({', '.join(present)}): continue it with "
                       "--resume, replace it with --overwrite, or choose another --out")


def clear_run(out) -> None:
    """Remove the files a run writes (and stray temporary files) from `out`; nothing else."""
    out = pathlib.Path(out)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    remove_stray_temporaries(out)


def remove_stray_temporaries(out) -> None:
    """Remove the `.NAME.*.tmp` files that a kill mid-write leaves in `out`."""
    out = pathlib.Path(out)
    if out.is_dir():
        for name in RUN_FILES:
            for tmp in out.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)


# How a difference in a checkpoint's `meta` is told on the command line.
_FLAGS = {"preset": "--preset", "seed": "--seed", "masking": "--masking", "steps": "--steps",
          "minutes": "--minutes",
          "checkpoint_every": "--checkpoint-every"}


def check_same_run(path, saved: dict, asked: dict) -> None:
    """Refuse to continue a run under other settings than those it was trained with.

    Args:
        path: the checkpoint (named in the message).
        saved, asked: `{"meta": ..., "train_config": ...}` of the checkpoint and of this run.

    Raises:
        RunError: a setting differs (the message names each, as a flag where there is one).
    """
    diffs = []
    for key in sorted(set(saved["meta"]) | set(asked["meta"])):
        a, b = saved["meta"].get(key), asked["meta"].get(key)
        if a != b:
            diffs.append(f"{_FLAGS.get(key, key)} {a} (asked: {b})")
    for key in sorted(set(saved["train_config"]) | set(asked["train_config"])):
        a, b = saved["train_config"].get(key), asked["train_config"].get(key)
        if _plain(a) != _plain(b):
            diffs.append(f"{_FLAGS.get(key, key)} {_plain(a)} (asked: {_plain(b)})")
    if diffs:
        raise RunError(f"{path} was trained with {'; '.join(diffs)}: resume with the run's own "
                       "flags, or start a new run with --overwrite or another --out")


def _plain(value):
    """Tuples and lists compare equal (a checkpoint may store either)."""
    return list(value) if isinstance(value, (tuple, list)) else value


def read_tokenizer(path):
    """`mlm_bert.tokenizer.load_tokenizer`, its problems as `RunError`s naming the file.

    Raises:
        RunError: no such file, or not a readable mlm_bert tokenizer.
    """
    from .tokenizer import load_tokenizer
    try:
        return load_tokenizer(path)
    except (FileNotFoundError, ValueError) as e:
        raise RunError(f"{e}: delete it, or start the run again with --overwrite") from None
