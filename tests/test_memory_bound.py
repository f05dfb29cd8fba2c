"""The memory bound of docs/contract.md: beyond its two outputs, a masking call holds at most a
few bytes per position and one slice of draws. Not a timing: peak bytes, measured by
verify/bench/memory.py (tracemalloc for NumPy, the peak resident set for torch)."""

import importlib.util
import os

import pytest

MiB = 2**20

# (backend, mode) -> (bytes per position beyond the outputs, constant bytes): docs/contract.md
BOUNDS = {("numpy", "native"): (5, 8 * MiB), ("numpy", "exact"): (0, 8 * MiB),
          ("torch", "native"): (1, 32 * MiB), ("torch", "exact"): (0, 32 * MiB)}


def _memory():
    from verify.bench import memory
    return memory


def _check(rows):
    assert rows
    for r in rows:
        per_position, constant = BOUNDS[r["backend"], r["mode"]]
        bound = 2 * r["input_bytes"] + per_position * r["n"] + constant
        assert r["peak_extra_bytes"] <= bound, (r, bound)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_peak_memory_is_the_outputs_plus_a_few_bytes_a_position(backend):
    memory = _memory()
    if backend == "torch":
        pytest.importorskip("torch")
        if not memory.rss_available():
            pytest.skip("needs Linux's /proc/self/clear_refs to read the peak resident set")
    _check(memory.measure(n=2**24, dtypes=("uint8",), backends=(backend,)))


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.slow
def test_peak_memory_bound_holds_above_2_to_the_31_positions():
    n = 2**31 + 2**16 + 3                     # uint8 ids: 2 GiB in, 4 GiB of outputs
    if _available_bytes() < 14 * n:
        pytest.skip("needs about 14 bytes of free memory per position")
    backends = ("numpy", "torch") if importlib.util.find_spec("torch") and \
        os.path.exists("/proc/self/clear_refs") else ("numpy",)
    _check(_memory().measure(n=n, dtypes=("uint8",), backends=backends))
