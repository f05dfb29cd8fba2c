"""Exact mode: the same key gives the same masks, bit for bit, in every backend.

The NumPy port is the oracle; every other backend (and device, where present) must equal it
over Hypothesis-drawn configs, shapes, dtypes and keys. JAX's own draws are checked against the
ports in test_threefry.py; the pinned answer in test_mlm_known_answer.py catches a JAX release
that changes its bits.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tests.strategies import batches, configs
from verify import exact
from verify.engine.frameworks import BACKENDS, Backend

KEYS = st.one_of(st.integers(0, 2**63 - 1),
                 st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2))


@given(data=st.data())
def test_every_backend_matches_the_numpy_oracle_bit_for_bit(backend, data):
    kw = data.draw(configs())
    x = data.draw(batches(kw))
    key = data.draw(KEYS)
    numpy = BACKENDS["numpy"]
    want = numpy.mask(numpy.mlm(**kw), x, key=key)
    got = backend.mask(backend.mlm(**kw), x, key=key)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@given(seed=st.integers(0, 2**32 - 1), step=st.integers(0, 2**32 - 1),
       rank=st.integers(0, 1023))
def test_derived_keys_are_the_same_in_every_backend(seed, step, rank):
    from mlm_ref import threefry as np_threefry
    want = np.asarray(np_threefry.derive_key(seed, step, rank), dtype=np.uint32)
    if BACKENDS["torch"].available():
        from mlm_torch import threefry as torch_threefry
        got = torch_threefry.derive_key(seed, step, rank).cpu().numpy().astype(np.uint32)
        np.testing.assert_array_equal(got, want)
    if BACKENDS["jax"].available():
        import jax
        from mlm_jax import derive_key
        np.testing.assert_array_equal(np.asarray(jax.random.key_data(
            derive_key(seed, step, rank))), want)


def test_exact_mode_on_cuda_equals_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    b = BACKENDS["torch"]
    mlm = b.mlm(**exact.CONFIGS[1])
    x = exact.batch(np.random.default_rng(0), (4096, 33), exact.CONFIGS[1], np.int64)
    for key in (0, 7, [123, 456]):
        cpu, cuda = b.mask(mlm, x, key=key), b.mask(mlm, x, key=key, device="cuda")
        np.testing.assert_array_equal(cpu[0], cuda[0])
        np.testing.assert_array_equal(cpu[1], cuda[1])


def test_exact_cli_passes_when_backends_agree(capsys):
    assert exact.main(["--device", "cpu", "--batches", "3"]) == 0
    assert "identical" in capsys.readouterr().out


def test_exact_cli_reports_the_first_difference_and_fails(monkeypatch, capsys):
    if sum(b.available() for b in BACKENDS.values()) < 2:
        pytest.skip("needs two backends to compare")
    real = Backend.mask

    def off_by_one(self, mlm, x, **kw):  # a backend that gets the last label wrong
        x_masked, y, native = real(self, mlm, x, **kw)
        if self.name != "numpy" and y.size:
            y = y.copy()
            y.reshape(-1)[-1] += 1
        return x_masked, y, native

    monkeypatch.setattr(Backend, "mask", off_by_one)
    assert exact.main(["--device", "cpu", "--batches", "2"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "y differs at" in out


def test_exact_cli_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit) as stop:
        exact.main(["--batches", "0"])
    assert stop.value.code == 2
    assert "--batches" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [2**40 + 5, -1, 2**63 - 1])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_a_seed_means_the_same_key_whatever_the_dtype(backend, seed, dtype):
    """JAX's own `key(seed)` changes meaning with x64 mode (needed for int64 ids); ours does not:
    a seed is `jax.random.key(seed)` of the default 32-bit mode, (0, seed mod 2**32)."""
    cfg = exact.CONFIGS[0]
    x = exact.batch(np.random.default_rng(1), (64, 8), cfg, dtype)
    numpy = BACKENDS["numpy"]
    want = numpy.mask(numpy.mlm(**cfg), x, key=[0, seed % 2**32])
    got = backend.mask(backend.mlm(**cfg), x, key=seed)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_jax_masks_a_large_batch_a_slice_at_a_time_with_the_oracles_bits(data):
    """Above `SLICED_ABOVE` positions JAX hashes a slice of counters at a time (memory bound);
    small stand-ins for the two constants make every batch take that path, the last slice
    overlapping the one before it."""
    pytest.importorskip("jax")
    from mlm_jax import mlm as jax_mlm
    kw = data.draw(configs())
    x = data.draw(batches(kw))
    key = data.draw(KEYS)
    numpy = BACKENDS["numpy"]
    want = numpy.mask(numpy.mlm(**kw), x, key=key)
    saved = jax_mlm.SLICED_ABOVE, jax_mlm.SLICE
    try:
        jax_mlm.SLICE = data.draw(st.integers(1, max(1, x.size)))
        jax_mlm.SLICED_ABOVE = jax_mlm.SLICE - 1       # sliced whenever a slice fits
        jax_mlm.mask_tokens_jit.clear_cache()          # the constants are read when tracing
        got = BACKENDS["jax"].mask(BACKENDS["jax"].mlm(**kw), x, key=key)
    finally:
        jax_mlm.SLICED_ABOVE, jax_mlm.SLICE = saved
        jax_mlm.mask_tokens_jit.clear_cache()
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
