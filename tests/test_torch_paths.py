"""mlm_torch's native path has a compact formulation (large CPU batches) and an elementwise
one (small CPU batches, and a GPU without Triton: no data-dependent shapes, nothing read
back). From the same uniforms they must select the same positions and give the same labels
and [MASK]s; on the CPU, where both draw random ids only where needed, identical outputs."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

torch = pytest.importorskip("torch")

from mlm_ref import MaskingConfig  # noqa: E402
from mlm_torch.mlm import _mask_compact, _mask_elementwise  # noqa: E402
from tests.strategies import batches, configs  # noqa: E402
from tests.test_mlm_invariants import _assert_contract  # noqa: E402


@given(data=st.data())
def test_the_elementwise_path_keeps_the_contract_and_agrees_with_the_compact_one(data):
    kw = data.draw(configs())
    x = torch.from_numpy(data.draw(batches(kw)))
    cfg = MaskingConfig(**kw)
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    before = x.clone()
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    a_masked, a_y = _mask_elementwise(x, u, cfg, g(), few_ids=False)  # as on a GPU
    b_masked, b_y = _mask_compact(x, u, cfg, g())
    c_masked, c_y = _mask_elementwise(x, u, cfg, g(), few_ids=True)   # small CPU batches
    assert torch.equal(x, before)
    for masked, y in ((a_masked, a_y), (b_masked, b_y), (c_masked, c_y)):
        _assert_contract(cfg, before.numpy(), masked.numpy(), y.numpy())
    np.testing.assert_array_equal(a_y.numpy(), b_y.numpy())
    random = (b_y != cfg.padding_token) & (u < cfg.masking_prob * cfg.randomize_prob)
    np.testing.assert_array_equal(a_masked[~random].numpy(), b_masked[~random].numpy())
    assert torch.equal(b_masked, c_masked) and torch.equal(b_y, c_y)
