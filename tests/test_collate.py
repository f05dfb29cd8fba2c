"""The collators: masks from stateless streams, whatever DataLoader workers or Trainer do.

`mlm_torch.collate.MLMCollator` gives every example the same mask with 0, 1 or 2 DataLoader
workers (persistent ones included, across `set_epoch`), equal to `mlm_jax.collate.collate`'s,
and trains one real `transformers.Trainer` step of a tiny BERT in place of
`DataCollatorForLanguageModeling`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mlm_jax.collate import batches
from mlm_ref import MaskingConfig
from mlm_torch.collate import MLMCollator

PARAMS = dict(padding_token=0, mask_token=103, no_mask_tokens=[101, 102], n_tokens=1000,
              masking_prob=0.3)
N = 24


class Examples(torch.utils.data.Dataset):
    """Ragged tokenized examples that know their own index."""

    def __init__(self, n: int = N):
        rng = np.random.default_rng(0)
        self.ids = [[101, *rng.integers(200, 1000, rng.integers(2, 20)).tolist(), 102]
                    for _ in range(n)]

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "token_type_ids": [0] * len(self.ids[i]), "index": i}


def _by_index(loader, dataset, order) -> dict:
    out, it = {}, iter(order)
    for batch in loader:
        for row in range(len(batch["input_ids"])):
            i = next(it)
            n = len(dataset.ids[i])
            out[i] = (batch["input_ids"][row, :n].tolist(), batch["labels"][row, :n].tolist())
            assert batch["attention_mask"][row].sum() == n
    return out


@pytest.mark.parametrize("persistent", [False, True])
def test_masks_are_the_same_with_0_1_or_2_workers_in_every_epoch(persistent):
    dataset, results = Examples(), []
    for workers in (0, 1, 2):
        collator = MLMCollator(seed=3, **PARAMS)
        # workers start from a fresh forkserver, not a fork of this process (which may have
        # JAX's threads running: forking a multithreaded process can deadlock)
        loader = DataLoader(dataset, batch_size=5, collate_fn=collator, num_workers=workers,
                            persistent_workers=persistent and workers > 0,
                            multiprocessing_context="forkserver" if workers else None)
        epochs = []
        for epoch in (0, 1):
            collator.set_epoch(epoch)
            epochs.append(_by_index(loader, dataset, range(N)))
        results.append(epochs)
    assert results[0] == results[1] == results[2]
    assert results[0][0] != results[0][1]                  # another epoch, other masks


def test_torch_and_jax_collators_agree_and_labels_follow_the_convention():
    dataset = Examples()
    order = list(np.random.default_rng(2).permutation(N))
    examples = [dataset[i] for i in order[:8]]
    collator = MLMCollator(seed=3, labels="padding_token", **PARAMS)
    collator.set_epoch(1)
    torch_batch = collator(examples)
    config = MaskingConfig(**PARAMS)
    jax_batch = next(batches([{"input_ids": d} for d in dataset.ids], config, seed=3, epoch=1,
                             batch_size=8, order=order, labels="padding_token"))
    for name in ("input_ids", "labels", "attention_mask"):
        assert (torch_batch[name].numpy() == jax_batch[name]).all(), name
    hf = MLMCollator(seed=3, **PARAMS)
    hf.set_epoch(1)
    hf_batch = hf(examples)
    y = torch_batch["labels"]
    assert torch.equal(hf_batch["labels"], torch.where(y == 0, -100, y))
    assert torch.equal(hf_batch["input_ids"], torch_batch["input_ids"])
    assert torch_batch["token_type_ids"].shape == torch_batch["input_ids"].shape


def test_an_example_may_carry_its_own_epoch():
    dataset = Examples()
    collator = MLMCollator(seed=3, **PARAMS)
    collator.set_epoch(4)
    expected = collator([dataset[i] for i in range(6)])
    collator.set_epoch(0)
    got = collator([{**dataset[i], "epoch": 4} for i in range(6)])
    assert torch.equal(got["input_ids"], expected["input_ids"])


def test_bad_collator_arguments_are_refused():
    with pytest.raises(ValueError, match="labels"):
        MLMCollator(seed=0, labels="ignore", **PARAMS)
    with pytest.raises(ValueError, match="purpose"):
        MLMCollator(seed=0, purpose="masking", **PARAMS)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        MLMCollator(seed=0, **PARAMS)([{"input_ids": [5, 6]}])


def _tiny_bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=1000, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32, pad_token_id=0)
    torch.manual_seed(0)
    return transformers.BertForMaskedLM(config)


def test_a_tiny_bert_trains_a_step_on_the_collated_batches():
    model = _tiny_bert()
    loader = DataLoader(Examples(), batch_size=8, collate_fn=MLMCollator(seed=0, **PARAMS))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = next(iter(loader))
    loss = model(**batch).loss                              # labels -100 are ignored
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and model(**batch).loss < loss


def test_one_trainer_step_of_a_tiny_bert_trains_on_the_collated_batches(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")                       # Trainer needs it
    model = _tiny_bert()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=1, report_to=[],
        remove_unused_columns=False, use_cpu=True, save_strategy="no", logging_steps=1,
        dataloader_num_workers=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Examples(),
                                   data_collator=MLMCollator(seed=0, **PARAMS))
    result = trainer.train()
    assert result.global_step == 1 and np.isfinite(result.training_loss)


def test_masks_are_the_same_with_world_size_1_or_2_and_batch_size_8_or_32():
    """Each rank loads its share through `DistributedSampler`; an example's mask depends on
    (seed, epoch, index) alone, so the masks by index agree whatever the world size."""
    from torch.utils.data import DistributedSampler
    dataset = Examples(64)
    results = []
    for world, batch_size in ((1, 8), (2, 32), (2, 8)):
        collator = MLMCollator(seed=5, **PARAMS)
        collator.set_epoch(2)
        masks = {}
        for rank in range(world):
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                         seed=world)
            sampler.set_epoch(2)
            order = list(sampler)
            loader = DataLoader(dataset, batch_size=batch_size, sampler=order,
                                collate_fn=collator)
            masks.update(_by_index(loader, dataset, order))
        assert sorted(masks) == list(range(64))
        results.append(masks)
    assert results[0] == results[1] == results[2]
