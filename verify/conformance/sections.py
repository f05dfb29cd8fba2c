"""Generated sections of docs/conformance.md, each between its own two markers, so that one
command can rewrite its section and keep the others (`conformance.wwm`, `conformance.audit`)."""

from __future__ import annotations

import os

__all__ = ["splice_between", "section_between"]


def splice_between(page: str, section: str, begin: str, end: str) -> str:
    """`page` with the part from `begin` to `end` replaced by `section` (appended when the
    page has no such part)."""
    if begin in page and end in page:
        head, rest = page.split(begin, 1)
        return head + section.rstrip("\n") + rest.split(end, 1)[1]
    return page.rstrip("\n") + "\n\n" + section


def section_between(path: str, begin: str, end: str) -> str | None:
    """The part of the page at `path` from `begin` to `end`, markers included, or None."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        page = f.read()
    if begin not in page or end not in page:
        return None
    return begin + page.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
