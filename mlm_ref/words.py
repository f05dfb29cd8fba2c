"""Building `word_ids` for whole-word masking from what a tokenizer returns.

Whole-word masking (`mlm_ref.wwm`) needs to know which pieces make up a word. A tokenizer knows,
and says so in one of two ways:

* **Word indices.** A Hugging Face *fast* tokenizer returns, per sequence, `word_ids()`: the
  index of the word each piece came from, and `None` for special tokens such as `[CLS]`.
  `word_ids_from_tokenizer` turns that into `word_ids` (None becomes -1). In a sequence *pair*
  the indices restart in the second segment, so the last word of A and the first word of B can
  carry the same index; pass `sequence_ids()` too and a segment change always ends a word.
* **Piece spellings.** Without word indices, the pieces themselves say where words begin:
  WordPiece (BERT) marks a *continuation* with a `##` prefix; SentencePiece (ALBERT, T5) marks
  a *word start* with `▁`; byte-level BPE (GPT-2, RoBERTa) marks a word start with `Ġ` (an
  encoded space; the first word of a text has none). `word_ids_from_pieces` reads these.

Either way the result numbers the words of each sequence 0, 1, 2... in order, so equal ids
never join two different words, and marks special tokens -1. A batch (a list of sequences)
comes back in the `[seq_len, batch]` layout that the maskers take, shorter sequences padded
with -1 at the end.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["word_ids_from_tokenizer", "word_ids_from_pieces", "SPECIAL_PIECES", "STYLES"]

# Pieces that belong to no word unless the caller says otherwise.
SPECIAL_PIECES = frozenset({"[CLS]", "[SEP]", "[PAD]", "[MASK]", "<s>", "</s>", "<pad>",
                            "<mask>", "<cls>", "<sep>", "<|endoftext|>"})

# style -> (marker, whether the marker starts a word (True) or continues one (False))
STYLES = {"wordpiece": ("##", False), "sentencepiece": ("\u2581", True),
          "bytelevel": ("\u0120", True)}
_ALIASES = {"##": "wordpiece", "\u2581": "sentencepiece", "\u0120": "bytelevel"}


def _is_batch(values) -> bool:
    """A batch is a non-empty sequence whose elements are themselves sequences."""
    return (isinstance(values, Sequence) and not isinstance(values, str) and len(values) > 0
            and all(isinstance(v, Sequence) and not isinstance(v, str) for v in values))


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Sequences as the columns of a `[seq_len, batch]` array, padded with -1."""
    out = np.full((max((r.size for r in rows), default=0), len(rows)), -1, dtype=np.int64)
    for b, row in enumerate(rows):  # one copy per sequence, not per position
        out[:row.size, b] = row
    return out


def _number_runs(starts: np.ndarray, in_word: np.ndarray) -> np.ndarray:
    """Word numbers 0, 1, ... from where words start; -1 outside words."""
    return np.where(in_word, np.cumsum(starts) - 1, -1).astype(np.int64)


def _one_from_tokenizer(word_ids, sequence_ids) -> np.ndarray:
    ids = np.array([-1 if v is None else int(v) for v in word_ids], dtype=np.int64)
    if np.any(ids < -1):
        raise ValueError("word indices from a tokenizer must be non-negative or None")
    in_word = ids >= 0
    change = np.ones(ids.size, dtype=bool)
    change[1:] = ids[1:] != ids[:-1]
    if sequence_ids is not None:
        seg = np.array([-1 if v is None else int(v) for v in sequence_ids], dtype=np.int64)
        if seg.shape != ids.shape:
            raise ValueError(f"sequence_ids has {seg.size} entries, word_ids {ids.size}")
        change[1:] |= seg[1:] != seg[:-1]                   # a new segment starts a new word
    return _number_runs(change & in_word, in_word)


def word_ids_from_tokenizer(word_ids, sequence_ids=None) -> np.ndarray:
    """`word_ids` for the maskers from a fast tokenizer's `word_ids()`.

    Args:
        word_ids: one sequence's word indices (`Encoding.word_ids`, `BatchEncoding.word_ids(i)`:
            ints and None), or a list of them for a batch.
        sequence_ids: optional, the same structure from `sequence_ids()`; where the segment
            changes a new word starts even if the word index does not change.

    Returns:
        int64 `[seq_len]` for one sequence, `[seq_len, batch]` for a batch (padded with -1):
        words numbered 0, 1, ... per sequence, -1 for special tokens.

    Raises:
        ValueError: a negative word index, or `sequence_ids` of another length.
    """
    if _is_batch(word_ids):
        segs = [None] * len(word_ids) if sequence_ids is None else list(sequence_ids)
        if len(segs) != len(word_ids):
            raise ValueError(f"sequence_ids has {len(segs)} sequences, word_ids "
                             f"{len(word_ids)}")
        return _stack([_one_from_tokenizer(w, s) for w, s in zip(word_ids, segs)])
    return _one_from_tokenizer(word_ids, sequence_ids)


def _one_from_pieces(tokens, marker: str, marks_start: bool, special) -> np.ndarray:
    if not all(isinstance(t, str) for t in tokens):
        raise TypeError("tokens must be strings (the pieces, e.g. Encoding.tokens)")
    in_word = np.array([t not in special for t in tokens], dtype=bool)
    marked = np.array([t.startswith(marker) for t in tokens], dtype=bool)
    after_word = np.zeros(in_word.size, dtype=bool)
    after_word[1:] = in_word[:-1]
    # a piece starts a word when it says so (or, for `##`, does not say it continues one), and
    # always after a special token or at the start: there is no word for it to continue
    starts = in_word & ((marked if marks_start else ~marked) | ~after_word)
    return _number_runs(starts, in_word)


def word_ids_from_pieces(tokens, style: str, *, special_tokens=SPECIAL_PIECES) -> np.ndarray:
    """`word_ids` for the maskers from the pieces' spellings.

    Args:
        tokens: one sequence's pieces (strings, e.g. `Encoding.tokens`), or a list of them.
        style: `"wordpiece"` (or `"##"`: `##` marks a continuation), `"sentencepiece"` (or
            `"▁"`: marks a word start) or `"bytelevel"` (or `"Ġ"`: marks a word start).
        special_tokens: pieces that belong to no word (-1); `SPECIAL_PIECES` by default.

    Returns:
        int64 `[seq_len]` for one sequence, `[seq_len, batch]` for a batch (padded with -1).

    Raises:
        ValueError: an unknown style.
        TypeError: a piece that is not a string.
    """
    name = _ALIASES.get(style, style)
    if name not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)} (or {sorted(_ALIASES)}), "
                         f"got {style!r}")
    marker, marks_start = STYLES[name]
    special = frozenset(special_tokens)
    if _is_batch(tokens):
        return _stack([_one_from_pieces(t, marker, marks_start, special) for t in tokens])
    if isinstance(tokens, str):
        raise TypeError("tokens must be a list of pieces, not one string")
    return _one_from_pieces(list(tokens), marker, marks_start, special)
