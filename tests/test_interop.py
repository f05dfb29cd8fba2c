"""JAX and PyTorch exchange arrays through DLPack without copying when they share a device,
so the harness checks the JAX backend without a host round trip."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

from mlm_ref import MaskingConfig  # noqa: E402
from verify.engine.frameworks import BACKENDS  # noqa: E402
from verify.token.adapters import resolve  # noqa: E402


def test_torch_to_jax_and_back_share_memory():
    x = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    assert jax.dlpack.from_dlpack(x).unsafe_buffer_pointer() == x.data_ptr()
    y = jax.numpy.arange(12, dtype=jax.numpy.int32)
    assert BACKENDS["jax"].to_torch(y, "cpu").data_ptr() == y.unsafe_buffer_pointer()


def test_the_jax_adapter_returns_jaxs_own_masks():
    config = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2,), n_tokens=50)
    adapter = resolve("jax", config)
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 50, (64, 8))).to(adapter.dtype)
    _, out, y, problems = adapter(x, 7)
    assert problems == []
    from mlm_jax import MLM
    want = MLM(**{k: getattr(config, k) for k in ("padding_token", "mask_token", "n_tokens",
                                                   "no_mask_tokens")})(x.numpy(), key=7)
    np.testing.assert_array_equal(out.numpy(), np.asarray(want[0]))
    np.testing.assert_array_equal(y.numpy(), np.asarray(want[1]))
