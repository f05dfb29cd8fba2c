"""Hugging Face's collator parameters in the contract's terms, for the collators' `from_tokenizer`.

`transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability, mask_replace_prob,
random_replace_prob)` selects each token the tokenizer does not flag as special with
probability `mlm_probability`, then replaces a selected token by `[MASK]` with probability
`mask_replace_prob` and by a random id of `range(len(tokenizer))` with probability
`random_replace_prob` (both shares of *all* selected tokens: it scales the second to the
remainder itself), leaving the rest unchanged. The contract's parameters
(`mlm_ref.config.MaskerBase`) say the same with `masking_prob`, `randomize_prob` and
`no_change_prob`; `params_from_tokenizer` converts, and `WordStarts` reads word boundaries
from the tokenizer's vocabulary for whole-word masking. Only NumPy is imported: the tokenizer
is used through its public attributes.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .words import STYLES

__all__ = ["params_from_tokenizer", "WordStarts"]


def _share(name: str, value) -> Fraction:
    """A probability as an exact fraction of its decimal spelling (0.8 is 4/5), so that
    `1 - 0.8 - 0.1` is exactly 0.1, as a user who wrote 0.1 would pass it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return Fraction(repr(float(value)))


def params_from_tokenizer(tokenizer, *, mlm_probability=0.15, mask_replace_prob=0.8,
                          random_replace_prob=0.1) -> dict:
    """The `MaskerBase` parameters that mean what Hugging Face's collator means.

    Args:
        tokenizer: a `transformers` tokenizer (anything with `pad_token_id`, `mask_token_id`,
            `all_special_ids` and `len()`).
        mlm_probability, mask_replace_prob, random_replace_prob: Hugging Face's meanings
            (module docstring).

    Returns:
        `padding_token`, `mask_token`, `no_mask_tokens` (every special id but the padding
        token), `n_tokens` (`len(tokenizer)`), `masking_prob`, `randomize_prob` and
        `no_change_prob`.

    Raises:
        ValueError: a tokenizer without a padding or mask token, or probabilities out of
            range (`mask_replace_prob + random_replace_prob` above 1).
    """
    for name in ("pad_token_id", "mask_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise ValueError(f"the tokenizer has no {name[:-3]} (its {name} is None); masked "
                             f"language modelling needs one (e.g. tokenizer.add_special_tokens)")
    mask, rand = _share("mask_replace_prob", mask_replace_prob), \
        _share("random_replace_prob", random_replace_prob)
    if mask + rand > 1:
        raise ValueError(f"mask_replace_prob + random_replace_prob must not exceed 1, got "
                         f"{mask_replace_prob} + {random_replace_prob}")
    pad = int(tokenizer.pad_token_id)
    return dict(padding_token=pad, mask_token=int(tokenizer.mask_token_id),
                no_mask_tokens=sorted({int(i) for i in tokenizer.all_special_ids} - {pad}),
                n_tokens=len(tokenizer),
                masking_prob=float(_share("mlm_probability", mlm_probability)),
                randomize_prob=float(rand), no_change_prob=float(1 - mask - rand))


class WordStarts:
    """Which vocabulary ids start a word, read once from the tokenizer's pieces.

    WordPiece marks a continuation with `##`, SentencePiece and byte-level BPE mark a word
    start with `▁` and `Ġ` (`mlm_ref.words.STYLES`); the style is the one the vocabulary uses.
    `word_ids(x, in_word)` then numbers the words of each row of a padded batch at once, as
    `mlm_ref.words.word_ids_from_pieces` numbers one sequence.

    Raises:
        ValueError: a vocabulary that marks no word boundary in any of these styles.
    """

    def __init__(self, tokenizer):
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        pieces = ["" if p is None else str(p) for p in pieces]
        for style, (marker, marks_start) in STYLES.items():
            marked = np.array([p.startswith(marker) for p in pieces], dtype=bool)
            if marked.any():
                self.style = style
                self.table = marked if marks_start else ~marked             # [vocab]
                return
        raise ValueError("the tokenizer's vocabulary marks no word boundary (no '##', '\u2581' "
                         "or '\u0120' pieces): give each example its 'word_ids' (a fast "
                         "tokenizer's word_ids()) for whole-word masking")

    def word_ids(self, x: np.ndarray, in_word: np.ndarray) -> np.ndarray:
        """Word ids of a padded batch: int64 `[batch, seq]`, -1 outside words.

        Args:
            x: token ids `[batch, seq]`.
            in_word: bool `[batch, seq]`, the positions that belong to a word (not padding,
                not special).
        """
        start = np.zeros_like(in_word)
        ids = np.clip(x, 0, len(self.table) - 1)         # ids beyond the vocabulary: words
        start[:, 1:] = self.table[ids[:, 1:]] | ~in_word[:, :-1]
        start[:, 0] = True
        start &= in_word
        return np.where(in_word, np.cumsum(start, axis=1) - 1, -1).astype(np.int64)
