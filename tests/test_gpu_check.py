"""`make gpu-check` (`python -m verify.bench.gpu_check`) without a GPU: it says so, runs nothing
and exits 0; its orchestration and its summary are checked on fake steps and fake results."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from verify.bench import gpu_check
from verify.bench.gpu_check import Step

ROOT = pathlib.Path(__file__).resolve().parent.parent
CUDA = pytest.importorskip("torch").cuda.is_available()

BENCH = {"copy_bandwidth_GBps": 3000.0, "results": [
    {"masker": m, "mode": mode, "shape": shape, "tokens_per_s": tps, "bandwidth_fraction": f}
    for shape in ([512, 64], [512, 65536])
    for m, mode, tps, f in [("torch", "native", 1e11, 0.8), ("torch", "exact", 6e10, 0.48),
                            ("jax", "exact", 5e10, 0.4), ("labml", "published", 2e9, 0.016),
                            ("numpy", "native", 1e8, 0.001)]]}


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
def test_without_cuda_it_says_so_and_runs_nothing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "verify.bench.gpu_check"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and "no CUDA device" in r.stdout and "nothing was run" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_gpu_check_with_py_uses_that_python_and_installs_nothing():
    # run as a top-level make even when the suite itself runs under `make test`
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "--no-print-directory", "-n", "gpu-check", "PY=python3"],
                       capture_output=True, text=True, cwd=ROOT, check=True, env=env)
    assert r.stdout.strip().splitlines() == ["python3 -m verify.bench.gpu_check"]


def test_the_steps_run_in_the_promised_order_within_nine_minutes():
    names = [s.name for s in gpu_check.STEPS]
    assert names == ["cuda tests", "exact on cuda", "stats 1e9 tokens", "bench", "bench report"]
    assert gpu_check.TOTAL_BUDGET_S < 9 * 60
    assert sum(s.budget_s for s in gpu_check.STEPS) <= gpu_check.TOTAL_BUDGET_S
    argv = [" ".join(s.argv) for s in gpu_check.STEPS]
    assert "-m cuda" in argv[0] and "--device cuda" in argv[1]
    assert "--tokens 1e9" in argv[2] and "--json results/bench-cuda.json" in argv[3]


def test_the_cuda_bench_times_the_figure_shape():
    from verify.bench.cli import SIZES
    seq_len, batches = SIZES["cuda"]
    assert [seq_len, max(batches)] == gpu_check.FIGURE_SHAPE


def test_figures_at_512_by_65536_against_copy_and_labml():
    figs = gpu_check.figures(BENCH)
    assert [(f["masker"], f["mode"]) for f in figs] == [
        ("torch", "native"), ("torch", "exact"), ("jax", "exact"), ("labml", "published")]
    assert figs[0]["of_copy"] == 0.8 and figs[0]["vs_labml"] == pytest.approx(50)


def test_the_summary_has_verdict_steps_figures_and_files():
    steps = [Step("cuda tests", ["python"], 90, "pass", 0, 12.0),
             Step("stats 1e9 tokens", ["python"], 200, "FAIL", 1, 95.0,
                  "...\nFAIL torch: selection rate\n")]
    lines = gpu_check.summary("NVIDIA H100", steps, gpu_check.figures(BENCH), 3000.0,
                              ["results/gpu-check-nvidia-h100.txt"])
    text = "\n".join(lines)
    assert lines[0].startswith("gpu-check on NVIDIA H100: 1 of 2 steps did not pass")
    assert "FAIL     stats 1e9 tokens" in text and "95 s" in text and "exit 1" in text
    assert "FAIL torch: selection rate" in text
    assert "[512, 65536] int64, copy 3000 GB/s" in text
    assert "80.0% of copy" in text and "50.0x labml" in text
    assert lines[-1] == "wrote results/gpu-check-nvidia-h100.txt"


def test_the_summary_never_exceeds_30_lines():
    noisy = "\n".join(f"line {i} " + "x" * 200 for i in range(500))
    steps = [Step(f"step {i}", ["python"], 10, "TIMEOUT", None, 10.0, noisy) for i in range(40)]
    lines = gpu_check.summary("GPU", steps, gpu_check.figures(BENCH), 3000.0, ["a", "b"])
    assert len(lines) == gpu_check.MAX_LINES and all(len(x) < 120 for x in lines)


def test_run_all_records_pass_fail_and_timeout_and_writes_the_results(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    steps = [Step("ok", ["python", "-c", "print('fine')"], 30),
             Step("fails", ["python", "-c", "import sys; sys.exit(3)"], 30),
             Step("hangs", ["python", "-c", "import time; time.sleep(60)"], 1)]
    assert gpu_check.run_all("Fake GPU 1", sys.executable, steps) == 1
    out = capsys.readouterr().out
    assert len(out.splitlines()) <= 30 and "2 of 3 steps did not pass" in out
    report = json.loads((tmp_path / "results/gpu-check-fake-gpu-1.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["pass", "FAIL", "TIMEOUT"]
    assert report["steps"][1]["rc"] == 3 and report["steps"][2]["wall_s"] < 10
    assert "fine" in (tmp_path / "results/gpu-check-fake-gpu-1.txt").read_text()
