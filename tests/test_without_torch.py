"""Each gate needs only what it uses: with PyTorch hidden (as if not installed), the NSP gate,
the whole-word gate on NumPy and JAX maskers and the pipeline gate on NumPy pipelines, whole-word
and token-level (a token-level stream is counted in NumPy), run to PASS; a broken token-level
NumPy pipeline FAILs there with the counted check that shows it, never a traceback."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every finder answers "no such module" for torch: `import torch` raises ModuleNotFoundError
# and `importlib.util.find_spec("torch")` is None, as on a machine without it.
HIDE_TORCH = """
import runpy, sys
class Hide:
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            return None
        return self.finder.find_spec(name, path, target)
sys.meta_path[:] = [Hide(f) if hasattr(f, "find_spec") else f for f in sys.meta_path]
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
assert "torch" not in sys.modules or sys.modules["torch"] is None
"""


def _run(*argv):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", HIDE_TORCH, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


GATES = {
    "nsp": ["verify.nsp", "--pairs", "4000"],
    "wwm-numpy": ["verify.stats", "--wwm", "--masker", "numpy", "--tokens", "1e5"],
    "wwm-jax": ["verify.stats", "--wwm", "--masker", "jax", "--tokens", "1e5"],
    "pipeline-wwm": ["verify.pipeline", "tests.numpy_pipeline:whole_words", "--epochs", "2"],
    "pipeline-token": ["verify.pipeline", "tests.numpy_pipeline:batches", "--epochs", "2",
                       "--world-size", "2"],
}


@pytest.mark.parametrize("gate", GATES)
def test_the_gate_passes_without_torch(gate):
    if gate.endswith("jax") and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    done = _run(*GATES[gate], "--no-progress")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr and done.stdout.rstrip().endswith("PASS")


def test_a_broken_token_level_numpy_pipeline_fails_without_torch():
    done = _run("verify.pipeline", "tests.numpy_pipeline:only_mask_tokens", "--epochs", "2",
                "--no-progress")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "Traceback" not in done.stderr and any(line.startswith("FAIL") for line in lines)
    failed = [line for line in lines if line.rstrip().endswith("FAIL")]
    assert any("category split" in line for line in failed), failed


def test_the_numpy_pipeline_passes_the_token_level_gate_with_torch():
    pytest.importorskip("torch")
    from verify.pipeline import check_pipeline
    from tests.numpy_pipeline import CONFIG, batches
    assert check_pipeline(batches, CONFIG, epochs=2, world_size=2).passed
