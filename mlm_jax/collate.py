"""The JAX counterpart of `mlm_torch.collate`: pad and mask examples from stateless streams.

`collate(examples, config, seed=, epoch=)` turns tokenized examples (dicts with `input_ids`,
`index` and optionally `token_type_ids`) into a padded `[batch, seq]` batch of NumPy arrays,
masked with `mlm_jax.streams.mask_rows`; `batches(...)` is a plain iterator over a dataset
(docs/pipelines.md). The masks equal `mlm_torch.collate.MLMCollator`'s for the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from mlm_ref.config import MaskingConfig
from mlm_ref.validation import check_no_compat

from .streams import example_keys, mask_rows
from .wwm import mask_word_rows

__all__ = ["collate", "batches"]


def collate(examples: Sequence[dict], config: MaskingConfig, *, seed, epoch: int,
            labels: str = "hf", purpose="mlm") -> dict[str, np.ndarray]:
    """Pad and mask a list of examples, each by its own stateless key.

    Args:
        examples: dicts with `input_ids` (ints), `index` (in the dataset) and optionally
            `token_type_ids` and `word_ids` (ints, -1 outside words: whole-word masking, each
            row as `mlm_jax.wwm.mask_words` masks it alone).
        config: the masking parameters.
        seed, epoch, purpose: the stream (`mlm_ref.streams`).
        labels: `"hf"` (-100 where not selected) or `"padding_token"` (the contract's `y`).

    Returns:
        int32 NumPy arrays `[batch, seq]`: `input_ids` (masked), `attention_mask`, `labels`
        and, when the examples have them, `token_type_ids`.
    """
    if labels not in ("hf", "padding_token"):
        raise ValueError(f"labels must be 'hf' or 'padding_token', got {labels!r}")
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    seq = max(len(e["input_ids"]) for e in examples)
    x = np.full((len(examples), seq), config.padding_token, dtype=np.int32)  # [batch, seq]
    attention = np.zeros_like(x)
    types = np.zeros_like(x) if "token_type_ids" in examples[0] else None
    for r, e in enumerate(examples):                 # padding only; the masking is one call
        n = len(e["input_ids"])
        x[r, :n], attention[r, :n] = e["input_ids"], 1
        if types is not None:
            types[r, :len(e["token_type_ids"])] = e["token_type_ids"]
    keys = example_keys(seed, epoch, [int(e["index"]) for e in examples], purpose)
    if "word_ids" in examples[0]:
        w = np.full_like(x, -1)
        for r, e in enumerate(examples):
            if len(e["word_ids"]) != len(e["input_ids"]):
                raise ValueError(f"example {r}: word_ids has {len(e['word_ids'])} entries, "
                                 f"input_ids {len(e['input_ids'])}")
            w[r, :len(e["word_ids"])] = e["word_ids"]
        x_masked, y = (np.asarray(a) for a in mask_word_rows(x, w, keys, config))
    else:
        check_no_compat(config)
        x_masked, y = (np.asarray(a) for a in mask_rows(x, keys, config))
    if labels == "hf":
        y = np.where(y == config.padding_token, -100, y).astype(np.int32)
    batch = {"input_ids": x_masked, "attention_mask": attention, "labels": y}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def batches(dataset: Sequence[dict], config: MaskingConfig, *, seed, epoch: int,
            batch_size: int, order: Sequence[int] | None = None,
            **kwargs) -> Iterator[dict[str, np.ndarray]]:
    """Batches of `dataset` in `order` (default: as stored), each example tagged with its index.

    Keyword arguments beyond these go to `collate`.
    """
    order = range(len(dataset)) if order is None else order
    order = list(order)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        yield collate([{**dataset[i], "index": i} for i in chunk], config, seed=seed,
                      epoch=epoch, **kwargs)
