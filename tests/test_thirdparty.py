"""The adapters around published maskers keep those maskers' behaviour and our contract's shape.

What the published maskers get right or wrong is the harness's business (docs/conformance.md);
these tests check that the adapters themselves map layouts and labels faithfully.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from verify import published  # noqa: E402

CONFIG = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=500)


def test_hf_tokenizer_has_exactly_the_configured_vocabulary_and_special_ids():
    from mlm_ref import MaskingConfig
    tok = published.hf_tokenizer(MaskingConfig(**CONFIG))
    assert len(tok) == 500
    assert sorted(tok.all_special_ids) == [0, 1, 2, 3]
    assert tok.mask_token_id == 1 and tok.pad_token_id == 0


@pytest.mark.parametrize("factory", [published.hf_torch, published.hf_numpy])
def test_hf_adapters_return_contract_layout_and_padding_labels(factory):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 500, size=(64, 16)))          # [seq_len, batch]
    before = x.clone()
    torch.manual_seed(0)
    x_masked, y = factory(**CONFIG)(x)
    assert x_masked.shape == x.shape and y.shape == x.shape and y.dtype == x.dtype
    selected = y != 0
    assert 0 < int(selected.sum()) < x.numel() // 2
    assert torch.equal(y[selected], before[selected])                   # labels: the originals
    assert not selected[torch.isin(before, torch.tensor([0, 1, 2, 3]))].any()
    assert torch.equal(x_masked[~selected], before[~selected])
    # the collator writes into its input; the adapter passes that on instead of hiding it
    assert torch.equal(x, x_masked)


@pytest.mark.parametrize("factory", [published.hf_torch, published.hf_numpy])
def test_hf_adapters_are_seeded_by_torch_manual_seed(factory):
    x = torch.arange(4, 2004).reshape(200, 10)
    masker = factory(**CONFIG)
    torch.manual_seed(5)
    first = masker(x.clone())
    torch.manual_seed(5)
    second = masker(x.clone())
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
