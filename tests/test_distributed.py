"""Distributed runs (`verify.engine.distributed`): two ranks on gloo over loopback give the
single-process report, statistics included, and the same exit status on every rank."""

import json
import os
import socket
import subprocess
import sys

import pytest

from verify import stats
from verify.engine.distributed import Share

# 8 calls of 131,072 tokens: 4 replayed pairs, 2 per rank, so a block boundary is crossed
RUN = ["--device", "cpu", "--tokens", "1e6", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ranks(argv, world=2, extra=None):
    """Run `python -m verify.stats argv` as `world` ranks, as torchrun would start them; each
    rank's (exit status, stdout, stderr). `extra`: more arguments for some ranks."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "verify.stats", *argv, *(extra or {}).get(r, [])],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(world)]
    return [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]


def _torchrun(argv, world=2):
    """Run `torchrun --nproc-per-node world -m verify.stats argv` (a free port); its (exit
    status, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                        str(world), "--master-addr", "127.0.0.1", "--master-port",
                        str(_free_port()), "-m", "verify.stats", *argv],
                       env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def _same_report(single: str, distributed: str):
    a, b = json.loads(open(single).read()), json.loads(open(distributed).read())
    for r in (a, b):
        for run in r["runs"].values():
            run.pop("seconds")
    assert a == b


@pytest.mark.parametrize("calls", range(1, 12))
@pytest.mark.parametrize("world", range(1, 6))
def test_ranks_share_the_calls_in_contiguous_whole_pairs(calls, world):
    blocks = [Share(r, world).calls(calls) for r in range(world)]
    assert [t for b in blocks for t in b] == list(range(calls))
    assert all(b.start % 2 == 0 for b in blocks if len(b))


@pytest.mark.parametrize("masker, status", [
    ("numpy", 0),
    ("tests.broken_maskers:OverlappingCategories", 1),   # a statistical failure
    ("tests.cli_maskers:RaisesOnCallTwo", 1),    # stops on rank 0: rank 1's calls never count
])
def test_two_ranks_give_the_single_process_report(masker, status, tmp_path, capsys):
    single, both = tmp_path / "single.json", tmp_path / "distributed.json"
    argv = [*RUN, "--n-tokens", "100", "--masker", masker]
    assert stats.main([*argv, "--json", str(single)]) == status
    capsys.readouterr()
    if status == 0:  # through torchrun itself: one report, from rank 0
        code, out, err = _torchrun([*argv, "--json", str(both)])
        assert code == 0 and out.count("PASS") == 1, out + err
    else:  # each rank's own exit status and output
        (s0, out0, err0), (s1, out1, err1) = _ranks([*argv, "--json", str(both)])
        assert (s0, s1) == (status, status), err0 + err1
        assert "FAIL" in out0 and out1 == "" and err1 == ""
    _same_report(single, both)


def test_a_usage_error_exits_2_on_every_rank_before_any_masker_runs():
    results = _ranks([*RUN, "--masking-prob", "1.5"])
    assert [s for s, _, _ in results] == [2, 2]
    assert all("masking_prob" in err and "Traceback" not in err for _, _, err in results)


def test_a_usage_error_on_one_rank_stops_every_rank():
    """Rank 1 alone refuses its arguments: rank 0 runs no masker and exits 2 as well."""
    results = _ranks([*RUN, "--masker", "numpy"], extra={1: ["--masking-prob", "1.5"]})
    assert [s for s, _, _ in results] == [2, 2]
    assert "another rank refused" in results[0][2] and "masking_prob" in results[1][2]
    assert "PASS" not in results[0][1]
