"""The fast paths against the reference semantics.

* The Triton kernels (`mlm_torch.fused`) run here on CPU tensors under `TRITON_INTERPRET=1`
  (set below, before Triton is imported): the exact kernel must be bit-equal to the pure-torch
  exact path and to NumPy, with keys split on the host and in the kernel; the native kernel
  must keep every exact invariant of the contract and roughly the configured rates.
* On a CUDA device (`-m cuda`), the same checks run on the real kernels, and a CUDA tensor must
  be routed to them by the public `mask_tokens`.
Sizes stay tiny: the interpreter runs each program as NumPy code.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mlm_ref import MaskingConfig, exact as np_exact, threefry as np_threefry
from tests.strategies import batches, configs

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # no GPU: interpret the kernels on CPU tensors instead
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are first defined
pytest.importorskip("triton", reason="Triton is not installed: the fused kernels are unused")
from mlm_torch import exact as torch_exact, fused  # noqa: E402
from mlm_torch.mlm import mask_tokens as torch_mask_tokens  # noqa: E402

if not fused.triton_available():
    pytest.skip("the Triton kernels do not import here", allow_module_level=True)

CUDA = torch.cuda.is_available()
# the interpreter only runs CPU tensors; a real GPU only CUDA ones
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DEVICES = ["cpu"] if INTERPRET else []
# Hypothesis draws, kept few: every interpreted launch costs tens of milliseconds
FEW = settings(max_examples=30, deadline=None)


def _assert_contract(cfg: MaskingConfig, x, x_masked, y):
    x, x_masked, y = (np.asarray(a.cpu()) for a in (x, x_masked, y))
    assert x_masked.shape == x.shape == y.shape and x_masked.dtype == y.dtype == x.dtype
    selected = y != cfg.padding_token
    np.testing.assert_array_equal(y[selected], x[selected])
    assert not (selected & np.isin(x, cfg.ineligible_tokens)).any()
    np.testing.assert_array_equal(x_masked[~selected], x[~selected])
    out = x_masked[selected]
    drawn = (out != cfg.mask_token) & (out != x[selected])
    assert np.isin(out[drawn], cfg.random_ids()).all()


def _exact_all_ways(x: np.ndarray, cfg: MaskingConfig, key, device: str):
    """NumPy's answer, and the kernel's with the key split on the host and in the kernel."""
    want = np_exact.mask_tokens_exact(x, cfg, key=key)
    xt = torch.from_numpy(x).to(device)
    key_tensor = torch.tensor(np_threefry.key_data(key).astype(np.int64),
                              device=device)
    host = fused.mask_tokens_exact(xt, cfg, key=key)
    kernel = fused.mask_tokens_exact(xt, cfg, key=key_tensor, split_in_kernel=True)
    return want, host, kernel


def _assert_equal(got, want, what):
    for name, g, w in zip(("x_masked", "y"), got, want):
        np.testing.assert_array_equal(np.asarray(g.cpu()), w, err_msg=f"{what}: {name}")


@pytest.mark.skipif(not INTERPRET, reason="set TRITON_INTERPRET=1 to run kernels on CPU")
@FEW
@given(data=st.data())
def test_exact_kernel_is_bit_equal_to_numpy_and_torch(data):
    kw = data.draw(configs())
    cfg = MaskingConfig(**kw)
    x = data.draw(batches(kw, max_size=200))
    key = data.draw(st.one_of(st.integers(0, 2**32 - 1),
                              st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2)))
    want, host, kernel = _exact_all_ways(x, cfg, key, "cpu")
    _assert_equal(host, want, "key split on the host")
    _assert_equal(kernel, want, "key split in the kernel")
    _assert_equal(torch_exact.mask_tokens_exact_torch(torch.from_numpy(x), cfg, key=key),
                  want, "pure-torch exact path")


@pytest.mark.skipif(not INTERPRET, reason="set TRITON_INTERPRET=1 to run kernels on CPU")
def test_exact_kernel_spans_several_programs_and_the_known_answer():
    """More positions than one program holds, thresholds at their extremes, JAX's answer."""
    cfg = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=[101, 102],
                        n_tokens=30522, masking_prob=0.5, random_exclude=[5, 7, 30000])
    x = np.random.default_rng(0).integers(0, 200, size=(fused.EXACT_BLOCK + 37, 3))
    for key in (1234, [7, 2**32 - 1]):
        want, host, kernel = _exact_all_ways(x, cfg, key, "cpu")
        _assert_equal(host, want, f"key {key}, host split")
        _assert_equal(kernel, want, f"key {key}, kernel split")
    from tests.test_mlm_known_answer import CONFIG, EXACT, SEED, X
    got = fused.mask_tokens_exact(torch.tensor(X).T, MaskingConfig(**CONFIG), key=SEED)
    _assert_equal([g.T for g in got], [np.array(e) for e in EXACT], "the pinned JAX answer")


@pytest.mark.skipif(not INTERPRET, reason="set TRITON_INTERPRET=1 to run kernels on CPU")
@FEW
@given(data=st.data())
def test_native_kernel_keeps_every_exact_invariant(data):
    kw = data.draw(configs())
    cfg = MaskingConfig(**kw)
    x = torch.from_numpy(data.draw(batches(kw, max_size=200)))
    before = x.clone()
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    x_masked, y = fused.mask_tokens_native(x, cfg, generator=g)
    assert torch.equal(x, before), "the input was modified"
    _assert_contract(cfg, x, x_masked, y)


@pytest.mark.skipif(not INTERPRET, reason="set TRITON_INTERPRET=1 to run kernels on CPU")
def test_native_kernel_rates_and_stream():
    """Selection and category rates near the configured ones (a smoke check, not the harness:
    6-sigma bounds), the same generator state gives the same output, and it advances."""
    cfg = MaskingConfig(padding_token=0, mask_token=3, n_tokens=50, masking_prob=0.5,
                        randomize_prob=0.25, no_change_prob=0.25, random_exclude=[7])
    x = torch.arange(10, 50).repeat(1000).reshape(400, 100)            # [seq_len, batch]
    first = fused.mask_tokens_native(x, cfg, generator=torch.Generator().manual_seed(1))
    again = fused.mask_tokens_native(x, cfg, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    g = torch.Generator().manual_seed(1)
    fused.mask_tokens_native(x, cfg, generator=g)
    assert not torch.equal(fused.mask_tokens_native(x, cfg, generator=g)[1], first[1])
    x_masked, y = first
    n, selected = x.numel(), y != cfg.padding_token
    k = int(selected.sum())
    assert abs(k - n / 2) < 6 * (n / 4) ** 0.5
    out, orig = x_masked[selected], x[selected]
    per_id = cfg.randomize_prob / cfg.n_random                         # a draw hits one id
    for count, prob in (((out == cfg.mask_token).sum(), 0.5 + per_id),
                        ((out == orig).sum(), 0.25 + per_id)):
        assert abs(int(count) - k * prob) < 6 * (k * prob * (1 - prob)) ** 0.5
    assert not (out == 7).any(), "an excluded id was drawn"
    assert ((out != orig) & (out != cfg.mask_token)).any(), "no random id was ever drawn"


def test_cpu_tensors_use_the_torch_path_and_cuda_ones_the_kernels():
    x = torch.zeros(4, 2, dtype=torch.int64)
    assert not fused.use_fused(x)
    assert fused.use_fused(x.to("cuda")) if CUDA else True


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA or INTERPRET, reason="needs a CUDA device and compiled Triton "
                    "(TRITON_INTERPRET unset)")
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_cuda_kernels_match_the_reference(dtype):
    cfg = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=[101, 102],
                        n_tokens=30522, random_exclude=[100])
    x = np.random.default_rng(1).integers(0, 30522, size=(512, 300)).astype(dtype_np(dtype))
    want, host, kernel = _exact_all_ways(x, cfg, 99, "cuda")
    _assert_equal(host, want, "CUDA exact, host split")
    _assert_equal(kernel, want, "CUDA exact, kernel split")
    g = torch.Generator(device="cuda").manual_seed(0)
    xt = torch.from_numpy(x).cuda()
    x_masked, y = torch_mask_tokens(xt, cfg, generator=g, check_ids=False)   # public entry
    _assert_contract(cfg, xt, x_masked, y)
    rate = float((y != 0).double().mean())
    assert abs(rate - 0.15 * float(np.isin(x, cfg.ineligible_tokens, invert=True).mean())) < 0.01


def dtype_np(dtype):
    return {torch.int32: np.int32, torch.int64: np.int64}[dtype]
