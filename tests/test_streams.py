"""Stateless streams: an example's mask is a pure function of (seed, purpose, epoch, index).

The same example gets the same mask whatever batch it lands in (batch sizes 8 and 32, shuffled
order, any padding length), in NumPy, PyTorch and JAX alike; another epoch or purpose gives
another mask; and the keys are exactly `fold_in(fold_in(fold_in(key(seed), tag), epoch), i)`.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

import mlm_jax.streams as jax_streams
import mlm_torch.streams as torch_streams
from mlm_ref import MaskingConfig, mask_tokens_exact
from mlm_ref import streams

CONFIG = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=[101, 102],
                       n_tokens=30522, masking_prob=0.3)
N = 64


def _dataset(n: int = N) -> list[np.ndarray]:
    """Ragged examples: [CLS] tokens [SEP], of lengths 3 .. 40."""
    rng = np.random.default_rng(0)
    return [np.concatenate([[101], rng.integers(999, 30522, rng.integers(1, 39)), [102]])
            for _ in range(n)]


def _padded(rows: list[np.ndarray], seq: int | None = None) -> np.ndarray:
    seq = seq or max(len(r) for r in rows)
    x = np.zeros((len(rows), seq), np.int64)                       # [batch, seq]
    for i, r in enumerate(rows):
        x[i, :len(r)] = r
    return x


def _masks_by_index(mask_rows, keys_of, batch_size: int, order, seq=None) -> dict:
    data, out = _dataset(), {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        x = _padded([data[i] for i in chunk], seq)
        x_masked, y = mask_rows(x, keys_of(chunk))
        for row, i in enumerate(chunk):
            n = len(data[i])
            out[i] = (np.asarray(x_masked)[row, :n].copy(), np.asarray(y)[row, :n].copy())
    return out


BACKENDS = {
    "numpy": (lambda x, k: streams.mask_rows(x, k, CONFIG),
              lambda idx: streams.example_keys(5, 2, idx)),
    "torch": (lambda x, k: torch_streams.mask_rows(torch.from_numpy(x), k, CONFIG),
              lambda idx: torch_streams.example_keys(5, 2, idx)),
    "jax": (lambda x, k: jax_streams.mask_rows(x.astype(np.int32), k, CONFIG),
            lambda idx: jax_streams.example_keys(5, 2, idx)),
}


def _reference() -> dict:
    """Each example masked alone, unpadded, with its own key (`mask_tokens_exact`)."""
    keys = streams.example_keys(5, 2, range(N))
    return {i: mask_tokens_exact(row, CONFIG, key=keys[i]) for i, row in enumerate(_dataset())}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_an_examples_mask_does_not_depend_on_its_batch_or_backend(backend):
    mask_rows, keys_of = BACKENDS[backend]
    expected = _reference()
    shuffled = list(np.random.default_rng(1).permutation(N))
    for batch_size, order, seq in ((8, list(range(N)), None), (32, shuffled, None),
                                   (32, shuffled, 57)):
        got = _masks_by_index(mask_rows, keys_of, batch_size, order, seq)
        for i in range(N):
            assert (got[i][0] == expected[i][0]).all() and (got[i][1] == expected[i][1]).all()
    assert sum(int((y != 0).sum()) for _, y in expected.values()) > 0


def test_padding_after_a_row_never_changes_its_bits():
    row = _dataset()[3]
    key = streams.example_keys(5, 2, [3])
    alone = mask_tokens_exact(row, CONFIG, key=key[0])
    for seq in (len(row), len(row) + 1, 300):
        x_masked, y = streams.mask_rows(_padded([row], seq), key, CONFIG)
        assert (x_masked[0, :len(row)] == alone[0]).all() and (y[0, :len(row)] == alone[1]).all()
        assert (x_masked[0, len(row):] == 0).all() and (y[0, len(row):] == 0).all()


def test_keys_are_fold_in_of_seed_purpose_epoch_index_in_every_backend():
    indices = [0, 1, 7, 2**32 - 1]
    keys = streams.example_keys(11, 4, indices, purpose="eval")
    for j, i in enumerate(indices):
        k = jax.random.key(11)
        for word in (streams.PURPOSES["eval"], 4, i):
            k = jax.random.fold_in(k, word)
        assert (np.asarray(jax.random.key_data(k)) == keys[j]).all()
    assert (torch_streams.example_keys(11, 4, indices, "eval").numpy() == keys).all()
    assert (np.asarray(jax_streams.example_keys(11, 4, indices, "eval")) == keys).all()


def test_other_epochs_and_purposes_give_other_masks():
    x = _padded(_dataset())
    base = streams.mask_rows(x, streams.example_keys(5, 2, range(N)), CONFIG)[1]
    for keys in (streams.example_keys(5, 3, range(N)),
                 streams.example_keys(5, 2, range(N), purpose="nsp"),
                 streams.example_keys(6, 2, range(N))):
        assert (streams.mask_rows(x, keys, CONFIG)[1] != base).any()
    tags = list(streams.PURPOSES.values())
    assert len(set(tags)) == len(tags)


def test_bad_purposes_indices_and_row_keys_are_refused():
    with pytest.raises(ValueError, match="purpose"):
        streams.example_keys(0, 0, [1], purpose="mask")
    with pytest.raises(TypeError, match="purpose"):
        streams.example_keys(0, 0, [1], purpose=1.0)
    with pytest.raises(ValueError, match="indices"):
        streams.example_keys(0, 0, [-1])
    with pytest.raises(TypeError, match="indices"):
        streams.example_keys(0, 0, [0.5])
    with pytest.raises(ValueError, match="epoch"):
        streams.example_keys(0, -1, [1])
    x = _padded(_dataset(4))
    for mask_rows in (streams.mask_rows, jax_streams.mask_rows):
        with pytest.raises(ValueError, match="row_keys"):
            mask_rows(x.astype(np.int32), np.zeros((3, 2), np.uint32), CONFIG)
        with pytest.raises(ValueError, match="batch, seq"):
            mask_rows(x[0].astype(np.int32), np.zeros((1, 2), np.uint32), CONFIG)
    with pytest.raises(ValueError, match="row_keys"):
        torch_streams.mask_rows(torch.from_numpy(x), torch.zeros(4, 3), CONFIG)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_rows_masked_on_cuda_equal_the_cpu():
    x = torch.from_numpy(_padded(_dataset()))
    keys = torch_streams.example_keys(5, 2, range(N))
    cpu = torch_streams.mask_rows(x, keys, CONFIG)
    gpu = torch_streams.mask_rows(x.cuda(), keys.cuda(), CONFIG)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))


@pytest.mark.parametrize("params, dtype", [
    (dict(padding_token=0, mask_token=103, no_mask_tokens=[101, 102], n_tokens=30522,
          masking_prob=0.5), torch.int64),
    # randint's multiplier is 0 (span > 2**16): the high bits are never drawn
    (dict(padding_token=0, mask_token=3, no_mask_tokens=[1, 2], n_tokens=100_000,
          masking_prob=0.9, randomize_prob=0.3), torch.int32),
    (dict(padding_token=5, mask_token=6, no_mask_tokens=[7], n_tokens=200, masking_prob=0.4,
          random_exclude=[5, 6, 7]), torch.uint16)])
def test_torch_rows_equal_each_row_masked_alone_bit_for_bit(params, dtype):
    """The CPU path hashes only eligible and selected positions; every output bit must still
    be the dense pass's (`mask_tokens_exact` on the row alone), whatever the dtype, the
    strides, an all-padding row or a batch with nothing selected."""
    from mlm_torch import mask_tokens_exact as torch_exact
    config = MaskingConfig(**params)
    rng = np.random.default_rng(4)
    for trial in range(6):
        batch, seq = int(rng.integers(1, 9)), int(rng.integers(1, 40))
        x = torch.from_numpy(rng.integers(0, config.n_tokens, (batch, seq))).to(dtype)
        x[:, rng.integers(0, seq + 1):] = config.padding_token
        x[0] = config.padding_token if trial == 1 else x[0]                  # all padding
        x = x.T.contiguous().T if trial == 2 else x                         # strided
        keys = torch_streams.example_keys(7, trial, rng.integers(0, 2**32 - 1, batch))
        x_masked, y = torch_streams.mask_rows(x, keys, config)
        assert x_masked.dtype == y.dtype == dtype
        for r in range(batch):
            alone = torch_exact(x[r], config, key=keys[r])
            assert torch.equal(x_masked[r], alone[0]) and torch.equal(y[r], alone[1])


@pytest.mark.parametrize("special", [102, 70_000], ids=["small-ids", "ids-above-a-table"])
@pytest.mark.parametrize("compiled_pass", [True, False], ids=["compiled", "numpy"])
def test_a_collators_batch_never_selects_mask_padding_or_special_ids(compiled_pass, special):
    """`mask_examples` (what `MLMCollator` calls) on a batch holding [MASK], [PAD] and the
    special ids between ordinary ones: each row is `mlm_ref`'s exact mask of it under the
    example's key, so the ineligible ids are never selected (a special id above 65536 makes
    the eligibility table too large: the staged pass's lookup then)."""
    config = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=[101, special],
                           n_tokens=100_000, masking_prob=0.9)
    rng = np.random.default_rng(9)
    x = rng.choice([0, 101, special, 103, 999, 5000, 20000], size=(16, 48))      # [batch, seq]
    indices = rng.integers(0, 2**32, 16)
    x_masked, y = torch_streams.mask_examples(torch.from_numpy(x), 5, 2, indices, config,
                                              compiled_pass=compiled_pass)
    keys = streams.example_keys(5, 2, indices)
    for r in range(16):
        want = mask_tokens_exact(x[r], config, key=keys[r])
        assert (x_masked[r].numpy() == want[0]).all() and (y[r].numpy() == want[1]).all()
    assert not np.isin(y.numpy()[y.numpy() != 0], [101, special, 103]).any()
