"""The token-level counting is written once and runs on torch tensors (the token gate on a GPU)
or on NumPy arrays (the token gate on a CPU; a pipeline's stream, without torch): both give the
same counts on the same calls (every integer count bit for bit; the dispersion sums, floats
summed in another order, to rounding), for a vocabulary small enough for the per-id table and
for one past it, and so does a whole gate run counted either way."""

import dataclasses

import numpy as np
import pytest

from mlm_ref.config import MaskingConfig
from verify.token import runner
from verify.token.adapters import resolve
from verify.token.counts import ID_TABLE_MAX, Counts

SMALL = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=(101, 102), n_tokens=30522,
                      random_exclude=(1, 2, 3))
LARGE = dataclasses.replace(SMALL, n_tokens=ID_TABLE_MAX + 1000)


def _calls(config: MaskingConfig, seq: int = 48, batch: int = 8, calls: int = 6):
    """Replayed pairs of inputs with [CLS], [SEP], padding and ids past the vocabulary, masked
    with every outcome (including an ineligible id selected, an invariant broken)."""
    rng = np.random.default_rng(3)
    for call in range(calls):
        if call % 2 == 0:
            x = rng.integers(0, config.n_tokens + 5, (seq, batch))
            x[0], x[seq // 2], x[-4:] = 101, 102, config.padding_token
        sel = rng.random((seq, batch)) < 0.2
        kind = rng.random((seq, batch))
        other = rng.integers(0, config.n_tokens, (seq, batch))
        out = np.where(sel, np.where(kind < 0.8, config.mask_token,
                                     np.where(kind < 0.9, x, other)), x)
        yield x, out, np.where(sel, x, config.padding_token)


def _host(config: MaskingConfig, arrays: str):
    torch = pytest.importorskip("torch") if arrays == "torch" else None
    counts = Counts(config, 48, 8, 6, "cpu", arrays=arrays)
    for x, out, y in _calls(config):
        if torch is not None:
            x, out, y = (torch.from_numpy(a) for a in (x, out, y))
        counts.update(x, x, out, y)
    return dataclasses.asdict(counts.host())


def _assert_same(a, b, path="counts"):
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), path
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12), path
    else:
        assert a == b, path


def assert_same_runs(runs, others):
    """Two gate runs' `HostCounts`, masker by masker, the same but for their timing."""
    assert len(runs) == len(others)
    for a, b in zip(runs, others):
        a, b = dataclasses.asdict(a), dataclasses.asdict(b)
        a.pop("seconds"), b.pop("seconds")
        _assert_same(a, b)


@pytest.mark.parametrize("config", [SMALL, LARGE], ids=["id-table", "past-the-id-table"])
def test_numpy_and_torch_counts_are_identical(config):
    numpy_counts = _host(config, "numpy")
    _assert_same(numpy_counts, _host(config, "torch"))
    assert sum(numpy_counts["invariants"].values()) > 0     # the broken invariants are counted


@pytest.mark.parametrize("chunk", [1 << 12, runner.THREADED_FROM], ids=["inline", "threaded"])
def test_a_gate_run_counted_in_torch_gives_the_counts_of_one_counted_in_numpy(chunk,
                                                                            monkeypatch):
    """On a CPU the runner counts in NumPy (`runner.counting_arrays`); torch, what it counts with
    on a GPU, must give the same run: our masker and a planted defect that breaks invariants."""
    pytest.importorskip("torch")
    config = dataclasses.replace(SMALL, random_exclude=())    # as outside maskers take it
    maskers = [resolve(m, config) for m in ("torch", "tests.broken_maskers:MutatesInput")]
    args = dict(tokens=4 * chunk, seed=5, device="cpu", chunk=chunk)
    assert runner.counting_arrays(runner.torch.device("cpu")) == "numpy"
    in_numpy = runner.run_maskers(maskers, **args)
    monkeypatch.setattr(runner, "counting_arrays", lambda device: "torch")
    in_torch = runner.run_maskers(maskers, **args)
    assert_same_runs(in_numpy, in_torch)
    assert in_numpy[1].invariants["input not mutated"] > 0
