"""The NSP gate's corpus: synthetic documents whose every token says where it comes from.

Token id `BASE + i` is the `i`-th token of the whole corpus (documents and sentences in order),
so a pair's tokens alone tell the gate, for each token, its document, its sentence and its place
in that sentence: whether a segment is contiguous text, whether B follows A, whether a segment
was cut at its front or its back.

The documents mimic the shapes that trip NSP generators up (sizes relative to `max_seq_len`):

| class | share | sentences | sentence length |
|---|---|---|---|
| `empty` | 8% | 0 | - |
| `one` | 12% | 1 | text-like |
| `short` | 20% | 2-3 | text-like |
| `medium` | 40% | 4-15 | text-like |
| `long` | 12% | 16-60 | text-like |
| `long-sentences` | 8% | 2-4 | `max_seq_len + 5 .. 4 (max_seq_len + 5)`, log-uniform |

Text-like sentence lengths are log-normal (median 15 tokens, 1 to 100). Every sentence of a
`long-sentences` document is longer than a whole pair, so a generator built from whole
sentences makes each of its segments from exactly one sentence, which is then always cut: that
is where the gate measures truncation, knowing how long the segment was before the cut, and
where a random B's starting sentence is known exactly: their lengths vary fourfold, so a start
that depends on the sentence's length (a uniform *token* rather than a uniform sentence) shows.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["BASE", "CLASSES", "Corpus", "synthetic_corpus", "one_document_corpus"]

# ids below BASE are left for special tokens; the corpus never uses them
BASE = 5
CLASSES = ("empty", "one", "short", "medium", "long", "long-sentences")
SHARES = (0.08, 0.12, 0.20, 0.40, 0.12, 0.08)
SENTENCES = {"empty": (0, 0), "one": (1, 1), "short": (2, 3), "medium": (4, 15),
             "long": (16, 60), "long-sentences": (2, 4)}


@dataclasses.dataclass
class Corpus:
    """Documents (lists of sentences of ids) and, per token `BASE + i`, where it lies.

    Attributes:
        documents: the corpus, as the generator gets it (lists of lists of Python ints).
        doc_class: int [n_docs], an index into `CLASSES`.
        doc: int [n_tokens], the token's document.
        sentence_start, sentence_end: int [n_tokens], the ids that start the token's sentence
            and follow its end (`end - start` is the sentence's length).
    """

    documents: list
    doc_class: np.ndarray
    doc: np.ndarray
    sentence_start: np.ndarray
    sentence_end: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.doc.size)


LONG_SPREAD = 4      # longest / shortest sentence of the long-sentences documents


def _sentence_lengths(rng: np.random.Generator, n: int, long: bool, max_seq_len: int):
    if long:
        # one integer draw, as ever, mapped to a log-uniform length in [lo, 4 lo]: the
        # other documents' draws stay those of earlier versions of the corpus
        lo, hi = max_seq_len + 5, 2 * max_seq_len + 11
        u = (rng.integers(lo, hi, n) - lo + 0.5) / (hi - lo)
        return np.floor(lo * LONG_SPREAD ** u).astype(np.int64)
    return np.clip(np.exp(rng.normal(np.log(15), 0.6, n)).astype(np.int64), 1, 100)


def synthetic_corpus(n_docs: int, *, seed: int, max_seq_len: int = 128) -> Corpus:
    """`n_docs` documents of the classes above (at least one of each), drawn from `seed`."""
    rng = np.random.default_rng([seed, 0x4E5350])      # "NSP": a stream of its own
    classes = rng.choice(len(CLASSES), n_docs, p=SHARES)
    classes[:len(CLASSES)] = np.arange(len(CLASSES))   # every class present
    return _build([_lengths(rng, CLASSES[c], max_seq_len) for c in classes], classes)


def one_document_corpus(*, seed: int, max_seq_len: int = 128) -> Corpus:
    """One medium document between two empty ones: a generator must refuse it."""
    rng = np.random.default_rng([seed, 0x4E5351])
    lengths = [[], _sentence_lengths(rng, 12, False, max_seq_len), []]
    return _build(lengths, np.array([0, 3, 0]))


def _lengths(rng, name: str, max_seq_len: int) -> np.ndarray:
    lo, hi = SENTENCES[name]
    n = int(rng.integers(lo, hi + 1))
    return _sentence_lengths(rng, n, name == "long-sentences", max_seq_len)


def _build(lengths: list, classes: np.ndarray) -> Corpus:
    """Number the tokens of documents given by their sentence lengths."""
    flat = np.concatenate([np.asarray(x, np.int64) for x in lengths] + [np.zeros(0, np.int64)])
    ends = np.cumsum(flat)                                       # [n_sentences]
    starts = ends - flat
    per_doc = [len(x) for x in lengths]
    sentence_doc = np.repeat(np.arange(len(lengths)), per_doc)   # [n_sentences]
    documents, k = [], 0
    first, end = (starts + BASE).tolist(), (ends + BASE).tolist()   # Python ints: fast ranges
    for n in per_doc:
        documents.append([list(range(s, e)) for s, e in zip(first[k:k + n], end[k:k + n])])
        k += n
    return Corpus(documents, np.asarray(classes), np.repeat(sentence_doc, flat),
                  np.repeat(starts, flat) + BASE, np.repeat(ends, flat) + BASE)
