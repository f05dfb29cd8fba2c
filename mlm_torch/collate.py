"""A `DataLoader` collate function that masks from stateless streams (docs/pipelines.md).

`MLMCollator` pads tokenized examples to a `[batch, seq]` batch and masks each example with the
key `mlm_ref.streams` derives from `(seed, purpose, epoch, index)`, so an example's mask is the
same whatever the worker count, batch size, world size, `persistent_workers` or resumption. It
stands in for `transformers.DataCollatorForLanguageModeling` (labels -100 where not selected).
"""

from __future__ import annotations

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
        ids = [torch.as_tensor(e["input_ids"], dtype=torch.int64) for e in examples]
        seq = max(len(t) for t in ids)
        if self.pad_to_multiple_of:
            seq = -(-seq // self.pad_to_multiple_of) * self.pad_to_multiple_of
        pad = self.config.padding_token
        x = torch.full((len(ids), seq), pad, dtype=torch.int64)          # [batch, seq]
        attention = torch.zeros((len(ids), seq), dtype=torch.int64)
        for r, t in enumerate(ids):                    # padding only; the masking is one call
            x[r, :len(t)] = t
            attention[r, :len(t)] = 1
        keys = self.row_keys(examples)                                    # [batch, 2]
        if "word_ids" in examples[0]:
            x_masked, y = mask_word_rows(x, _padded_word_ids(examples, ids, seq), keys,
                                         self.config)
        else:
            check_no_compat(self.config)
            x_masked, y = mask_rows(x, keys, self.config)
        if self.labels == "hf":
            y = torch.where(y == pad, torch.full_like(y, -100), y)
        batch = {"input_ids": x_masked, "attention_mask": attention, "labels": y}
        if "token_type_ids" in examples[0]:
            types = torch.zeros((len(ids), seq), dtype=torch.int64)
            for r, e in enumerate(examples):
                t = torch.as_tensor(e["token_type_ids"], dtype=torch.int64)
                types[r, :len(t)] = t
            batch["token_type_ids"] = types
        return batch

    def row_keys(self, examples: list[dict]) -> torch.Tensor:
        """Each example's key, int64 [batch, 2]: its own `epoch` if it has one, else the
        collator's."""
        if "index" not in examples[0]:
            raise KeyError("each example needs its 'index' in the dataset (the stream's key)")
        epochs = [int(e.get("epoch", self.epoch)) for e in examples]
        indices = [int(e["index"]) for e in examples]
        if len(set(epochs)) == 1:
            return example_keys(self.seed, epochs[0], indices, self.purpose)
        return torch.cat([example_keys(self.seed, ep, [i], self.purpose)
                          for ep, i in zip(epochs, indices)])

    def __repr__(self) -> str:
        return (f"mlm_torch.collate.MLMCollator({self.config}, seed={self.seed!r}, "
                f"labels={self.labels!r}, purpose={self.purpose!r}, epoch={self.epoch})")


def _padded_word_ids(examples: list[dict], ids: list[torch.Tensor], seq: int) -> torch.Tensor:
    """The examples' `word_ids`, int64 `[batch, seq]`, -1 on padding."""
    w = torch.full((len(examples), seq), -1, dtype=torch.int64)
    for r, e in enumerate(examples):
        t = torch.as_tensor(e["word_ids"], dtype=torch.int64)
        if t.shape != ids[r].shape:
            raise ValueError(f"example {r}: word_ids has {t.numel()} entries, input_ids "
                             f"{ids[r].numel()}")
        w[r, :len(t)] = t
    return w
