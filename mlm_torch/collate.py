"""A `DataLoader` collate function that masks from stateless streams (docs/pipelines.md).

`MLMCollator` pads tokenized examples to a `[batch, seq]` batch and masks each example with the
key `mlm_ref.streams` derives from `(seed, purpose, epoch, index)`, so an example's mask is the
same whatever the worker count, batch size, world size, `persistent_workers` or resumption. It
stands in for `transformers.DataCollatorForLanguageModeling` (labels -100 where not selected).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from mlm_ref.config import MaskerBase
from mlm_ref.validation import check_no_compat, check_word

from .streams import example_keys, mask_rows
from .wwm import mask_word_rows

__all__ = ["MLMCollator", "LABEL_CONVENTIONS"]

LABEL_CONVENTIONS = ("hf", "padding_token")


class MLMCollator(MaskerBase):
    """Pad and mask a list of examples, each by its own stateless key.

    Args:
        seed: the run's seed (an int seed or key data, the rule of `mlm_ref.keys`).
        labels: `"hf"`: -100 where a position is not selected (what Hugging Face models and
            `CrossEntropyLoss` ignore by default); `"padding_token"`: the contract's `y`.
        purpose: the stream, `"mlm"` (default), `"nsp"`, `"eval"` or a uint32 tag.
        pad_to_multiple_of: round the padded length up to a multiple of this.
        **params: the masking parameters of `mlm_ref.config.MaskerBase`.

    Call it on examples, dicts with `input_ids` (a list of ints or a 1-d tensor), `index` (the
    example's index in the dataset) and optionally `token_type_ids` and `word_ids` (integer
    word ids as `mlm_ref.words` makes them, -1 outside words: then whole words are masked, each
    row exactly as `mlm_torch.wwm.mask_words_exact` masks it alone). It returns int64 tensors
    `[batch, seq]`: `input_ids` (masked), `attention_mask`, `labels` and, when the examples have
    them, `token_type_ids`. `set_epoch(epoch)` selects the epoch's masks; it is kept in shared
    memory, so `DataLoader` workers (persistent ones included) see it, as long as it is called
    before the epoch's iterator is created (as with `DistributedSampler.set_epoch`). An example
    may carry its own `epoch`, which wins.
    """

    def __init__(self, *, seed, labels: str = "hf", purpose="mlm",
                 pad_to_multiple_of: int | None = None, **params):
        super().__init__(**params)
        if labels not in LABEL_CONVENTIONS:
            raise ValueError(f"labels must be one of {LABEL_CONVENTIONS}, got {labels!r}")
        if pad_to_multiple_of is not None and (isinstance(pad_to_multiple_of, bool) or
                                               not isinstance(pad_to_multiple_of, int) or
                                               pad_to_multiple_of < 1):
            raise ValueError(f"pad_to_multiple_of must be a positive int, "
                             f"got {pad_to_multiple_of!r}")
        example_keys(seed, 0, [], purpose)                 # check seed and purpose now
        self.seed, self.labels, self.purpose = seed, labels, purpose
        self.pad_to_multiple_of = pad_to_multiple_of
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The epoch whose masks the next batches get."""
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch`'s masks from now on (in the workers too)."""
        self._epoch[0] = check_word(epoch, "epoch")

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        x, filled = _padded([e["input_ids"] for e in examples], self.config.padding_token,
                            self.pad_to_multiple_of)                     # [batch, seq] each
        seq = x.shape[1]
        attention = torch.from_numpy(filled.astype(np.int64))              # [batch, seq]
        keys = self.row_keys(examples)                                    # [batch, 2]
        if "word_ids" in examples[0]:
            x_masked, y = mask_word_rows(x, _padded_word_ids(examples, seq), keys,
                                         self.config)
        else:
            check_no_compat(self.config)
            x_masked, y = mask_rows(x, keys, self.config)
        if self.labels == "hf":
            y = y.masked_fill_(y == self.config.padding_token, -100)
        batch = {"input_ids": x_masked, "attention_mask": attention, "labels": y}
        if "token_type_ids" in examples[0]:
            batch["token_type_ids"] = _padded([e["token_type_ids"] for e in examples], 0,
                                              None, seq)[0]
        return batch

    def row_keys(self, examples: list[dict]) -> torch.Tensor:
        """Each example's key, int64 [batch, 2]: its own `epoch` if it has one, else the
        collator's."""
        if "index" not in examples[0]:
            raise KeyError("each example needs its 'index' in the dataset (the stream's key)")
        epoch = self.epoch
        epochs = [int(e.get("epoch", epoch)) for e in examples]
        indices = [int(e["index"]) for e in examples]
        if len(set(epochs)) == 1:
            return example_keys(self.seed, epochs[0], indices, self.purpose)
        return torch.cat([example_keys(self.seed, ep, [i], self.purpose)
                          for ep, i in zip(epochs, indices)])

    def __repr__(self) -> str:
        return (f"mlm_torch.collate.MLMCollator({self.config}, seed={self.seed!r}, "
                f"labels={self.labels!r}, purpose={self.purpose!r}, epoch={self.epoch})")


def _padded(rows: list, fill: int, multiple: int | None,
            seq: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Rows of ints (lists or 1-d tensors/arrays) padded with `fill`: int64 `[batch, seq]`,
    and where the rows' own values are (bool `[batch, seq]`).

    One copy of all the ids into a flat buffer and one masked write into the batch, instead
    of a tensor and a write per row: lists of ints (what a tokenizer hands over) go through
    `np.fromiter`, the rest through one `torch.cat`. `seq` defaults to the longest row,
    rounded up to a multiple of `multiple`.
    """
    lengths = np.fromiter(map(len, rows), np.int64, count=len(rows))    # [batch]
    if seq is None:
        seq = int(lengths.max())
        if multiple:
            seq = -(-seq // multiple) * multiple
    if all(type(r) is list for r in rows):
        flat = np.fromiter(itertools.chain.from_iterable(rows), np.int64,
                           count=int(lengths.sum()))
    else:
        flat = torch.cat([torch.as_tensor(r, dtype=torch.int64) for r in rows]).numpy()
    filled = np.arange(seq) < lengths[:, None]                           # [batch, seq]
    x = np.full((len(rows), seq), fill, dtype=np.int64)                  # [batch, seq]
    x[filled] = flat
    return torch.from_numpy(x), filled


def _padded_word_ids(examples: list[dict], seq: int) -> torch.Tensor:
    """The examples' `word_ids`, int64 `[batch, seq]`, -1 on padding."""
    for r, e in enumerate(examples):
        if len(e["word_ids"]) != len(e["input_ids"]):
            raise ValueError(f"example {r}: word_ids has {len(e['word_ids'])} entries, "
                             f"input_ids {len(e['input_ids'])}")
    return _padded([e["word_ids"] for e in examples], -1, None, seq)[0]
