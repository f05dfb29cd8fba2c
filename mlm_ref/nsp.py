"""Next-sentence prediction (NSP): sentence pairs from documents, with an exact 50/50 label.

BERT's second pre-training task shows the model two segments, `[CLS] A [SEP] B [SEP]`, and asks
whether B is the text that really follows A in its document (label 0, *IsNext*) or a segment
taken from another document (label 1, *random next*). The label convention here is Google's and
Hugging Face's: **0 = IsNext, 1 = random**.

A document is a list of sentences, a sentence a list of token ids. The published generator
(google-research/bert, `create_pretraining_data.py`, `create_instances_from_document`) walks a
document in *chunks*: sentences are gathered until they reach a target length (usually
`max_seq_len - 3`, with probability `short_seq_prob` a uniform length in `[2, max_seq_len - 3]`),
a uniform split point divides the chunk into A and B, and a coin decides whether B is kept or
replaced by a stretch of another document (whose unused sentences are then "put back" for the
next chunk). Its label is not the 50/50 it is described as:

* a chunk of a single sentence (a sentence longer than the target, the last sentence of a
  document, a one-sentence document) has no real next segment, so it is *always* labelled
  random: on real corpora about 58% of the labels come out random (docs/nsp.md measures it);
* the random document is drawn from the whole corpus, retried up to 10 times while it is the
  current one; on a one-document corpus "random" B is text of the same document, often the
  real next sentence, labelled random.

Ours (`google_compat=False`, the default) keeps the chunks, the split point, the put-back and
the truncation, and changes what makes the label exact:

1. **The label is drawn first**, one exact fair bit of a threefry word, before anything about
   the pair is looked at, and A is built without looking at it. So the label is Bernoulli(0.5)
   conditionally on everything observable about A and its document.
2. **Every chunk has a real next segment.** A chunk of one long sentence takes the sentence
   after it as well; a chunk that is the document's last sentence alone reaches back one
   sentence (A is the sentence before it, reused). A one-sentence document has no next
   sentence at all: it gives no pair of its own (it still serves as random B for others).
3. **Random B always comes from another document**: uniform over the other non-empty
   documents. Empty sentences and empty documents are skipped; fewer than two non-empty
   documents is a `ValueError`.

Truncation is Google's `truncate_seq_pair`: while `len(A) + len(B) > max_seq_len - 3`, one token
is cut from the longer side, from its front or its back by a fair coin. Google cuts B on a tie;
we toss a coin, so neither side is favoured.

Randomness is stateless, as for masking (`mlm_ref.streams`): document `d` in epoch `e` draws
from the key `example_keys(seed, e, [d], purpose="nsp")`, word `i` of its stream being
`threefry.bits_at(key, i, i + 1)`. The pairs whose A comes from document `d` therefore depend on
`(seed, epoch, d)` and the corpus only, never on which worker makes them or in what order
(`indices=` makes the pairs of some documents only). `google_compat=True` draws from the same
streams; its behaviour, not its bit pattern, is the published script's.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

from . import streams, threefry
from .validation import check_documents, check_nsp_params

__all__ = ["Pair", "make_pairs", "check_documents", "IS_NEXT", "RANDOM_NEXT"]

IS_NEXT, RANDOM_NEXT = 0, 1
FIRST = 128         # threefry words computed up front for every document (most need fewer)
ROWS = 1024         # documents whose first words are computed in one call
BLOCK = 1024        # threefry words fetched at a time once a document needs more
GOOGLE_TRIES = 10   # the published script's retries for a random document != the current one


class Pair(NamedTuple):
    """One NSP example: `tokens_a`, `tokens_b` (int64 [len]) and the label (0 IsNext, 1 random)."""

    tokens_a: np.ndarray
    tokens_b: np.ndarray
    is_random_next: int

    def inputs(self, *, cls_id: int, sep_id: int) -> tuple[np.ndarray, np.ndarray]:
        """`input_ids` = `[CLS] A [SEP] B [SEP]` and `token_type_ids` (0 up to the first
        [SEP], 1 after it), int64 [len(A) + len(B) + 3] each."""
        a, b = len(self.tokens_a), len(self.tokens_b)
        ids = np.concatenate([[cls_id], self.tokens_a, [sep_id], self.tokens_b, [sep_id]])
        types = np.repeat(np.array([0, 1], np.int64), [a + 2, b + 1])
        return ids.astype(np.int64), types


class _Draws:
    """The stream of one document: threefry words `bits_at(key, i, i + 1)` for i = 0, 1, ...

    A word depends on its position only, so fetching many at a time gives the same words as
    fetching them one by one, and at these sizes a fetch of hundreds costs about as much as a
    fetch of one (NumPy's per-call overhead, not arithmetic, dominates). `first` are words
    0, 1, ... computed beforehand (`make_pairs` computes them for many documents in one call).
    """

    def __init__(self, key: np.ndarray, first: np.ndarray | None = None):
        self.key = key
        self.block = np.zeros(0, np.uint32) if first is None else first    # words start, ...
        self.words: list[int] = self.block.tolist()     # the same as Python ints, for `word`
        self.start, self.pos = 0, 0             # the next word is block[pos], word start + pos

    def _fetch(self, n: int) -> None:
        """Fetch the words from the next one on, at least n of them."""
        at = self.start + self.pos
        self.block = threefry.bits_at(self.key, at, at + max(n, BLOCK))
        self.words, self.start, self.pos = self.block.tolist(), at, 0

    def word(self) -> int:
        if self.pos == len(self.words):
            self._fetch(1)
        self.pos += 1
        return self.words[self.pos - 1]

    def take(self, n: int) -> np.ndarray:
        """The next n words, uint32 [n]: what n calls of `word` would return, in order."""
        if self.pos + n > len(self.words):
            self._fetch(n)
        self.pos += n
        return self.block[self.pos - n:self.pos]

    def bit(self) -> int:
        """An exact fair bit: the top bit of a word."""
        return self.word() >> 31

    def below(self, n: int) -> int:
        """Uniform in `[0, n)`, exactly: words at or above the largest multiple of n are
        redrawn (rejection), so no residue is favoured."""
        limit = 2**32 - 2**32 % n
        while (w := self.word()) >= limit:
            pass
        return w % n

    def uniform(self) -> float:
        """A uniform in [0, 1) on the 2**-32 grid."""
        return self.word() * 2.0**-32


def make_pairs(documents, *, seed, epoch: int = 0, max_seq_len: int = 128,
               short_seq_prob: float = 0.1, google_compat: bool = False,
               indices=None) -> list[Pair]:
    """NSP pairs of a corpus, document by document.

    Args:
        documents: a list of documents; a document is a list of sentences, a sentence a list
            (or 1-d array) of non-negative token ids.
        seed: the run's seed (an int or key data, the rule of `mlm_ref.keys`).
        epoch: integer in `[0, 2**32)`; each epoch gives new pairs.
        max_seq_len: the length of `[CLS] A [SEP] B [SEP]` is at most this.
        short_seq_prob: per document, the probability of a shorter target length.
        google_compat: reproduce the published algorithm (labels about 58% random on real
            text; a one-document corpus accepted, its "random" B from the same document).
        indices: make the pairs of these documents only (default: all), e.g. a worker's share.

    Returns:
        `Pair`s, those of document `indices[0]` first, each document's in text order.

    Raises:
        ValueError: fewer than two non-empty documents (fewer than one with `google_compat`),
            bad parameters or ids. TypeError: arguments of the wrong type.
    """
    check_nsp_params(max_seq_len, short_seq_prob)
    docs = check_documents(documents)
    nonempty = [d for d, doc in enumerate(docs) if doc]
    if len(nonempty) < (1 if google_compat else 2):
        raise ValueError(f"NSP needs at least two non-empty documents (a random B must come "
                         f"from another document), got {len(nonempty)} of {len(docs)}")
    todo = np.arange(len(docs)) if indices is None else streams.check_indices(indices)
    if todo.size and int(todo.max()) >= len(docs):
        raise ValueError(f"indices must lie in [0, {len(docs)}), got {int(todo.max())}")
    keys = streams.example_keys(seed, epoch, todo, purpose="nsp")       # [n, 2]
    build = _google_document if google_compat else _document
    pairs = []
    for d, draws in zip(todo.tolist(), _streams(keys)):
        if docs[d]:
            pairs += build(docs, nonempty, d, draws, max_seq_len - 3, short_seq_prob)
    return pairs


def _streams(keys: np.ndarray):
    """A `_Draws` per key, in order; their first words computed `ROWS` keys per threefry call
    (one call per document would cost more than all the arithmetic)."""
    for lo in range(0, len(keys), ROWS):
        first = threefry.row_bits(keys[lo:lo + ROWS], FIRST)            # [rows, FIRST]
        for key, words in zip(keys[lo:lo + ROWS], first):
            yield _Draws(key, words)


def _target(draws: _Draws, max_tokens: int, short_seq_prob: float) -> int:
    """The document's target length: max_tokens, or uniform in [2, max_tokens]."""
    if draws.uniform() < short_seq_prob:
        return 2 + draws.below(max_tokens - 1)
    return max_tokens


def _chunk_end(doc, i: int, target: int) -> int:
    """The end of the chunk that starts at sentence i: sentences until `target` is reached."""
    length, j = 0, i
    while j < len(doc) and length < target:
        length += len(doc[j])
        j += 1
    return j


def _random_b(docs, other: int, draws: _Draws, target_b: int) -> np.ndarray:
    """Sentences of document `other` from a uniform start until `target_b` tokens."""
    doc = docs[other]
    parts, length = [], 0
    for sentence in doc[draws.below(len(doc)):]:
        parts.append(sentence)
        length += len(sentence)
        if length >= target_b:
            break
    return np.concatenate(parts)


def _truncate(a: np.ndarray, b: np.ndarray, max_tokens: int, draws: _Draws,
              tie_cuts_b: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cut the longer side (a tie: B for Google, a coin for ours) from the front or the back,
    by a fair coin, one token at a time, until `len(a) + len(b) <= max_tokens`.

    The rule is Google's `truncate_seq_pair`, a loop that cuts one token per round:

        while la + lb > max_tokens:
            side = A if la > lb else B if la < lb or tie_cuts_b else (A, B)[bit()]
            cut side at its front if bit() else at its back

    That loop costs a word and a Python round per token cut, and long pairs lose hundreds of
    tokens. But a front/back coin never changes a length, and which side is cut depends on the
    lengths alone except at a tie, after which the next cut evens them again: so the cuts come
    in two phases whose pattern of words is known in advance. We take each phase's words at
    once and only count, per side, the front coins (top bit 1). The words and their order are
    exactly the loop's, so the pairs (and every later draw of the document) are the same bit
    for bit (tests/test_nsp.py compares the two):

    1. *Unequal lengths*: the next `min(|la - lb|, excess)` cuts all hit the longer side, no side
       draw needed: one word each.
    2. *Equal lengths*, the `rest` of the excess: with Google's rule a tie cuts B, after which A
       is one longer and is cut: rounds of [coin for B, coin for A], a last lone B if `rest`
       is odd. With ours a tie draws the side s (top bit 0: A), then the other side is one
       longer and is cut: rounds of [side s, coin for s, coin for the other], the last round
       [s, coin for s] if `rest` is odd.
    """
    lengths = [len(a), len(b)]
    excess = lengths[0] + lengths[1] - max_tokens
    if excess <= 0:
        return a, b
    cuts, fronts = [0, 0], [0, 0]                           # per side: tokens cut, at the front
    longer = 0 if lengths[0] > lengths[1] else 1
    unequal = min(abs(lengths[0] - lengths[1]), excess)
    cuts[longer] += unequal
    fronts[longer] += int(np.count_nonzero(draws.take(unequal) >> 31))
    full, odd = divmod(excess - unequal, 2)                 # rounds of two tie cuts, a lone one
    if tie_cuts_b:
        coins = draws.take(2 * full + odd) >> 31            # B, A, B, A, ..., [B]
        cuts[1] += full + odd
        cuts[0] += full
        fronts[1] += int(np.count_nonzero(coins[0::2]))
        fronts[0] += int(np.count_nonzero(coins[1::2]))
    else:
        rounds = (draws.take(3 * full) >> 31).reshape(full, 3)      # [side s, s's, other's]
        a_front = np.where(rounds[:, 0] == 0, rounds[:, 1], rounds[:, 2])
        cuts[0] += full
        cuts[1] += full
        fronts[0] += int(np.count_nonzero(a_front))
        fronts[1] += int(np.count_nonzero(rounds[:, 1:])) - int(np.count_nonzero(a_front))
        if odd:
            side, front = (int(w) >> 31 for w in draws.take(2))
            cuts[side] += 1
            fronts[side] += front
    a_back, b_back = cuts[0] - fronts[0], cuts[1] - fronts[1]
    return a[fronts[0]:lengths[0] - a_back], b[fronts[1]:lengths[1] - b_back]


def _document(docs, nonempty, d: int, draws: _Draws, max_tokens: int, short_seq_prob: float):
    """Our pairs whose A comes from document d (see the module docstring)."""
    doc, pairs = docs[d], []
    if len(doc) < 2:           # no real next sentence anywhere: only a source of random B
        return pairs
    target = _target(draws, max_tokens, short_seq_prob)
    others = len(nonempty) - 1
    me = bisect.bisect_left(nonempty, d)                    # d's place among them
    i = 0
    while i < len(doc):
        label = draws.bit()                                 # decided before A is looked at
        start, end = i, _chunk_end(doc, i, target)
        if end - start == 1:                                # one sentence: no next inside
            if end < len(doc):
                end += 1                                    # a long sentence: add its successor
            else:
                start -= 1                                  # the last one: reach back one
        a_end = start + 1 + draws.below(end - start - 1)    # A = doc[start:a_end], >= 1 sentence
        a = np.concatenate(doc[start:a_end])
        if label == IS_NEXT:
            b = np.concatenate(doc[a_end:end])
            i = end
        else:
            r = draws.below(others)
            other = nonempty[r + (r >= me)]                 # uniform over the other documents
            b = _random_b(docs, other, draws, max(1, target - len(a)))
            i = max(a_end, i + 1)                           # the unused sentences go back
        pairs.append(Pair(*_truncate(a, b, max_tokens, draws, False), label))
    return pairs


def _google_document(docs, nonempty, d: int, draws: _Draws, max_tokens: int,
                     short_seq_prob: float):
    """The published algorithm's pairs for document d, behaviour for behaviour."""
    doc, pairs = docs[d], []
    target = _target(draws, max_tokens, short_seq_prob)
    i = 0
    while i < len(doc):
        end = _chunk_end(doc, i, target)
        k = end - i
        a_end = i + (1 + draws.below(k - 1) if k >= 2 else 1)
        a = np.concatenate(doc[i:a_end])
        if k == 1 or draws.bit():                           # a lone sentence: always "random"
            for _ in range(GOOGLE_TRIES):
                other = nonempty[draws.below(len(nonempty))]
                if other != d:
                    break
            b = _random_b(docs, other, draws, target - len(a))
            label, i = RANDOM_NEXT, a_end                   # the unused sentences go back
        else:
            b, label, i = np.concatenate(doc[a_end:end]), IS_NEXT, end
        pairs.append(Pair(*_truncate(a, b, max_tokens, draws, True), label))
    return pairs
