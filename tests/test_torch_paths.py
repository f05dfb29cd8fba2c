"""mlm_torch's native path has one formulation per kind of device: `mlm_torch.cpu` for CPU
tensors, a fused Triton kernel on CUDA (tests/test_fast_paths.py), and `mask_tokens_torch`,
torch ops alone, for a GPU without Triton. Each has its own stream; each must keep the
contract, and the CPU one must draw its outcomes with the contract's probabilities rounded to
2**-24 and no further."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

from mlm_ref import MaskingConfig  # noqa: E402
from mlm_torch import cpu  # noqa: E402
from mlm_torch.mlm import mask_tokens_torch  # noqa: E402
from tests.strategies import batches, configs  # noqa: E402
from tests.test_mlm_invariants import _assert_contract  # noqa: E402


@pytest.mark.parametrize("formulation", [cpu.mask_tokens_cpu, mask_tokens_torch],
                         ids=["cpu", "torch-ops"])
@given(data=st.data())
def test_each_formulation_keeps_the_contract(formulation, data):
    kw = data.draw(configs())
    x = torch.from_numpy(data.draw(batches(kw)))
    before = x.clone()
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2 ** 32)))
    x_masked, y = formulation(x, MaskingConfig(**kw), generator=g)
    assert torch.equal(x, before)
    assert x_masked.dtype == y.dtype == x.dtype and x_masked.shape == y.shape == x.shape
    _assert_contract(MaskingConfig(**kw), before.numpy(), x_masked.numpy(), y.numpy())


@given(p=st.floats(0, 1), r=st.floats(0, 1), n=st.floats(0, 1))
def test_cpu_thresholds_are_the_probabilities_rounded_up_to_2_to_the_minus_24(p, r, n):
    if r + n > 1:
        r, n = r / 2, n / 2
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=10, masking_prob=p,
                        randomize_prob=r, no_change_prob=n)
    k_random, k_keep, k_select, candidate_bytes = cpu._plan(cfg)[:4]
    scale = 2.0 ** 24
    for k, t in ((k_random, p * r), (k_keep, p * (r + n)), (k_select, p)):
        assert (k - 1) / scale < t <= k / scale or k == 0 == t
    assert 0 <= k_random <= k_keep <= k_select <= 2 ** 24
    # the byte bound keeps every k below k_select and no byte that cannot reach it
    assert (candidate_bytes << 16) >= k_select > (candidate_bytes - 1) << 16 or k_select == 0


def test_cpu_outcome_frequencies_are_the_contracts_at_a_coarse_grid():
    # p = 3/8, r = 1/4, n = 1/4: every threshold is a multiple of 2**-24, so the outcome
    # frequencies over 2**22 positions must sit within 6 sigma of the contract's values
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=50, masking_prob=0.375,
                        randomize_prob=0.25, no_change_prob=0.25)
    x = torch.full((1 << 22,), 7, dtype=torch.int64)
    x_masked, y = cpu.mask_tokens_cpu(x, cfg, generator=torch.Generator().manual_seed(3))
    selected = (y != 0).numpy()
    changed_to_mask = (x_masked == 1).numpy()
    random = selected & (x_masked != 7).numpy() & ~changed_to_mask
    n = x.numel()
    # a random draw (uniform over the 50 ids) equal to 1 looks masked, one equal to 7 unchanged
    for observed, prob in ((selected.sum(), 0.375),
                           (changed_to_mask.sum(), 0.375 * (0.5 + 0.25 / 50)),
                           (random.sum(), 0.375 * 0.25 * 48 / 50)):
        sigma = math.sqrt(n * prob * (1 - prob))
        assert abs(observed - n * prob) < 6 * sigma, (observed, n * prob)


def test_cpu_random_ids_skip_the_excluded_ones_and_cover_the_rest():
    excluded = [0, 3, 4, 9, 10, 11, 19]
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=20, masking_prob=1.0,
                        randomize_prob=1.0, no_change_prob=0.0, random_exclude=excluded)
    x = torch.full((20000,), 5, dtype=torch.int64)
    x_masked, _ = cpu.mask_tokens_cpu(x, cfg, generator=torch.Generator().manual_seed(0))
    drawn = set(np.unique(x_masked.numpy()).tolist())
    assert drawn == set(range(20)) - set(excluded)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32, torch.uint16,
                                   torch.uint32, torch.uint64])
def test_cpu_path_handles_every_integer_dtype_that_holds_the_ids(dtype):
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=200, masking_prob=0.5)
    x = torch.arange(2, 200).to(dtype).repeat(10)
    x_masked, y = cpu.mask_tokens_cpu(x, cfg, generator=torch.Generator().manual_seed(1))
    assert x_masked.dtype == y.dtype == dtype
    _assert_contract(cfg, x.numpy(), x_masked.numpy(), y.numpy())


@pytest.mark.parametrize("formulation", [cpu.mask_tokens_cpu, mask_tokens_torch],
                         ids=["cpu", "torch-ops"])
def test_each_formulation_passes_a_harness_smoke_run(formulation):
    # the torch-ops formulation serves GPUs without Triton: the harness sees it here, on CPU
    from verify import assert_masker_conforms
    cfg = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=100)
    # the global generator, which the harness seeds for its same-seed-same-masks check
    assert_masker_conforms(lambda x: formulation(x, cfg), cfg, tokens=1_000_000, seed=7)


def test_cpu_stream_follows_logical_positions_not_memory_layout():
    cfg = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=[2], n_tokens=500,
                        masking_prob=0.4)
    base = torch.randint(0, 500, (64, 48), generator=torch.Generator().manual_seed(0))
    strided = base.t()                         # [48, 64], not contiguous
    assert not strided.is_contiguous()
    seed = lambda: torch.Generator().manual_seed(11)  # noqa: E731
    got = cpu.mask_tokens_cpu(strided, cfg, generator=seed())
    want = cpu.mask_tokens_cpu(strided.contiguous(), cfg, generator=seed())
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert torch.equal(strided, base.t())      # the caller's view is untouched


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_cpu_exact_path_gives_the_torch_formulations_bits_in_any_slices(data):
    # the CPU exact path hashes only the draws that decide an outcome, a slice at a time,
    # gathering the selected positions of several slices, with randint's bits hashed for all
    # selected positions or for the random ones only: no choice may change a bit
    from mlm_torch import exact
    kw = data.draw(configs())
    x = torch.from_numpy(data.draw(batches(kw)))
    if x.dim() == 2 and data.draw(st.booleans()):
        x = x.t()                                          # a strided view
    key = data.draw(st.integers(0, 2**63 - 1))
    cfg = MaskingConfig(**kw)
    want = exact.mask_tokens_exact_torch(x, cfg, key=key)
    saved = exact.CPU_CHUNK, exact.PENDING, exact.SPLIT
    try:
        exact.CPU_CHUNK = data.draw(st.sampled_from([1, 5, 64, 2**16]))
        exact.PENDING = data.draw(st.sampled_from([1, 7, 2**16]))
        exact.SPLIT = data.draw(st.sampled_from([0, 3, 2**12]))
        got = exact.mask_tokens_exact_cpu(x, cfg, key=key)
    finally:
        exact.CPU_CHUNK, exact.PENDING, exact.SPLIT = saved
    for g, w in zip(got, want):
        assert g.dtype == x.dtype and g.shape == x.shape
        np.testing.assert_array_equal(g.numpy(), w.numpy())


@given(p=st.floats(0, 1), bits=st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_cpu_exact_integer_thresholds_equal_the_float32_comparison(p, bits):
    from mlm_torch import exact, threefry
    b = torch.tensor(bits, dtype=torch.int64)
    u = threefry.uniform_from_bits(((b ^ 2**31) - 2**31).to(torch.int32))   # float32
    want = (u < float(np.float32(p))).numpy()
    np.testing.assert_array_equal(np.array(bits, dtype=np.uint64) < exact._bits_below(
        float(np.float32(p))), want)


def test_cpu_native_path_takes_uint16_ids_when_a_special_id_is_65535():
    # the eligibility table's top (65536) does not fit uint16: it must not be cast to it
    cfg = MaskingConfig(padding_token=0, mask_token=40000, no_mask_tokens=[65535],
                        n_tokens=65000, masking_prob=0.5)
    x = torch.arange(0, 65536).to(torch.uint16)
    x_masked, y = cpu.mask_tokens_cpu(x, cfg, generator=torch.Generator().manual_seed(2))
    _assert_contract(cfg, x.numpy(), x_masked.numpy(), y.numpy())
