"""Data pipelines for the pipeline gate's tests: ours, and the ways real pipelines break.

Each is `fn(*, epoch, rank, world_size)` returning the batches one rank sees in one epoch: a
`DataLoader` over ragged BERT-like examples, split between ranks by `DistributedSampler`,
masked in `collate_fn`. Only the source of the masking randomness differs (docs/pipelines.md
lists the public reports of each failure). Module-level classes and functions, so that
DataLoader workers (forkserver) can load them.
"""

from __future__ import annotations

import functools
import multiprocessing

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from mlm_ref.config import MaskingConfig
from mlm_torch.collate import MLMCollator
from verify.registry import BERT

CONFIG = MaskingConfig(**BERT)
EXAMPLES = 768
BATCH = 16
SEED = 1234


class Reviews(Dataset):
    """Ragged tokenized examples `[CLS] ... [SEP]`, 40 to 128 tokens, Zipf-like ids."""

    def __init__(self, n: int = EXAMPLES):
        rng = np.random.default_rng(0)
        lengths = np.where(rng.random(n) < 0.5, 128, rng.integers(40, 128, n))
        ranks = np.minimum(rng.zipf(1.2, int(lengths.sum())), 29_000)
        ids, at = [], 0
        for n_tok in lengths:
            body = (1000 + ranks[at:at + n_tok - 2]).tolist()
            ids.append([101, *body, 102])
            at += n_tok
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "index": i}


DATA = Reviews()
ODD = Reviews(EXAMPLES + 3)      # not a multiple of 2 or 4: DistributedSampler repeats some


def _loader(collate, *, epoch, rank, world_size, workers=0, worker_init_fn=None, data=DATA,
            order_seed=0):
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=order_seed)
    sampler.set_epoch(epoch)
    return DataLoader(data, batch_size=BATCH, sampler=sampler, num_workers=workers,
                      collate_fn=collate, worker_init_fn=worker_init_fn,
                      multiprocessing_context="forkserver" if workers else None)


# --- ours ------------------------------------------------------------------------------------

def ours(*, epoch, rank, world_size, workers=0, seed=SEED):
    """`MLMCollator`: every example masked by its stateless key (seed, epoch, index); `seed`
    (the gate's `--seed`) seeds the masks and the sampler's order."""
    collator = MLMCollator(seed=seed, **BERT)
    collator.set_epoch(epoch)
    return _loader(collator, epoch=epoch, rank=rank, world_size=world_size, workers=workers,
                   order_seed=seed)


def ours_padded_by_the_sampler(*, epoch, rank, world_size):
    """Ours on a dataset that does not split evenly: a few examples are seen twice per epoch,
    and their two sightings get the same (stateless) mask."""
    collator = MLMCollator(seed=SEED, **BERT)
    collator.set_epoch(epoch)
    return _loader(collator, epoch=epoch, rank=rank, world_size=world_size, data=ODD)


ours_0_workers = functools.partial(ours, workers=0)
ours_1_worker = functools.partial(ours, workers=1)
ours_2_workers = functools.partial(ours, workers=2)


# --- a masker fed by some source of uniforms ---------------------------------------------------

def pad(examples) -> np.ndarray:
    """`[batch, seq]` int64, padded with 0."""
    seq = max(len(e["input_ids"]) for e in examples)
    x = np.zeros((len(examples), seq), np.int64)
    for r, e in enumerate(examples):
        x[r, :len(e["input_ids"])] = e["input_ids"]
    return x


def mask(x: np.ndarray, u: np.ndarray, c: np.ndarray, t: np.ndarray) -> dict:
    """The contract's masking given the draws (uniforms `u`, `c`, ids `t`, all like `x`);
    labels -100 where not selected."""
    eligible = ~np.isin(x, [0, 101, 102, 103])
    selected = eligible & (u < 0.15)
    out = np.where(selected & (c >= 0.2), 103, np.where(selected & (c < 0.1), t, x))
    labels = np.where(selected, x, -100)
    return {"input_ids": torch.from_numpy(out), "labels": torch.from_numpy(labels)}


def draw(rng, shape):
    """Uniforms for selection and category, and random ids, from a NumPy generator (new or
    legacy)."""
    ids = rng.integers if hasattr(rng, "integers") else rng.randint
    return rng.random(shape), rng.random(shape), ids(0, 30522, shape)


# --- NumPy's global generator in DataLoader workers, seeded in worker_init_fn -------------------

def numpy_global(examples):
    x = pad(examples)
    return mask(x, *draw(np.random.mtrand._rand, x.shape))


def numpy_global_workers(*, epoch, rank, world_size):
    """The global generator in 2 workers, left as the DataLoader seeds it."""
    return _loader(numpy_global, epoch=epoch, rank=rank, world_size=world_size, workers=2)


def seed_numpy(worker_id):
    np.random.seed(SEED)   # "for reproducibility": every worker, every epoch, the same stream


def numpy_global_seeded_workers(*, epoch, rank, world_size):
    return _loader(numpy_global, epoch=epoch, rank=rank, world_size=world_size, workers=2,
                   worker_init_fn=seed_numpy)


# --- NumPy's global generator in forked processes (a multiprocessing pool) ----------------------

def numpy_global_forked_pool(*, epoch, rank, world_size):
    """Batches masked in a pool of 2 processes, each shard starting from the parent's global
    NumPy state, as `fork` hands it over (the state is passed explicitly to forkserver
    children: forking this multithreaded test process could deadlock)."""
    batches = [[DATA[i] for i in idx] for idx in
               torch.utils.data.BatchSampler(list(DistributedSampler(
                   DATA, num_replicas=world_size, rank=rank, seed=epoch)), BATCH, False)]
    shards = [batches[0::2], batches[1::2]]
    state = np.random.get_state()                        # what each forked child would hold
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        masked = pool.map(_mask_shard, [(state, shard) for shard in shards], chunksize=1)
    return [b for pair in zip(*masked) for b in pair]


def _mask_shard(task):
    state, shard = task
    np.random.set_state(state)                           # a child starts from its parent's state
    return [numpy_global(batch) for batch in shard]


# --- a generator created once in the main process ---------------------------------------------

class MainProcessGenerator:
    """Holds `np.random.default_rng(SEED)`; each worker gets its own copy of it."""

    def __init__(self):
        self.rng = np.random.default_rng(SEED)

    def __call__(self, examples):
        x = pad(examples)
        return mask(x, *draw(self.rng, x.shape))


def main_process_generator(*, epoch, rank, world_size):
    return _loader(MainProcessGenerator(), epoch=epoch, rank=rank, world_size=world_size,
                   workers=2)


# --- Hugging Face's collator with seed=, one per rank as in a 2-rank job -----------------------

_HF = {}


def hf_seeded(*, epoch, rank, world_size):
    """`DataCollatorForLanguageModeling(seed=42)`, created once per rank (process)."""
    if rank not in _HF:
        from transformers import DataCollatorForLanguageModeling

        from verify.published import hf_tokenizer
        _HF[rank] = DataCollatorForLanguageModeling(hf_tokenizer(CONFIG), seed=42)
    collate = _HF[rank]
    return _loader(lambda ex: collate([{"input_ids": e["input_ids"]} for e in ex]),
                   epoch=epoch, rank=rank, world_size=world_size)


# --- per-example seeding: seed + index (Megatron), the seed moved on each epoch -----------------

def seed_plus_index(*, epoch, rank, world_size):
    def collate(examples):
        x = pad(examples)
        draws = [np.zeros(x.shape), np.zeros(x.shape), np.zeros(x.shape, np.int64)]
        for r, e in enumerate(examples):
            rng = np.random.RandomState(SEED + epoch + e["index"])
            n = x.shape[1]
            draws[0][r], draws[1][r], draws[2][r] = rng.random_sample(n), \
                rng.random_sample(n), rng.randint(0, 30522, n)
        return mask(x, *draws)
    return _loader(collate, epoch=epoch, rank=rank, world_size=world_size)


# --- one generator per (epoch, rank), seeded seed + epoch + rank ---------------------------------

def seed_plus_epoch_plus_rank(*, epoch, rank, world_size):
    """Epoch 1 of rank 0 draws what epoch 0 of rank 1 drew (PyTorch Lightning's collision)."""
    collate = MainProcessGenerator()
    collate.rng = np.random.default_rng(SEED + epoch + rank)
    return _loader(collate, epoch=epoch, rank=rank, world_size=world_size)


# --- a static mask: each example masked once, when the dataset is prepared ---------------------

class StaticMasks:
    def __init__(self):
        rng = np.random.default_rng(SEED)
        self.masked = {}
        for i in range(len(DATA)):
            x = np.array([DATA.ids[i]])
            self.masked[i] = mask(x, *draw(rng, x.shape))

    def __call__(self, examples):
        rows = [self.masked[e["index"]] for e in examples]
        seq = max(r["input_ids"].shape[1] for r in rows)
        out = {k: torch.full((len(rows), seq), 0 if k == "input_ids" else -100)
               for k in ("input_ids", "labels")}
        for i, r in enumerate(rows):
            for k in out:
                out[k][i, :r[k].shape[1]] = r[k][0]
        return out


_STATIC = []


def static_mask(*, epoch, rank, world_size):
    if not _STATIC:
        _STATIC.append(StaticMasks())
    return _loader(_STATIC[0], epoch=epoch, rank=rank, world_size=world_size)


def hf_seeded_workers(*, epoch, rank, world_size):
    """The same, masking in 2 DataLoader workers (each seeded `seed + worker id`)."""
    from transformers import DataCollatorForLanguageModeling

    from verify.published import hf_tokenizer
    if "workers" not in _HF:
        _HF["workers"] = HFCollate(DataCollatorForLanguageModeling(hf_tokenizer(CONFIG), seed=42))
    return _loader(_HF["workers"], epoch=epoch, rank=rank, world_size=world_size, workers=2)


class HFCollate:
    """Hugging Face's collator on our examples (picklable for DataLoader workers)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, examples):
        return self.collator([{"input_ids": e["input_ids"]} for e in examples])
