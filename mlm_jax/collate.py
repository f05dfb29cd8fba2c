"""The JAX counterpart of `mlm_torch.collate`: pad and mask examples from stateless streams.

`collate(examples, config, seed=, epoch=)` turns tokenized examples into a padded `[batch,
seq]` batch of int32 NumPy arrays, masked with `mlm_jax.streams.mask_rows`; `MLMCollator`
holds the seed, the epoch and the options (`MLMCollator.from_tokenizer` takes Hugging Face's
parameters); `batches(...)` is a plain iterator over a dataset (docs/pipelines.md). The
examples are checked and padded by `mlm_ref.examples.collect`, as in the torch collator, and
the masks equal `mlm_torch.collate.MLMCollator`'s for the same seed. Every distinct padded
length compiles the masking once: `pad_to_multiple_of` bounds how many there are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from mlm_ref.config import MaskerBase, MaskingConfig
from mlm_ref.examples import INT32_MAX, check_epoch, collect
from mlm_ref.hf import WordStarts, params_from_tokenizer
from mlm_ref.validation import check_no_compat

from .streams import example_keys, mask_rows
from .wwm import mask_word_rows

__all__ = ["collate", "batches", "MLMCollator"]


def collate(examples: Sequence[dict], config: MaskingConfig, *, seed, epoch: int,
            labels: str = "hf", purpose="mlm", pad_to_multiple_of: int | None = None,
            word_starts: WordStarts | None = None) -> dict[str, np.ndarray]:
    """Pad and mask a list of examples, each by its own stateless key.

    Args:
        examples: mappings with `input_ids` (ints) and `index` (in the dataset), and
            optionally `attention_mask` (kept, checked against the padding),
            `special_tokens_mask` (flagged tokens never selected), `token_type_ids`,
            `word_ids` (ints, -1 or `None` outside words: whole-word masking, each row as
            `mlm_jax.wwm.mask_words` masks it alone), `epoch` (wins over `epoch=`) and any
            other key (passed through: `mlm_ref.examples`).
        config: the masking parameters.
        seed, epoch, purpose: the stream (`mlm_ref.streams`); `epoch` may be an integral
            float.
        labels: `"hf"` (-100 where not selected) or `"padding_token"` (the contract's `y`).
        pad_to_multiple_of: round the padded length up to a multiple of this.
        word_starts: whole-word masking with words read from the ids where the examples carry
            no `word_ids` (`mlm_ref.hf.WordStarts`).

    Returns:
        int32 NumPy arrays `[batch, seq]`: `input_ids` (masked), `attention_mask`, `labels`
        and, when the examples have them, `token_type_ids`; then the other keys.

    Raises:
        TypeError, ValueError: bad input, naming the example and the key (ids beyond int32
            included).
    """
    if labels not in ("hf", "padding_token"):
        raise ValueError(f"labels must be 'hf' or 'padding_token', got {labels!r}")
    _check_multiple(pad_to_multiple_of)
    c = collect(examples, config.padding_token, pad_to_multiple_of=pad_to_multiple_of,
                int_max=INT32_MAX)
    x = c.input_ids.astype(np.int32)                                     # [batch, seq]
    keys = _keys(seed, check_epoch(epoch), c.index, c.epochs, purpose)   # [batch, 2]
    words = c.word_ids
    if words is None and word_starts is not None:
        words = word_starts.word_ids(c.input_ids, _in_word(c, config))
    if words is not None:
        x_masked, y = (np.asarray(a) for a in mask_word_rows(x, words.astype(np.int32), keys,
                                                             config, check_ids=False))
    else:                                                       # the ids are checked: collect
        check_no_compat(config)
        x_masked, y = (np.asarray(a) for a in mask_rows(x, keys, config, check_ids=False))
    if c.special is not None and c.special.any():        # flagged tokens: never selected
        x_masked = np.where(c.special, x, x_masked)
        y = np.where(c.special, config.padding_token, y)
    if labels == "hf":
        y = np.where(y == config.padding_token, -100, y)
    batch = {"input_ids": x_masked, "attention_mask": c.attention_mask.astype(np.int32),
             "labels": y.astype(np.int32)}
    if c.token_type_ids is not None:
        batch["token_type_ids"] = c.token_type_ids.astype(np.int32)
    for name, value in c.extra.items():
        batch[name] = _as_int32(name, value)
    return batch


def _check_multiple(multiple) -> None:
    if multiple is not None and (isinstance(multiple, bool) or not isinstance(multiple, int)
                                 or multiple < 1):
        raise ValueError(f"pad_to_multiple_of must be a positive int, got {multiple!r}")


def _keys(seed, epoch: int, index: np.ndarray, epochs, purpose) -> np.ndarray:
    """uint32 `[batch, 2]`: each example's key, by its own epoch where it has one."""
    if epochs is None:
        return np.asarray(example_keys(seed, epoch, index, purpose))
    keys = np.empty((len(index), 2), np.uint32)
    for e in np.unique(epochs):                    # one vectorised derivation per epoch
        rows = np.flatnonzero(epochs == e)
        keys[rows] = np.asarray(example_keys(seed, int(e), index[rows], purpose))
    return keys


def _in_word(c, config: MaskingConfig) -> np.ndarray:
    """Where a word can be: not padding, not a never-masked id, not flagged special."""
    x = c.input_ids
    out = (c.attention_mask != 0) & (x != config.padding_token)
    out &= ~np.isin(x, np.asarray(config.no_mask_tokens, dtype=np.int64))
    return out if c.special is None else out & ~c.special


def _as_int32(name: str, value):
    """A passed-through integer array as int32 (JAX's default), refused if it does not fit;
    other arrays and lists as they are."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        return value
    if value.size and (value.max() > INT32_MAX or value.min() < -INT32_MAX - 1):
        raise ValueError(f"{name!r} holds {value.max()}, beyond JAX's int32")
    return value.astype(np.int32)


class MLMCollator(MaskerBase):
    """`collate` with its seed, epoch and options held, called on a list of examples.

    Args:
        seed, labels, purpose, pad_to_multiple_of, word_starts: as `collate`'s.
        **params: the masking parameters of `mlm_ref.config.MaskerBase`.

    The masks equal those of `mlm_torch.collate.MLMCollator` built with the same arguments.
    """

    def __init__(self, *, seed, labels: str = "hf", purpose="mlm",
                 pad_to_multiple_of: int | None = None, word_starts: WordStarts | None = None,
                 **params):
        super().__init__(**params)
        if labels not in ("hf", "padding_token"):
            raise ValueError(f"labels must be 'hf' or 'padding_token', got {labels!r}")
        _check_multiple(pad_to_multiple_of)
        example_keys(seed, 0, [], purpose)                 # check seed and purpose now
        self.seed, self.labels, self.purpose = seed, labels, purpose
        self.pad_to_multiple_of, self.word_starts = pad_to_multiple_of, word_starts
        self.epoch = 0

    @classmethod
    def from_tokenizer(cls, tokenizer, *, seed, mlm_probability: float = 0.15,
                       mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                       pad_to_multiple_of: int | None = None, whole_word_mask: bool = False,
                       **kwargs) -> "MLMCollator":
        """A collator that means what `DataCollatorForLanguageModeling(tokenizer, ...)` means
        (`mlm_torch.collate.MLMCollator.from_tokenizer` documents the arguments)."""
        params = params_from_tokenizer(tokenizer, mlm_probability=mlm_probability,
                                       mask_replace_prob=mask_replace_prob,
                                       random_replace_prob=random_replace_prob)
        return cls(seed=seed, pad_to_multiple_of=pad_to_multiple_of,
                   word_starts=WordStarts(tokenizer) if whole_word_mask else None,
                   **params, **kwargs)

    def set_epoch(self, epoch) -> None:
        """Use `epoch`'s masks from now on (an integral float such as 1.0 is accepted)."""
        self.epoch = check_epoch(epoch)

    def __call__(self, examples) -> dict[str, np.ndarray]:
        return collate(examples, self.config, seed=self.seed, epoch=self.epoch,
                       labels=self.labels, purpose=self.purpose,
                       pad_to_multiple_of=self.pad_to_multiple_of,
                       word_starts=self.word_starts)

    def __repr__(self) -> str:
        return (f"mlm_jax.collate.MLMCollator({self.config}, seed={self.seed!r}, "
                f"labels={self.labels!r}, purpose={self.purpose!r}, epoch={self.epoch})")


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
