"""Google BERT's masking, **re-implemented** from its published description.

Source: `create_masked_lm_predictions` in `create_pretraining_data.py` of
github.com/google-research/bert at commit eedf5716ce1268e56f0a50264a88cafad334ac61 (the
version with `--do_whole_word_mask`). The script needs TensorFlow 1 (`tf.gfile`,
`tf.app.run`) and is not a package on PyPI, so it cannot be imported here; this module
re-implements the masking step from its description, with the script's defaults
(`--masked_lm_prob 0.15`, `--max_predictions_per_seq 20`), and is labelled a
re-implementation wherever it is reported. No code of the script is copied. What it does:

* **candidates**: every piece but `[CLS]` and `[SEP]` (with whole-word masking, a `##` piece
  joins the candidate of the word before it), in an order shuffled by the run's generator;
* a **fixed count** per sequence, `min(max_predictions_per_seq, max(1, round(len * p)))`, with
  `[CLS]` and `[SEP]` counted in `len`; candidates are taken in the shuffled order while they
  fit under the count;
* **80/10/10 per piece**, even under whole-word masking (each piece of a selected word draws
  its own category); the random piece is drawn over the **whole vocabulary**, special
  pieces included;
* **one** `random.Random(seed)` for the whole corpus, and **static masks**: the script writes
  each instance `--dupe_factor` (10) times with different masks, and training reads those
  files for every epoch. The token-level gate sees one masking step; the static masks are a
  pipeline property (`python -m verify.pipeline tests.pipelines:static_mask`).

`google_bert` is the token-level masker, `google_bert_wwm` the whole-word one: the gate's
`word_ids` say which pieces continue a word, as `##` does in the script.
"""

from __future__ import annotations

import random

import numpy as np

from mlm_ref.config import MaskingConfig

from .columns import call_seed, like, mask_columns, to_numpy

__all__ = ["google_bert", "google_bert_wwm", "MAX_PREDICTIONS_PER_SEQ"]

MAX_PREDICTIONS_PER_SEQ = 20   # the script's default flag


def _candidates(tokens, continues, specials) -> list[list[int]]:
    """The positions that may be masked, grouped by word when `continues` marks `##` pieces."""
    groups: list[list[int]] = []
    for i, token in enumerate(tokens):
        if token in specials:
            continue
        if continues[i] and groups:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _mask_sequence(tokens, continues, config: MaskingConfig, rng: random.Random,
                   max_predictions: int):
    specials = set(config.no_mask_tokens[:2])          # the script knows [CLS] and [SEP]
    groups = _candidates(tokens.tolist(), continues, specials)
    rng.shuffle(groups)
    budget = min(max_predictions, max(1, int(round(len(tokens) * config.masking_prob))))
    out = tokens.copy()
    y = np.full_like(tokens, config.padding_token)
    chosen: set[int] = set()
    for group in groups:
        if len(chosen) >= budget:
            break
        if len(chosen) + len(group) > budget or chosen.intersection(group):
            continue
        for i in group:                                # one category draw per piece
            chosen.add(i)
            if rng.random() < 0.8:
                out[i] = config.mask_token
            elif rng.random() >= 0.5:                  # else: the piece is kept
                out[i] = rng.randint(0, config.n_tokens - 1)
            y[i] = tokens[i]
    return out, y


def _masker(config: MaskingConfig, rng: random.Random, max_predictions: int):
    def mask_one(column, tokens, words, seq_len):
        continues = np.zeros(len(tokens), dtype=bool)
        if words is not None:
            continues[1:] = (words[1:] == words[:-1]) & (words[1:] >= 0)
        return _mask_sequence(tokens, continues, config, rng, max_predictions)

    return mask_one


def google_bert(*, max_predictions_per_seq: int = MAX_PREDICTIONS_PER_SEQ, **kwargs):
    """Google BERT's token-level masking (torch `[seq_len, batch]` in and out), one
    `random.Random` per call seeded from torch's global generator, columns in order."""
    config = MaskingConfig(**kwargs)

    def mask(x):
        rng = random.Random(call_seed())
        out, y = mask_columns(to_numpy(x), config, _masker(config, rng, max_predictions_per_seq))
        return like(out, x), like(y, x)

    return mask


def google_bert_wwm(*, max_predictions_per_seq: int = MAX_PREDICTIONS_PER_SEQ, **kwargs):
    """Google BERT's `--do_whole_word_mask` (`fn(x, word_ids=w, seed=s)`, NumPy)."""
    config = MaskingConfig(**kwargs)

    def mask(x, *, word_ids, seed):
        rng = random.Random(int(seed))
        out, y = mask_columns(to_numpy(x), config, _masker(config, rng, max_predictions_per_seq),
                              word_ids=to_numpy(word_ids))
        return out.astype(x.dtype), y.astype(x.dtype)

    return mask
