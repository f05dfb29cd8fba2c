"""Pipelines for the pipeline gate's order, coverage, model-input and whole-word checks: ours
(correct, each taking the gate's `seed`), and realistic ways to get the rest of a pipeline
wrong, one defect each (the sampler, the split between ranks and workers, `attention_mask`,
`token_type_ids`, whole words). Masks come from `MLMCollator` throughout, so every failure is
the defect's. Module-level, so that DataLoader workers (forkserver) can load them.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import (DataLoader, Dataset, DistributedSampler, IterableDataset,
                              RandomSampler)

from mlm_torch.collate import MLMCollator
from tests.pipelines import BATCH, DATA, EXAMPLES, ODD, SEED
from verify.registry import BERT


class Pairs(Dataset):
    """`[CLS] A [SEP] B [SEP]` with `token_type_ids` (0 on A, 1 on B) and, for whole-word
    masking, `word_ids` (words of 1 to 4 pieces, -1 on [CLS] and [SEP])."""

    def __init__(self, n: int = EXAMPLES):
        rng = np.random.default_rng(1)
        self.items = []
        for i in range(n):
            body = DATA.ids[i][1:-1]
            cut = int(rng.integers(1, len(body)))
            ids = [101, *body[:cut], 102, *body[cut:], 102]
            types = [0] * (cut + 2) + [1] * (len(body) - cut + 1)
            lengths = rng.geometric(0.55, len(ids))
            word = np.repeat(np.arange(len(ids)), lengths)[:len(ids)]
            word = np.where(np.isin(ids, (101, 102)), -1, word)
            starts = (word >= 0) & (word != np.concatenate([[-1], word[:-1]]))
            word = np.where(word >= 0, np.cumsum(starts) - 1, -1)   # [SEP] ends a word
            self.items.append({"input_ids": ids, "token_type_ids": types,
                               "word_ids": word.tolist(), "index": i})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


PAIRS = Pairs()


class Collate:
    """`MLMCollator` for one epoch, and the batch keys the gate may check: `index` and
    `word_ids` when asked (the model would not take them; the gate does)."""

    def __init__(self, epoch, seed=SEED, keep=(), words=True):
        self.collator = MLMCollator(seed=seed, **BERT)
        self.collator.set_epoch(epoch)
        self.keep, self.words = keep, words

    def __call__(self, examples):
        given = examples if self.words else [{k: v for k, v in e.items() if k != "word_ids"}
                                             for e in examples]
        batch = self.collator(given)
        seq = batch["input_ids"].shape[1]
        if "index" in self.keep:
            batch["index"] = torch.tensor([e["index"] for e in examples])
        if "word_ids" in self.keep:
            batch["word_ids"] = torch.tensor([e["word_ids"] + [-1] * (seq - len(e["word_ids"]))
                                              for e in examples])
        return batch


def _loader(data, collate, *, epoch, rank, world_size, seed=0, set_epoch=True, workers=0):
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, seed=seed)
    if set_epoch:
        sampler.set_epoch(epoch)
    return DataLoader(data, batch_size=BATCH, sampler=sampler, collate_fn=collate,
                      num_workers=workers, multiprocessing_context="forkserver" if workers else None)


# --- ours ------------------------------------------------------------------------------------

def ours_indexed(*, epoch, rank, world_size, seed=SEED):
    """Ours, its batches carrying each row's dataset `index`."""
    return _loader(DATA, Collate(epoch, seed, keep=("index",)), epoch=epoch, rank=rank,
                   world_size=world_size, seed=seed)


def ours_pairs(*, epoch, rank, world_size, seed=SEED):
    """Sentence pairs with `token_type_ids`, token-level masks."""
    return _loader(PAIRS, Collate(epoch, seed, keep=("index",), words=False), epoch=epoch,
                   rank=rank, world_size=world_size, seed=seed)


def ours_whole_words(*, epoch, rank, world_size, seed=SEED):
    """Whole-word masks (`MLMCollator` with `word_ids`), the batch carrying the word ids."""
    return _loader(PAIRS, Collate(epoch, seed, keep=("word_ids",)), epoch=epoch, rank=rank,
                   world_size=world_size, seed=seed)


def ours_whole_words_unlabelled(*, epoch, rank, world_size, seed=SEED):
    """The same, the batch without its word ids: the gate cannot see the words."""
    return _loader(PAIRS, Collate(epoch, seed), epoch=epoch, rank=rank, world_size=world_size,
                   seed=seed)


# --- the sampler -----------------------------------------------------------------------------

def sampler_not_reshuffled(*, epoch, rank, world_size):
    """The collator's set_epoch is called, the sampler's is not: every epoch the same order."""
    return _loader(DATA, Collate(epoch), epoch=epoch, rank=rank, world_size=world_size,
                   set_epoch=False)


def set_epoch_never_called(*, epoch, rank, world_size):
    """Neither set_epoch: every epoch replays the last, order and masks."""
    return _loader(DATA, Collate(0), epoch=epoch, rank=rank, world_size=world_size,
                   set_epoch=False)


def rotated_order(*, epoch, rank, world_size):
    """One shuffle, rotated by two batches each epoch "so that epochs differ"."""
    order = np.random.default_rng(SEED).permutation(len(DATA))
    order = np.roll(order, 2 * BATCH * world_size * epoch)[rank::world_size]
    return DataLoader(DATA, batch_size=BATCH, sampler=order.tolist(), collate_fn=Collate(epoch))


def shuffle_buffer(*, epoch, rank, world_size):
    """A streaming shuffle: a 64-example buffer over the dataset in file order, fresh per epoch
    (Hugging Face's `IterableDataset.shuffle(buffer_size=64)`, tf.data's `shuffle(64)`)."""
    rng = np.random.default_rng([SEED, epoch])
    buffer, order = [], []
    for i in range(len(DATA)):
        buffer.append(i)
        if len(buffer) == 64:
            order.append(buffer.pop(int(rng.integers(64))))
    order += [buffer.pop(int(rng.integers(len(buffer)))) for _ in range(len(buffer))]
    return DataLoader(DATA, batch_size=BATCH, sampler=order[rank::world_size],
                      collate_fn=Collate(epoch))


# --- the split between ranks and workers -----------------------------------------------------

def whole_dataset_every_rank(*, epoch, rank, world_size):
    """`DataLoader(shuffle=True)` without a DistributedSampler: each rank loads everything."""
    generator = torch.Generator().manual_seed(SEED * 1000 + epoch * 10 + rank)
    return DataLoader(DATA, batch_size=BATCH, shuffle=True, generator=generator,
                      collate_fn=Collate(epoch))


def sampler_seeded_per_rank(*, epoch, rank, world_size):
    """`DistributedSampler(seed=SEED + rank)`: each rank slices its own permutation."""
    return _loader(DATA, Collate(epoch), epoch=epoch, rank=rank, world_size=world_size,
                   seed=SEED + rank)


def truncated_epoch(*, epoch, rank, world_size):
    """An epoch cut to `len(dataset) // (batch * world_size)` steps, as a training loop that
    computes its steps per epoch so: 771 examples lose 3 an epoch (the sampler's own drop
    would lose 1)."""
    loader = _loader(ODD, Collate(epoch), epoch=epoch, rank=rank, world_size=world_size)
    return itertools.islice(loader, len(ODD) // (BATCH * world_size))


def with_replacement(*, epoch, rank, world_size):
    """Each rank draws its share with replacement (`RandomSampler(replacement=True)` over the
    rank's shard): about a third of the examples left out, a quarter seen twice."""
    shard = list(range(rank, len(DATA), world_size))
    generator = torch.Generator().manual_seed(SEED * 100 + epoch * 10 + rank)
    sampler = RandomSampler(shard, replacement=True, generator=generator)
    return DataLoader([DATA[i] for i in shard], batch_size=BATCH, sampler=sampler,
                      collate_fn=Collate(epoch))


class RankShard(IterableDataset):
    """The rank's shard of the epoch's permutation, split between ranks but not between the
    DataLoader's workers: every worker yields all of it."""

    def __init__(self, epoch, rank, world_size):
        self.order = torch.randperm(len(DATA), generator=torch.Generator().manual_seed(
            epoch)).tolist()[rank::world_size]

    def __iter__(self):
        return (DATA[i] for i in self.order)


def iterable_not_split_by_worker(*, epoch, rank, world_size):
    return DataLoader(RankShard(epoch, rank, world_size), batch_size=BATCH, num_workers=2,
                      collate_fn=Collate(epoch), multiprocessing_context="forkserver")


# --- model inputs ----------------------------------------------------------------------------

class OnesAttention(Collate):
    def __call__(self, examples):
        batch = super().__call__(examples)
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        return batch


def attention_on_padding(*, epoch, rank, world_size):
    """`attention_mask = ones_like(input_ids)`: the model attends to padding."""
    return _loader(DATA, OnesAttention(epoch), epoch=epoch, rank=rank, world_size=world_size)


class EdgePaddedTypes(Collate):
    def __call__(self, examples):
        batch = super().__call__(examples)
        seq = batch["input_ids"].shape[1]
        batch["token_type_ids"] = torch.tensor([np.pad(e["token_type_ids"], (
            0, seq - len(e["token_type_ids"])), mode="edge").tolist() for e in examples])
        return batch


def token_types_padded_with_last(*, epoch, rank, world_size):
    """token_type_ids padded with `np.pad(mode="edge")`: segment B's 1 runs into the padding."""
    return _loader(PAIRS, EdgePaddedTypes(epoch, words=False), epoch=epoch, rank=rank,
                   world_size=world_size)


# --- whole words -----------------------------------------------------------------------------

def word_ids_ignored(*, epoch, rank, world_size):
    """The batches carry word ids, but the masks are drawn piece by piece (the word ids never
    reach the collator)."""
    return _loader(PAIRS, Collate(epoch, keep=("word_ids",), words=False), epoch=epoch,
                   rank=rank, world_size=world_size)


# what each broken pipeline must fail (it may fail more)
BROKEN = {
    "sampler_not_reshuffled": {"each epoch reshuffles the order (neighbours kept)",
                               "each epoch reshuffles the order (position correlation)"},
    "set_epoch_never_called": {"each epoch reshuffles the order (neighbours kept)",
                               "an example seen again is masked afresh"},
    "rotated_order": {"each epoch reshuffles the order (neighbours kept)"},
    "shuffle_buffer": {"each epoch reshuffles the order (position correlation)"},
    "whole_dataset_every_rank": {"every rank gets its 1/world_size share",
                                 "ranks see disjoint examples (beyond the sampler's padding)"},
    "sampler_seeded_per_rank": {"ranks see disjoint examples (beyond the sampler's padding)",
                                "every example is seen in every epoch"},
    "truncated_epoch": {"every example is seen in every epoch"},
    "with_replacement": {"every example is seen in every epoch",
                         "no example shown twice in an epoch (beyond the sampler's padding)"},
    "iterable_not_split_by_worker": {
        "no example shown twice in an epoch (beyond the sampler's padding)"},
    "attention_on_padding": {"attention_mask is 1 exactly on real tokens"},
    "token_types_padded_with_last": {
        "token_type_ids are segment ids (0, then 1 after a [SEP]; 0 on padding)"},
    "word_ids_ignored": {"words all-or-nothing"},
}

# the likely cause the report must name (a phrase of it)
CAUSES = {
    "sampler_not_reshuffled": "the sampler is not reshuffled",
    "set_epoch_never_called": "set_epoch is not called",
    "whole_dataset_every_rank": "every rank loads the whole dataset",
    "sampler_seeded_per_rank": "the ranks shuffle differently",
    "truncated_epoch": "each epoch is cut short",
    "with_replacement": "drawn with replacement",
    "iterable_not_split_by_worker": "loaded more than once per epoch",
    "word_ids_ignored": "drawn piece by piece",
}
