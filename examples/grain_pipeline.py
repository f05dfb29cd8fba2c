"""A Grain input pipeline for JAX users, masked by the project's stateless streams.

Grain (`pip install grain`) is the data loader of the JAX ecosystem. This example builds the
pipeline a JAX user writes, with `grain.MapDataset`, and masks it so that the pipeline gate
(`python -m verify.pipeline`, docs/pipelines.md) passes it:

    python -m verify.pipeline examples.grain_pipeline:batches --epochs 2 --world-size 2

The lesson in four steps (`dataset` below):

1. **Shuffle per epoch.** `MapDataset.source(...).seed(seed).shuffle().repeat()` gives an
   endless dataset whose epoch `e` is the slice `[e * n, (e + 1) * n)`; `repeat` reseeds the
   shuffle for every epoch (its `reseed_each_epoch=True` default).
2. **Shard by rank.** `ds[rank::world_size]` after the epoch's slice: each rank sees its own
   share of every epoch, and together the ranks see each example once.
3. **Mask with the stateless streams.** A plain `map` masks each example with the key
   `example_keys(seed, epoch, index)` (`mlm_ref.streams`): the mask depends on the run's seed,
   the epoch and the example's index in the source, nothing else, so it is the mask
   `mlm_torch.collate.MLMCollator` and `mlm_jax.collate` give the same example, bit for bit, in
   any worker, on any rank, after any resume. Grain's own per-record generator
   (`random_map`) is not needed.
4. **Batch** with padding to the longest example (`batch_fn`).

`broken_batches` is the same pipeline written the way it goes wrong: the masking draws from
Grain's per-record generator (`random_map` after `repeat`) and the dataset is repeated with
`reseed_each_epoch=False`, so every epoch replays the first one: the same order and the same
masks. The gate fails it.

Grain's worker processes (`to_iter_dataset(...)` with `grain.ReadOptions` or
`.mp_prefetch(...)`) start new Python processes: run the pipeline under an
`if __name__ == "__main__":` guard, and where the program uses absl flags, parse them
(`absl.app.run(main)`) before the workers start. This example iterates in-process.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig
from mlm_ref.mlm import MLM
from mlm_ref.streams import example_keys, mask_rows

#: The contract's BERT parameters (the values of `verify.registry.BERT`).
BERT = dict(padding_token=0, mask_token=103, no_mask_tokens=(101, 102), n_tokens=30522)
CONFIG = MaskingConfig(**BERT)
EXAMPLES = 768
BATCH = 16
SEED = 1234


def corpus(n: int = EXAMPLES) -> list[np.ndarray]:
    """Ragged tokenized examples `[CLS] ... [SEP]`, 40 to 128 tokens, Zipf-like ids."""
    rng = np.random.default_rng(0)
    lengths = np.where(rng.random(n) < 0.5, 128, rng.integers(40, 128, n))
    return [np.concatenate(([101], 1000 + np.minimum(rng.zipf(1.2, k - 2), 29_000), [102]))
            .astype(np.int32) for k in lengths]


def with_index(ids: np.ndarray, index: int) -> dict:
    """Tag an example with its index in the source: the masking key needs it."""
    return {"input_ids": ids, "index": np.int64(index)}


def masker(seed: int, epoch: int):
    """The `map` transform of step 3: mask one example by its stateless key."""

    def mask(example: dict) -> dict:
        keys = example_keys(seed, epoch, [int(example["index"])])          # [1, 2]
        x = np.asarray(example["input_ids"])[None, :]                      # [1, seq]
        x_masked, y = mask_rows(x, keys, CONFIG)
        labels = np.where(y == CONFIG.padding_token, -100, y)              # Hugging Face's
        return {"input_ids": x_masked[0], "labels": labels[0], "index": example["index"]}

    return mask


def pad_and_stack(examples) -> dict:
    """Step 4's `batch_fn`: pad to the longest example, `[batch, seq]` arrays."""
    seq = max(len(e["input_ids"]) for e in examples)
    out = {"input_ids": np.full((len(examples), seq), CONFIG.padding_token, np.int32),
           "labels": np.full((len(examples), seq), -100, np.int32),
           "attention_mask": np.zeros((len(examples), seq), np.int32)}
    for r, e in enumerate(examples):
        n = len(e["input_ids"])
        out["input_ids"][r, :n] = e["input_ids"]
        out["labels"][r, :n] = e["labels"]
        out["attention_mask"][r, :n] = 1
    out["index"] = np.array([int(e["index"]) for e in examples])
    return out


def dataset(*, epoch: int, rank: int, world_size: int, seed: int = SEED):
    """One rank's share of one epoch, as a Grain `MapDataset` of padded, masked batches."""
    import grain  # the optional dependency, imported where it is used

    examples = [with_index(ids, i) for i, ids in enumerate(corpus())]   # the key needs them
    n = len(examples)
    ds = grain.MapDataset.source(examples)
    ds = ds.seed(seed).shuffle().repeat()                                # 1: a new order per epoch
    ds = ds[epoch * n:(epoch + 1) * n][rank::world_size]                 # 1 and 2
    ds = ds.map(masker(seed, epoch))                                     # 3
    return ds.batch(BATCH, batch_fn=pad_and_stack)                       # 4


def batches(*, epoch: int, rank: int, world_size: int, seed: int = SEED) -> list[dict]:
    """The pipeline gate's plug-in: the batches rank `rank` sees in `epoch`."""
    return list(dataset(epoch=epoch, rank=rank, world_size=world_size, seed=seed))


def broken_batches(*, epoch: int, rank: int, world_size: int, seed: int = SEED) -> list[dict]:
    """The broken variant: Grain's per-record generator, and epochs that are not reseeded."""
    import grain

    examples = [with_index(ids, i) for i, ids in enumerate(corpus())]
    n = len(examples)
    ds = grain.MapDataset.source(examples)
    ds = ds.seed(seed).shuffle().repeat(reseed_each_epoch=False)        # the defect
    ds = ds[epoch * n:(epoch + 1) * n][rank::world_size]
    ds = ds.random_map(_mask_with_grains_generator)
    return list(ds.batch(BATCH, batch_fn=pad_and_stack))


_REFERENCE = MLM(**BERT)


def _mask_with_grains_generator(example: dict, rng: np.random.Generator) -> dict:
    """Mask one example with the NumPy reference, drawing from Grain's per-record generator."""
    x_masked, y = _REFERENCE(np.asarray(example["input_ids"])[:, None], rng=rng)  # [seq, 1]
    labels = np.where(y[:, 0] == CONFIG.padding_token, -100, y[:, 0])
    return {"input_ids": x_masked[:, 0], "labels": labels, "index": example["index"]}


if __name__ == "__main__":      # Grain's worker processes need this guard (see above)
    first = batches(epoch=0, rank=0, world_size=2)[0]
    print({k: v.shape for k, v in first.items()})
