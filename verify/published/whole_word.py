"""Hugging Face's whole-word masking behind the WWM gate's protocol, unchanged in what it does.

`DataCollatorForLanguageModeling(whole_word_mask=True)` (transformers 5.x) finds words from the
tokenizer's offset mapping: a piece starts a new word when there is a character gap before it
or the piece before it is special, so punctuation glued to a word (`film,`, `don't`) joins that
word. It selects a word when a Bernoulli(`mlm_probability`) draw at the word's first piece comes
up, and then, whatever `mask_replace_prob` it was given, writes `[MASK]` over every selected
piece: its `__post_init__` warns "Random token replacement is not supported with whole word
masking" and sets `mask_replace_prob = 1`, `random_replace_prob = 0`.

`hf_wwm(**module description keywords)` returns `fn(x, word_ids=w, seed=s, offsets=o)` for
`verify.words.wwm_adapters`: the collator gets `x` transposed to `[batch, seq]`, the special
tokens mask of its tokenizer (`verify.published.hf_tokenizer`: the config's special ids), the
offsets the gate hands over (`wants_offsets`; synthesized from the word ids when none: pieces
of a word touch, words one character apart) and a `torch.Generator` seeded with `seed`. The
word ids themselves never reach it: it decides words from offsets alone, as it does in training.
"""

from __future__ import annotations

import warnings

import numpy as np

from mlm_ref.config import MaskingConfig

__all__ = ["hf_wwm"]


def hf_wwm(**kwargs):
    """`DataCollatorForLanguageModeling(whole_word_mask=True).torch_mask_tokens` as a
    whole-word masker (NumPy `[seq_len, batch]` in and out)."""
    import torch
    from transformers import DataCollatorForLanguageModeling

    from ..words.word_batches import word_starts
    from . import hf_tokenizer
    config = MaskingConfig(**kwargs)
    tok = hf_tokenizer(config)
    with warnings.catch_warnings():  # the "mask_replace_prob set to 1" warning: documented
        warnings.simplefilter("ignore")
        hf = DataCollatorForLanguageModeling(
            tokenizer=tok, mlm_probability=config.masking_prob, whole_word_mask=True,
            mask_replace_prob=config.mask_token_prob, random_replace_prob=config.randomize_prob,
            return_tensors="pt")
    special = torch.tensor(sorted(tok.all_special_ids))

    def mask(x: np.ndarray, *, word_ids: np.ndarray, seed: int, offsets=None):
        if offsets is None:
            start = word_starts(word_ids) | (word_ids < 0)
            end = np.cumsum(start + 1, axis=0)
            offsets = np.stack([end - 1, end], axis=-1)
        inputs = torch.from_numpy(np.ascontiguousarray(x.T))                 # [batch, seq]
        hf.generator = torch.Generator().manual_seed(int(seed))
        x_masked, labels = hf.torch_mask_tokens(
            inputs, special_tokens_mask=torch.isin(inputs, special).long(),
            offset_mapping=torch.from_numpy(np.ascontiguousarray(offsets.transpose(1, 0, 2))))
        y = labels.masked_fill(labels == -100, config.padding_token)
        return (np.ascontiguousarray(x_masked.numpy().T).astype(x.dtype),
                np.ascontiguousarray(y.numpy().T).astype(x.dtype))

    mask.wants_offsets = True
    return mask
