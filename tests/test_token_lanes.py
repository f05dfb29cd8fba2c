"""The token gate runs several maskers in lockstep (one batch for all, their outputs counted on
worker threads): each masker's counts are exactly those of a run of it alone, a masker that
fails stops alone, and the caller's torch settings are left as they were."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlm_ref import MaskingConfig  # noqa: E402
from tests.broken_maskers import Correct  # noqa: E402
from verify.token.adapters import resolve  # noqa: E402
from verify.token import runner  # noqa: E402
from verify.token.runner import THREADED_FROM, run_masker, run_maskers  # noqa: E402

CONFIG = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
KWARGS = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=100)
RUN = dict(tokens=40_000, seed=3, device="cpu", chunk=4096)       # small calls: counted inline
THREADED = dict(tokens=140_000, seed=3, device="cpu", chunk=THREADED_FROM)  # on the threads


def _counted(h) -> dict:
    """The counted fields of host counts (not how long the run took)."""
    out = {}
    for f in dataclasses.fields(h):
        if f.name not in ("seconds", "usage", "shapes"):
            out[f.name] = getattr(h, f.name)
    return out


def _assert_same(a, b, where=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and not isinstance(a, str):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


@pytest.mark.parametrize("run", [RUN, THREADED], ids=["inline", "threaded"])
def test_maskers_counted_in_lockstep_get_exactly_the_counts_of_a_run_alone(run):
    adapters = [resolve(name, CONFIG) for name in ("numpy", "torch")]
    together = run_maskers(adapters, **run)
    for adapter, h in zip(adapters, together):
        _assert_same(_counted(h), _counted(run_masker(adapter, **run)), adapter.name)
    assert together[0].calls == together[1].calls > 2


def test_counting_on_threads_gives_the_counts_of_counting_inline(monkeypatch):
    adapters = [resolve(name, CONFIG) for name in ("numpy", "torch")]
    threaded = run_maskers(adapters, **THREADED)
    monkeypatch.setattr(runner, "THREADED_FROM", 1 << 40)  # the same calls, counted inline
    inline = run_maskers(adapters, **THREADED)
    for adapter, a, b in zip(adapters, threaded, inline):
        _assert_same(_counted(a), _counted(b), adapter.name)


class FailsAtCall:
    """A correct masker that raises on its `n`-th call."""

    def __init__(self, n, **kwargs):
        self.inner, self.n, self.calls = Correct(**kwargs), n, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("boom")
        return self.inner(x)


@pytest.mark.parametrize("run", [RUN, THREADED], ids=["inline", "threaded"])
def test_a_masker_that_fails_in_a_lockstep_run_stops_alone(run):
    failing = resolve(FailsAtCall(4, **KWARGS), CONFIG)
    correct = resolve(Correct(**KWARGS), CONFIG)
    correct.name = "correct"
    bad, good = run_maskers([failing, correct], **run)
    assert "masker runs without error" in bad.host_problems
    assert not good.host_problems
    assert good.by_call.shape[0] == good.calls and bad.by_call.shape[0] < bad.calls


def test_a_run_leaves_the_callers_torch_threads_as_it_found_them():
    before = torch.get_num_threads()
    run_maskers([resolve("torch", CONFIG)], **RUN)
    assert torch.get_num_threads() == before


def test_a_lockstep_run_refuses_maskers_of_different_configs():
    other = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=200)
    with pytest.raises(ValueError, match="one config"):
        run_maskers([resolve("numpy", CONFIG), resolve("torch", other)], **RUN)
