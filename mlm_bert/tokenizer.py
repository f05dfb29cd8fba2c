"""WordPiece: the vocabulary, trained offline with Hugging Face `tokenizers`, saved and reloaded.

BERT reads word pieces: frequent words are one token, rare ones are split into a first piece
and continuation pieces marked `##` ("unwatchable" -> `un ##watch ##able`). WordPiece learns
the pieces bottom-up from characters, merging the pair whose frequency is highest relative to
the frequencies of its parts. The pipeline is BERT's uncased one: normalise (lower-case, strip
accents, clean control characters), pre-tokenise on white space and punctuation, then split
each word into pieces.

The five special tokens come first, so their ids are fixed whatever the corpus:
`[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4.

Whole-word masking needs to know which pieces form one word. The tokenizer says so through
`Encoding.word_ids()` (the index of the pre-tokenised word each piece came from; `None` for a
special token), which `encode_sentence` returns with `None` as -1. Inside a sentence a new word
starts exactly at every piece not marked `##`, which is what `word_starts` reads off the
vocabulary: it recovers the word boundaries from token ids alone, after sentences have been cut
and joined into pairs (Google's BERT does its whole-word masking on the `##` marks the same way).
"""

from __future__ import annotations

import pathlib
from typing import Iterable

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

__all__ = ["SPECIAL_TOKENS", "PAD", "UNK", "CLS", "SEP", "MASK", "train_tokenizer",
           "load_tokenizer", "encode_sentence", "word_starts", "word_ids_from_starts",
           "detokenize"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(5)


def _empty_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True,
                                                clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def train_tokenizer(sentences: Iterable[str], vocab_size: int = 8192, *,
                    min_frequency: int = 2) -> Tokenizer:
    """Train an uncased WordPiece vocabulary of at most `vocab_size` pieces.

    Args:
        sentences: the training text, one string at a time.
        vocab_size: the largest vocabulary, special tokens included (>= 64).
        min_frequency: a merge must occur at least this often.

    Raises:
        ValueError: `vocab_size` too small.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 64:
        raise ValueError(f"vocab_size must be an int >= 64, got {vocab_size!r}")
    tok = _empty_tokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS),
                                        continuing_subword_prefix="##", show_progress=False)
    tok.train_from_iterator(sentences, trainer=trainer)
    # The trainer numbers pieces of equal frequency in an order that changes from process to
    # process; numbering them in sorted order makes the same text give the same ids, hence the
    # same run from the same seed.
    pieces = sorted(p for p in tok.get_vocab() if p not in SPECIAL_TOKENS)
    tok.model = models.WordPiece({p: i for i, p in enumerate([*SPECIAL_TOKENS, *pieces])},
                                 unk_token="[UNK]", continuing_subword_prefix="##")
    _check_specials(tok)
    return tok


def load_tokenizer(path) -> Tokenizer:
    """A tokenizer saved with `tokenizer.save(path)`.

    Raises:
        FileNotFoundError: no such file. ValueError: not a tokenizer file (empty, truncated,
            another format) or its special tokens are not ours.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer at {path}")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:        # tokenizers raises a bare Exception for a file it cannot parse
        raise ValueError(f"{path} is not a readable tokenizer (truncated or damaged?): "
                         f"{' '.join(str(e).split())[:120] or type(e).__name__}"
                         ) from None
    _check_specials(tok, path)
    return tok


def _check_specials(tok: Tokenizer, path=None) -> None:
    ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
    if ids != list(range(len(SPECIAL_TOKENS))):
        where = f"{path}: " if path else ""
        raise ValueError(f"{where}special tokens {SPECIAL_TOKENS} must have ids 0..4, got {ids} "
                         "(not a mlm_bert tokenizer)")


def encode_sentence(tok: Tokenizer, text: str) -> tuple[list[int], list[int]]:
    """A sentence's piece ids and word ids (no special tokens added).

    Returns:
        `(ids, word_ids)`, equal lengths; `word_ids[i]` is `Encoding.word_ids()[i]`, -1 for
        `None`.
    """
    enc = tok.encode(text, add_special_tokens=False)
    return enc.ids, [-1 if w is None else w for w in enc.word_ids]


# the pieces that belong to no word: a word id of -1
_NO_WORD = (PAD, CLS, SEP)


def word_starts(tok: Tokenizer) -> np.ndarray:
    """bool `[vocab]`: whether a piece starts a word (not `##`-marked; `[UNK]` and `[MASK]`
    stand for a whole word; `[PAD]`, `[CLS]` and `[SEP]` belong to none)."""
    vocab = tok.get_vocab()
    starts = np.zeros(tok.get_vocab_size(), dtype=bool)
    for piece, i in vocab.items():
        starts[i] = not piece.startswith("##")
    starts[list(_NO_WORD)] = False
    return starts


def word_ids_from_starts(ids, starts: np.ndarray) -> np.ndarray:
    """Word ids of a row of pieces: 0, 1, ... counting word starts, -1 at `[PAD]`, `[CLS]`
    and `[SEP]`.

    A continuation piece gets the id of the word it continues; a continuation with no word
    before it (a row cut mid-word) starts its own word.

    Returns:
        int64 `[len(ids)]`.
    """
    ids = np.asarray(ids, dtype=np.int64)
    special = np.isin(ids, _NO_WORD)
    new_word = starts[ids] & ~special
    if ids.size and not special[0]:
        new_word[0] = True
    prev_special = np.concatenate([[True], special[:-1]])
    new_word |= ~special & prev_special          # a piece right after [CLS]/[SEP] starts a word
    out = np.cumsum(new_word) - 1
    out[special] = -1
    return out


def detokenize(pieces: list[str]) -> str:
    """Join word pieces into text: `##` pieces attach to the one before, others get a space."""
    out = ""
    for p in pieces:
        if p.startswith("##"):
            out += p[2:]
        else:
            out += (" " if out else "") + p
    return out
