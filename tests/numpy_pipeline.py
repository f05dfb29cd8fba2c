"""A correct data pipeline in NumPy alone (no torch): `batches(*, epoch, rank, world_size)`
shuffles the examples afresh each epoch, gives each rank a disjoint equal share, pads, and
masks each example with its own stateless key (`mlm_ref.streams`), labels -100 where nothing
is predicted; `whole_words` masks whole words (`mlm_ref.wwm`) and carries `word_ids`.
`only_mask_tokens` is a broken token-level pipeline: every selected position becomes [MASK]
(the 10% original and 10% random ids forgotten), which only the counted checks can see. For
the tests that the pipeline gate runs without PyTorch."""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig
from mlm_ref.streams import example_keys, mask_rows
from mlm_ref.wwm import mask_words

CONFIG = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=(101, 102),
                       n_tokens=30522)
EXAMPLES, BATCH, SEED = 256, 16, 7


def _examples() -> list:
    rng = np.random.default_rng(0)
    lengths = rng.integers(24, 64, EXAMPLES)
    return [[101, *rng.integers(1000, 29000, n - 2).tolist(), 102] for n in lengths]


def _words(example: list) -> list:
    """Word ids: runs of one to three pieces, -1 at [CLS] and [SEP]."""
    rng = np.random.default_rng(len(example))
    ids, word = [-1], 0
    while len(ids) < len(example) - 1:
        ids += [word] * int(rng.integers(1, 4))
        word += 1
    return ids[:len(example) - 1] + [-1]


DATA = _examples()
WORDS = [_words(e) for e in DATA]


def _padded(rows: list, index, fill: int) -> np.ndarray:
    x = np.full((len(index), max(len(rows[i]) for i in index)), fill, dtype=np.int64)
    for row, i in enumerate(index):
        x[row, :len(rows[i])] = rows[i]
    return x


def _shares(epoch: int, rank: int, world_size: int):
    """This rank's indices of the epoch's fresh order, batch by batch."""
    order = np.random.default_rng([SEED, epoch]).permutation(EXAMPLES)
    mine = order[rank::world_size]
    for start in range(0, len(mine), BATCH):
        yield mine[start:start + BATCH]


def batches(*, epoch, rank, world_size):
    """One rank's batches of one epoch, as dicts of NumPy arrays `[batch, seq]`."""
    for index in _shares(epoch, rank, world_size):
        x = _padded(DATA, index, CONFIG.padding_token)
        masked, y = mask_rows(x, example_keys(SEED, epoch, index), CONFIG)
        labels = np.where(y == CONFIG.padding_token, -100, y)
        yield {"input_ids": masked, "labels": labels, "index": index}


def only_mask_tokens(*, epoch, rank, world_size):
    """As `batches`, but every selected position is [MASK] (a wrong category split)."""
    for batch in batches(epoch=epoch, rank=rank, world_size=world_size):
        selected = batch["labels"] != -100
        yield dict(batch, input_ids=np.where(selected, CONFIG.mask_token, batch["input_ids"]))


def whole_words(*, epoch, rank, world_size):
    """As `batches`, masking whole words with a fresh generator per batch."""
    for number, index in enumerate(_shares(epoch, rank, world_size)):
        x, w = _padded(DATA, index, CONFIG.padding_token), _padded(WORDS, index, -1)
        rng = np.random.default_rng([SEED, epoch, rank, number])
        masked, y = (a.T for a in mask_words(x.T, w.T, CONFIG, rng=rng))
        labels = np.where(y == CONFIG.padding_token, -100, y)
        yield {"input_ids": masked, "labels": labels, "word_ids": w, "index": index}
