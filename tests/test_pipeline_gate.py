"""The pipeline gate (`verify.pipeline`): ours passes with 0, 1 and 2 DataLoader workers over
2 epochs and 2 ranks; every broken pipeline of `tests/pipelines.py` fails, each by the check
that names what it breaks.

False alarms: the statistical checks share a family-wise alpha of 1e-5 per run (Holm); the
repeat check is exact with a false-alarm bound of 1e-7 (verify/stream/pipeline_checks.py). The
effects here are large: the broken pipelines duplicate whole streams of draws.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests import pipelines as P
from verify.stream.collect import decode
from verify.pipeline import assert_pipeline_conforms, check_pipeline

REPEATS = "no mask pattern repeats beyond the birthday bound"
SAME_EXAMPLE = "an example seen again is masked afresh"
RANKS = "ranks mask independently (up to 8 batches apart)"
EPOCHS = "epochs mask independently (up to 8 batches apart)"
LAGS = "batches mask independently (1 to 8 batches apart)"
DIAGONAL = "other epochs of other ranks mask independently (up to 8 batches apart)"

# what each broken pipeline must fail (it may fail more)
CAUGHT_BY = {
    "numpy_global_seeded_workers": {REPEATS, LAGS, EPOCHS},   # workers and epochs alike
    "numpy_global_forked_pool": {REPEATS, LAGS},               # the two children alike
    "main_process_generator": {REPEATS, LAGS, EPOCHS},        # workers and epochs alike
    "hf_seeded": {REPEATS, RANKS},                            # rank 0 = rank 1
    "hf_seeded_workers": {REPEATS, RANKS, EPOCHS},            # and every epoch replays
    "seed_plus_index": {REPEATS},                             # (e + 1, i) = (e, i + 1)
    "static_mask": {REPEATS, SAME_EXAMPLE},                   # the same mask every epoch
    "seed_plus_epoch_plus_rank": {REPEATS, DIAGONAL},         # (e + 1, r) = (e, r + 1)
}


def _failed(report) -> set[str]:
    return {c.name for c in report.failures}


@pytest.mark.parametrize("pipeline", ["ours_0_workers", "ours_1_worker", "ours_2_workers"])
def test_our_collator_passes_the_gate_with_0_1_or_2_workers(pipeline):
    report = assert_pipeline_conforms(getattr(P, pipeline), P.CONFIG, epochs=2, world_size=2)
    applicable = {c.name for c in report.checks if c.applicable}
    assert {REPEATS, SAME_EXAMPLE, RANKS, EPOCHS, LAGS, DIAGONAL} <= applicable


def test_examples_repeated_by_the_sampler_within_an_epoch_are_no_defect():
    """DistributedSampler pads the last batch with examples already seen that epoch; stateless
    streams mask the two sightings alike, which is by design (docs/pipelines.md)."""
    report = assert_pipeline_conforms(P.ours_padded_by_the_sampler, P.CONFIG, epochs=2,
                                      world_size=4)
    assert {REPEATS, SAME_EXAMPLE} <= {c.name for c in report.checks if c.passed}


@pytest.mark.parametrize("pipeline", sorted(CAUGHT_BY))
def test_a_broken_pipeline_fails_the_check_that_names_its_defect(pipeline):
    report = check_pipeline(getattr(P, pipeline), P.CONFIG, epochs=2, world_size=2)
    assert report.verdict == "FAIL"
    missing = CAUGHT_BY[pipeline] - _failed(report)
    assert not missing, f"{pipeline} passed {missing}:\n{report}"
    assert not {"pipeline runs without error", "every (epoch, rank) yields batches"} & \
        _failed(report), report.failure_message()


def test_numpy_global_rng_in_workers_is_reseeded_by_the_dataloader():
    """Measured, not assumed: since PyTorch 1.9 each DataLoader worker seeds NumPy's global
    generator from its own base seed, so without a worker_init_fn that re-seeds it the
    workers' draws differ (the duplicates of pytorch#5059 need a fixed re-seed, or a fork
    outside DataLoader)."""
    report = check_pipeline(P.numpy_global_workers, P.CONFIG, epochs=2, world_size=1)
    assert not {REPEATS, LAGS, EPOCHS} & _failed(report), report.failure_message()


def test_a_pipeline_that_raises_or_yields_junk_fails_without_raising():
    def raises(*, epoch, rank, world_size):
        yield from P.ours_0_workers(epoch=epoch, rank=rank, world_size=world_size)
        raise OSError("disk gone\nsecond line")

    def junk(*, epoch, rank, world_size):
        return [{"input_ids": torch.zeros(4, 8, dtype=torch.long)}]

    report = check_pipeline(raises, P.CONFIG, epochs=1)
    assert "pipeline runs without error" in _failed(report)
    assert "OSError: disk gone second line" in report.failure_message()
    report = check_pipeline(junk, P.CONFIG, epochs=1)
    assert "batches are input_ids and labels [batch, seq]" in _failed(report)
    assert report.verdict == "FAIL"


def test_decode_recovers_shapes_and_refuses_what_is_not_a_batch():
    b = decode({"input_ids": [[101, 103, 102]], "labels": np.array([[-100, 7, -100]])}, 0, 0, 0)
    assert b.input_ids.dtype == np.int64 and b.labels.shape == (1, 3)
    with pytest.raises(TypeError, match="mapping"):
        decode([1, 2], 0, 0, 0)
    with pytest.raises(KeyError, match="labels"):
        decode({"input_ids": [[1]]}, 0, 0, 0)
    with pytest.raises(ValueError, match=r"\[batch, seq\]"):
        decode({"input_ids": [1, 2], "labels": [1, 2]}, 0, 0, 0)
    with pytest.raises(ValueError, match="differ in shape"):
        decode({"input_ids": [[1, 2]], "labels": [[1]]}, 0, 0, 0)
    with pytest.raises(TypeError, match="integers"):
        decode({"input_ids": [[1.5]], "labels": [[1]]}, 0, 0, 0)


def test_a_selected_special_token_breaks_an_invariant():
    def cls_selected(*, epoch, rank, world_size):
        for batch in P.ours_0_workers(epoch=epoch, rank=rank, world_size=world_size):
            batch["labels"][:, 0] = 101          # [CLS] labelled: selected, though ineligible
            yield batch
    report = check_pipeline(cls_selected, P.CONFIG, epochs=1)
    assert "ineligible positions never selected" in _failed(report)


def test_bad_arguments_are_refused_before_the_pipeline_runs():
    ran = []

    def pipeline(**kw):
        ran.append(kw)
        return []
    for kwargs, error in (({"epochs": 0}, ValueError), ({"world_size": 1.5}, TypeError),
                          ({"alpha": 2.0}, ValueError), ({"max_batches": 0}, ValueError)):
        with pytest.raises(error):
            check_pipeline(pipeline, P.CONFIG, **kwargs)
    with pytest.raises(TypeError, match="callable"):
        check_pipeline("not a pipeline", P.CONFIG)
    assert not ran


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "verify.pipeline", *args, "--no-progress"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_the_command_line_exits_0_for_ours_1_for_a_broken_pipeline_and_writes_json(tmp_path):
    out = _cli("tests.pipelines:ours_0_workers", "--world-size", "2", "--json",
               str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "PASS"
    out = _cli("tests.pipelines:static_mask", "--world-size", "1")
    assert out.returncode == 1 and SAME_EXAMPLE in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("args,message", [
    (["nomodule_xyz:f"], "No module named"),
    (["tests.pipelines:nothing"], "has no attribute"),
    (["tests.pipelines"], "MODULE:ATTR"),
    (["tests.pipelines:ours_0_workers", "--epochs", "0"], "epochs must be at least 1"),
    (["tests.pipelines:ours_0_workers", "--json", "tests"], "tests is a folder"),
])
def test_the_command_line_refuses_bad_arguments_with_a_message(args, message):
    out = _cli(*args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, \
        out.stderr


def test_torchrun_runs_each_rank_as_a_process_and_rank_0_reports(tmp_path):
    """Two real ranks (gloo over loopback): Hugging Face's collator with seed= draws the same
    masks on both, and the gate sees it across the processes."""
    pytest.importorskip("torch.distributed.run")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", port, "-m", "verify.pipeline", "tests.pipelines:hf_seeded",
           "--no-progress", "--json", str(tmp_path / "r.json")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    failed = {c["name"] for c in report["exact"] + report["statistical"] if not c["passed"]}
    assert {REPEATS, RANKS} <= failed
    assert out.stdout.count("FAIL:") == 1          # rank 0 reports once
