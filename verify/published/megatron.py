"""NVIDIA Megatron-core's BERT masking, run as published (`pip install megatron-core`).

The code run is `MaskedWordPieceDataset._create_masked_lm_predictions` with
`BERTMaskedWordPieceDataset._get_token_mask` (megatron-core 0.16.1,
`megatron/core/datasets/masked_dataset.py` and `bert_dataset.py`), configured as
`pretrain_bert.py` configures it (NVIDIA/Megatron-LM at 25a99468): whole words, n-grams of up
to 3 words drawn with probability proportional to 1/n, no permutation. What it does:

* a **fixed count** per sequence: `min(p * target_length, max(1, round(len * p)))` tokens, with
  `[CLS]` and `[SEP]` counted in `len` though they are never selected;
* **spans**: a shuffled list of n-gram candidates, taken while they fit under the count;
* **80/10/10 per token** (hard-coded: the probabilities of the configuration are not used),
  the random id drawn over the **whole vocabulary**, special ids included;
* a generator per sample, `RandomState(seed + index)`.

Only `[CLS]` and `[SEP]` are known to it (the tokenizer's `cls` and `sep`): the first two of
`no_mask_tokens`. Words come from the vocabulary (a piece whose string starts with `##`
continues the word before it): the token-level adapter (`megatron`) makes every token a word
of its own, the whole-word adapter (`megatron-wwm`) gives the pieces that continue a word of
the gate's `word_ids` a `##` string. The dataset object is created without its constructor
(which builds index files on disk), with the configuration attributes the method reads.
"""

from __future__ import annotations

import types
import warnings

import numpy as np

from mlm_ref.config import MaskingConfig

from .columns import call_seed, like, mask_columns, to_numpy

__all__ = ["megatron", "megatron_wwm"]

# Piece ids handed to Megatron are relabelled above the vocabulary, two per position: even
# ids start a word, odd ids continue one ("##"), so the published code sees the word
# structure and nothing else, and its output can be mapped back to the caller's ids.
_BASE = 1 << 40


class _Vocabulary(dict):
    """`inv_vocab`: the real ids (their strings never start with `##`) and, computed on
    demand, the relabelled pieces."""

    def __missing__(self, token_id: int) -> str:
        if token_id >= _BASE:
            return "##piece" if (token_id - _BASE) % 2 else "piece"
        raise KeyError(token_id)


def _dataset(config: MaskingConfig):
    with warnings.catch_warnings():   # its import warns about optional GPU packages (Apex, ...)
        warnings.simplefilter("ignore")
        from megatron.core.datasets.bert_dataset import BERTMaskedWordPieceDataset

    if len(config.no_mask_tokens) < 2:
        raise ValueError("Megatron needs [CLS] and [SEP]: give at least two no_mask_tokens")
    cls, sep = config.no_mask_tokens[0], config.no_mask_tokens[1]
    vocab = _Vocabulary({i: f"id{i}" for i in range(config.n_tokens)})
    tokenizer = types.SimpleNamespace(cls=cls, sep=sep, mask=config.mask_token,
                                      inv_vocab=vocab)
    ds = object.__new__(BERTMaskedWordPieceDataset)
    ds.config = types.SimpleNamespace(      # pretrain_bert.py's masking settings
        tokenizer=tokenizer, masking_probability=config.masking_prob, masking_max_ngram=3,
        masking_do_full_word=True, masking_do_permutation=False,
        masking_use_longer_ngrams=False, masking_use_geometric_distribution=False)
    ds.token_lookup = list(range(config.n_tokens))   # `list(inv_vocab.keys())` in __init__
    return ds, (cls, sep)


def _sequence_masker(config: MaskingConfig, base_seed: int):
    ds, specials = _dataset(config)

    def mask_one(column, tokens, words, seq_len):
        continues = np.zeros(len(tokens), dtype=bool)
        if words is not None:
            continues[1:] = (words[1:] == words[:-1]) & (words[1:] >= 0)
        pieces = [int(t) if t in specials else _BASE + 2 * j + int(c)
                  for j, (t, c) in enumerate(zip(tokens, continues))]
        rng = np.random.RandomState((base_seed + column) % 2**32)   # seed + sample index
        masked, positions, _, _, _ = ds._create_masked_lm_predictions(
            pieces, seq_len, rng)
        masked = np.array(masked, dtype=np.int64)
        out = np.where(masked == np.array(pieces), tokens, masked)   # unchanged: the original
        y = np.full(len(tokens), config.padding_token, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        y[positions] = tokens[positions]                 # its labels, in the caller's ids
        return out, y

    return mask_one


def megatron(**kwargs):
    """Megatron-core's BERT masking as a token-level masker (torch `[seq_len, batch]` in and
    out; seeded by `torch.manual_seed`, each column a sample `RandomState(seed + column)`)."""
    config = MaskingConfig(**kwargs)
    _dataset(config)                         # fail at construction when the package is missing

    def mask(x):
        xn = to_numpy(x)
        out, y = mask_columns(xn, config, _sequence_masker(config, call_seed()))
        return like(out, x), like(y, x)

    return mask


def megatron_wwm(**kwargs):
    """Megatron-core's BERT masking with the gate's words (`fn(x, word_ids=w, seed=s)` on
    NumPy `[seq_len, batch]`): pieces that continue a word are `##` pieces to it."""
    config = MaskingConfig(**kwargs)
    _dataset(config)

    def mask(x, *, word_ids, seed):
        xn, wn = to_numpy(x), to_numpy(word_ids)
        out, y = mask_columns(xn, config, _sequence_masker(config, int(seed) % 2**31),
                              word_ids=wn)
        return out.astype(x.dtype), y.astype(x.dtype)

    return mask
