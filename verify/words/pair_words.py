"""Sentence pairs with word ids as real tokenizers give them: the WWM gate's default input.

`SyntheticWords` numbers the words of a column 0, 1, 2... from top to bottom. Real inputs are
messier, and a masker that *builds* words from them can get it wrong in ways clean ids never
show. `PairWords` makes `[seq_len, batch]` batches of `[CLS] A [SEP] B [SEP] [PAD]...` with the
word ids a fast tokenizer's `word_ids()` gives (`None` written -1), in three conventions, one
per column, drawn at random:

* **restart** (half the columns): the words of each segment are numbered from 0, so segment B
  reuses A's ids; a word cut by the `[SEP]` between them is the last word of A and word 0 of B;
* **continued** (a quarter): one numbering for the whole column, so a word cut by `[SEP]`
  carries the *same* id on both sides of it (two words: a gap ends a word);
* **double separator** (a quarter): restart, and `[SEP] [SEP]` between the segments (RoBERTa's
  `</s></s>`), a run of two -1 positions.

Word lengths follow `words.WORD_LENGTHS`; the cut between A and B falls uniformly in the middle
half of the sequence, wherever a word happens to be. A quarter of the columns end in a padding
tail (word id -1) of uniform length; as in `SyntheticWords`, ids inside words are uniform over
the vocabulary (padding, `[MASK]` and no-mask ids occur inside words, which makes the word
ineligible), 1% of the pieces hold `[MASK]` and 1% of the word starts are ordinary ids with word
id -1. Without no-mask tokens in the config there are no `[CLS]`/`[SEP]` and one segment.
Offsets are character spans as a fast tokenizer returns them: the pieces of a word touch, a
word starts one character after the piece before it, and every position outside words
(specials, padding, ordinary ids with word id -1) has the span `(0, 0)`.

Beside the word ids and offsets, a batch can spell its pieces (`spell_pieces`), WordPiece style:
a piece that continues a word is `##<id>`, one that starts a word `<id>`, `[CLS]`, `[SEP]` and
`[PAD]` are themselves and an ordinary id outside any word is `</s>`; so that
`mlm_ref.word_ids_from_pieces(pieces, "wordpiece")` finds exactly the gate's words. A masker
that derives words from pieces (`wants_pieces`) is tested on its own derivation.
"""

from __future__ import annotations

import numpy as np

from ..engine.arguments import derive_seed
from .word_batches import MASK_FRACTION, OUTSIDE_FRACTION, WORD_LENGTHS, SyntheticWords, WordBatch
from .word_batches import column_cumsum, word_index, word_starts

__all__ = ["PairWords", "spell_pieces", "PAIR_SOURCE"]

PAIR_SOURCE = ("synthetic sentence pairs ([CLS] A [SEP] B [SEP], word ids restarting in B, "
               "continued across [SEP] or after [SEP] [SEP])")
RESTART, CONTINUED, DOUBLE = 0, 1, 2


class PairWords(SyntheticWords):
    """`WordBatch`es of sentence pairs; calls `2k` and `2k + 1` share the batch of `(seed, k)`.

    Args:
        config: the masking parameters (vocabulary size and special ids).
        seq_len: sequence length (dimension 0), at least 16.
        batch: sequences per call (dimension 1).
        seed: the run's seed.
    """

    def _make(self, pair: int) -> WordBatch:
        cfg, n, b = self.config, self.seq_len, self.batch
        rng = np.random.default_rng(derive_seed(self.seed, "pair words", pair))
        lengths = rng.choice(np.arange(1, WORD_LENGTHS.size + 1), size=(b, n), p=WORD_LENGTHS)
        ends = np.cumsum(lengths, axis=1)
        pos = np.arange(n)
        stream = word_index(ends, n)
        x = rng.integers(0, cfg.n_tokens, size=(n, b))
        x = np.where(rng.random((n, b)) < MASK_FRACTION, cfg.mask_token, x)
        outside = (rng.random((n, b)) < OUTSIDE_FRACTION) & word_starts(stream)
        length = np.where(rng.random(b) < 0.25, rng.integers(n // 4, n + 1, b), n)
        mode = rng.choice([RESTART, RESTART, CONTINUED, DOUBLE], size=b)
        w, specials = stream.copy(), np.zeros((n, b), bool)
        if cfg.no_mask_tokens:
            cls, sep = cfg.no_mask_tokens[0], cfg.no_mask_tokens[-1]
            cut = length // 4 + (rng.random(b) * (length // 2)).astype(np.int64)   # A's [SEP]
            b_start = cut + 1 + (mode == DOUBLE)
            rows = pos[:, None]
            sep_at = (rows == cut) | ((rows == cut + 1) & (mode == DOUBLE)) | (rows == length - 1)
            specials = (rows == 0) | sep_at
            x[sep_at] = sep
            x[0] = cls
            cols = np.arange(b)
            a_base, b_base = stream[1, cols], stream[np.minimum(b_start, n - 1), cols]
            renumber = mode != CONTINUED
            base = np.where(rows >= b_start, b_base, a_base)
            w = np.where(renumber, stream - base, stream)
        pad = pos[:, None] >= length[None, :]
        x = np.where(pad, cfg.padding_token, x)
        w = np.where(pad | specials | outside, -1, w)
        piece_len = rng.integers(1, 5, size=(n, b))
        gap = np.where(word_starts(w) | (w < 0), 1, 0)
        end = column_cumsum(gap + piece_len)
        outside_words = w < 0                                      # as fast tokenizers: (0, 0)
        offsets = np.stack([np.where(outside_words, 0, end - piece_len),
                            np.where(outside_words, 0, end)], axis=-1)
        return WordBatch(x.astype(np.int64), w.astype(np.int64), offsets.astype(np.int64))


def spell_pieces(batch: WordBatch, config) -> np.ndarray:
    """The batch's pieces as WordPiece would spell them: object array of str, `x`'s shape."""
    x, w = batch.x, batch.word_ids
    digits = x.astype(str)
    spelled = np.where(word_starts(w), digits, np.char.add("##", digits)).astype(object)
    outside = w < 0
    spelled[outside] = "</s>"
    names = [(config.padding_token, "[PAD]")]
    if config.no_mask_tokens:
        names += [(config.no_mask_tokens[0], "[CLS]"), (config.no_mask_tokens[-1], "[SEP]")]
    for token, name in names:
        spelled[outside & (x == token)] = name
    return spelled
