"""fairseq's `MaskTokensDataset`, **re-implemented** from its published description.

Source: `MaskTokensDataset.__getitem__` in `fairseq/data/mask_tokens_dataset.py` of fairseq
0.12.2, the last release on PyPI (also github.com/facebookresearch/fairseq at commit
079540e97f1a87eff93200dba1ab3eadb2cbd059). fairseq 0.12.2 installs here but does not import on
Python 3.11: `fairseq/dataclass/configs.py` declares a dataclass field with a mutable default,
which Python 3.11 refuses (`ValueError: mutable default <class 'CommonConfig'> for field common
is not allowed`). So this module re-implements the masking from the description, with the
defaults (`mask_prob=0.15`, `leave_unmasked_prob=0.1`, `random_token_prob=0.1`,
`mask_multiple_length=1`), and is labelled a re-implementation wherever it is reported. No code
of fairseq is copied. Where the release is installed, `tests/test_audit.py` runs the release's
own `mask_tokens_dataset.py` (its package imports stubbed) beside this module and requires the
same tokens for every example. What it does:

* a generator per example seeded with `hash((seed, epoch, index)) % 10**6`: one of a million
  seeds, so examples share streams (birthday collisions) in any corpus of more than about a
  thousand examples;
* **probabilistic rounding** of the count: `int(p * len + u)`, `u` uniform, then that many
  distinct positions drawn uniformly: the count's variance is at most 1/4, far below a
  binomial's;
* **no special-token exclusion**: `<s>`/`</s>` (BERT's `[CLS]`/`[SEP]`) are selectable;
* the category: "random or unchanged" with probability 0.2, then split evenly, so 80/10/10 in
  expectation, drawn per position;
* random ids drawn over the dictionary **except its first `nspecial` symbols** (fairseq's
  `Dictionary` puts `<s>`, `<pad>`, `</s>`, `<unk>` at ids 0 to 3): with BERT's ids that
  excludes `[PAD]` and three unused ids, not `[CLS]`, `[SEP]` or `[MASK]`.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from .columns import call_seed, like, mask_columns, to_numpy

__all__ = ["fairseq", "NSPECIAL", "example_seed", "mask_sequence"]

NSPECIAL = 4   # fairseq's Dictionary: <s>, <pad>, </s>, <unk>


def example_seed(seed: int, epoch: int, index: int) -> int:
    """fairseq's per-example seed: a Python tuple hash reduced to one of 10**6 values."""
    return int(hash((seed, epoch, index)) % 1e6)


def mask_sequence(tokens, config: MaskingConfig, rng: np.random.RandomState, weights):
    sz = len(tokens)
    num_mask = int(config.masking_prob * sz + rng.rand())          # probabilistic rounding
    mask = np.zeros(sz, dtype=bool)
    mask[rng.choice(sz, num_mask, replace=False)] = True
    rand_or_unmask_prob = config.randomize_prob + config.no_change_prob
    rand_or_unmask = mask & (rng.rand(sz) < rand_or_unmask_prob)
    decision = rng.rand(sz) < config.no_change_prob / rand_or_unmask_prob
    unmask, rand = rand_or_unmask & decision, rand_or_unmask & ~decision
    out = tokens.copy()
    out[mask ^ unmask] = config.mask_token
    if rand.any():
        out[rand] = rng.choice(len(weights), int(rand.sum()), p=weights)
    y = np.where(mask, tokens, config.padding_token)
    return out, y


def fairseq(*, nspecial: int = NSPECIAL, **kwargs):
    """fairseq's masking as a token-level masker (torch `[seq_len, batch]` in and out): column
    `c` of a call is example `c` of epoch 0, under a run seed drawn from torch's generator."""
    config = MaskingConfig(**kwargs)
    if config.randomize_prob + config.no_change_prob <= 0:
        raise ValueError("this adapter covers random_token_prob + leave_unmasked_prob > 0")
    weights = np.ones(config.n_tokens)
    weights[:nspecial] = 0
    weights /= weights.sum()

    def mask(x):
        seed = call_seed()

        def mask_one(column, tokens, words, seq_len):
            rng = np.random.RandomState(example_seed(seed, 0, column))
            return mask_sequence(tokens, config, rng, weights)

        out, y = mask_columns(to_numpy(x), config, mask_one)
        return like(out, x), like(y, x)

    return mask
