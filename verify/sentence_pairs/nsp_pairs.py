"""NSP pairs read back through the synthetic corpus, and the optional assembled form.

A generator's pair is `(tokens_a, tokens_b, is_random_next)` or a dict. A dict may also carry
the assembled input a model is fed (docs/nsp.md):

* `input_ids`: `[CLS] A [SEP] B [SEP]`, optionally followed by padding (one id repeated);
* `token_type_ids`: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 on padding;
* `attention_mask` (optional): 1 on `[CLS] A [SEP] B [SEP]`, 0 on padding;

and then `tokens_a`/`tokens_b` may be left out (they are read from the assembled form by its
token types); the label may be called `next_sentence_label` (Hugging Face's name). The special
ids are the generator's own: the gate only asks that `[CLS]`, `[SEP]` and the padding id be
the same in every pair.

`read_pairs` reads every pair through the corpus (its segments' positions, document, cuts),
4,096 pairs per set of array operations; `parse` turns the well-formed, contiguous pairs into
arrays of corpus positions (token `BASE + i` is position `i`) for the checks of `nsp_draws`
and `nsp_epochs`; malformed pairs are left to the exact checks of `nsp_checks`, which name
them.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .nsp_corpus import BASE, Corpus
from ..engine.primitives import Check

__all__ = ["unpack", "Segment", "read_pairs", "Parsed", "parse", "DocTable", "assembled_checks"]

CHUNK = 4096        # pairs whose segments are read in one set of array operations
ASSEMBLED = ("assembled input is [CLS] A [SEP] B [SEP] (+ padding)",
             "token_type_ids 0 through the first [SEP], 1 after")


def _label(pair: dict):
    return pair["is_random_next"] if "is_random_next" in pair else pair["next_sentence_label"]


def _split_assembled(pair: dict):
    """`(tokens_a, tokens_b)` read from `input_ids` by `token_type_ids`."""
    ids, types = np.asarray(pair["input_ids"]), np.asarray(pair["token_type_ids"])
    ones = np.flatnonzero(types == 1)
    if ids.ndim != 1 or ids.shape != types.shape or ones.size < 2:
        raise ValueError("input_ids and token_type_ids of one shape with a B segment")
    return ids[1:int(ones[0]) - 1], ids[int(ones[0]):int(ones[-1])]


def unpack(pair):
    """`(tokens_a, tokens_b, label)` of a tuple or a dict (assembled form included).

    Raises:
        TypeError, ValueError, KeyError: not a pair in either form.
    """
    if isinstance(pair, dict):
        if "tokens_a" in pair or "tokens_b" in pair:
            return pair["tokens_a"], pair["tokens_b"], _label(pair)
        return (*_split_assembled(pair), _label(pair))
    a, b, label = pair
    return a, b, label


@dataclasses.dataclass
class DocTable:
    """Per document of the corpus: first position, end position, sentences, tokens; per
    position: its sentence's place in its document."""

    first: np.ndarray         # int [docs]
    end: np.ndarray           # int [docs], one past the last position
    sentences: np.ndarray     # int [docs]
    tokens: np.ndarray        # int [docs]
    ordinal: np.ndarray       # int [positions]: the sentence's place in its document
    nonempty: np.ndarray      # int [k]: the non-empty documents

    @classmethod
    def of(cls, corpus: Corpus) -> "DocTable":
        sentences = np.array([len(d) for d in corpus.documents], np.int64)
        lengths = [np.array([len(s) for s in d], np.int64) for d in corpus.documents]
        tokens = np.array([int(x.sum()) for x in lengths], np.int64)
        end = np.cumsum(tokens)
        ordinal = np.concatenate([np.repeat(np.arange(len(x)), x) for x in lengths] +
                                 [np.zeros(0, np.int64)])
        return cls(end - tokens, end, sentences, tokens, ordinal, np.flatnonzero(tokens > 0))


@dataclasses.dataclass
class Parsed:
    """The well-formed pairs whose segments are each contiguous text of one document, as corpus
    positions: `a0`, `a1` (A's first and last), `b0`, `b1`, `label` (0/1), `index` (the
    pair's place in the list given)."""

    a0: np.ndarray
    a1: np.ndarray
    b0: np.ndarray
    b1: np.ndarray
    label: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return int(self.label.size)

    def rows(self, lo: int, hi: int) -> "Parsed":
        """The pairs that were `lo` to `hi - 1` in the list given, renumbered from 0."""
        keep = (self.index >= lo) & (self.index < hi)
        return Parsed(self.a0[keep], self.a1[keep], self.b0[keep], self.b1[keep],
                      self.label[keep], self.index[keep] - lo)


class Segment(NamedTuple):
    """A segment read through the corpus: corpus positions `first`, `last`; `length`;
    `contiguous` (consecutive text of one document); `first`'s `doc`; `cut_front`, `cut_back`
    (starts, ends inside a sentence); `one_sentence` (lies inside one sentence)."""

    first: int
    last: int
    length: int
    contiguous: bool
    doc: int
    cut_front: bool
    cut_back: bool
    one_sentence: bool


def _ids(corpus: Corpus, tokens):
    """`tokens` as int64 ids if 1-d, non-empty and integer (ids of another integer dtype
    checked here to lie in the corpus: a uint64 past 2**63 must not wrap into it), else None.

    Raises:
        What `np.asarray` raises (a ragged list): the pair is not well-formed.
    """
    ids = np.asarray(tokens)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        return None
    if ids.dtype != np.int64:
        if ids.min() < BASE or ids.max() >= BASE + corpus.n_tokens:
            return None
        ids = ids.astype(np.int64)
    return ids


def _segments(corpus: Corpus, ids: list) -> list:
    """`Segment`s of `_ids`'s results (None where a segment is not ids of the corpus), all
    read in a few array operations rather than a dozen per segment."""
    good = [x for x in ids if x is not None]
    if not good:
        return [None] * len(ids)
    sizes = np.array([x.size for x in good], np.int64)
    flat = np.concatenate(good)
    starts = np.cumsum(sizes) - sizes
    ends = starts + sizes                                   # one past each segment's last id
    inside = ((np.minimum.reduceat(flat, starts) >= BASE)
              & (np.maximum.reduceat(flat, starts) < BASE + corpus.n_tokens))
    pos = np.clip(flat, BASE, BASE + corpus.n_tokens - 1) - BASE
    broken = np.diff(pos) != 1
    broken[ends[:-1] - 1] = False                           # between two segments: no step
    owner = np.repeat(np.arange(len(good)), sizes)[:-1]     # the segment of each step
    first, last = pos[starts], pos[ends - 1]
    contiguous = (np.bincount(owner[broken], minlength=len(good)) == 0) & \
        (corpus.doc[first] == corpus.doc[last])
    start, end = corpus.sentence_start, corpus.sentence_end
    columns = (first, last, sizes, contiguous, corpus.doc[first],
               start[first] != first + BASE, end[last] != last + BASE + 1,
               start[first] == start[last])
    rows = iter([Segment(*row) if ok else None
                 for ok, *row in zip(inside.tolist(), *(c.tolist() for c in columns))])
    return [None if x is None else next(rows) for x in ids]


def read_pairs(corpus: Corpus, pairs: list) -> list:
    """Each pair read through the corpus: `(A's Segment, B's Segment, label)`, a Segment None
    where it is not ids of the corpus, the label None where it is not 0/1; or, where the pair
    cannot be unpacked, the exception (a `TypeError`, `ValueError`, `KeyError`, `IndexError`).
    """
    read = []
    for lo in range(0, len(pairs), CHUNK):                  # memory: CHUNK pairs' ids at once
        read += _read_chunk(corpus, pairs[lo:lo + CHUNK])
    return read


def _read_chunk(corpus: Corpus, pairs: list) -> list:
    """`read_pairs` of a few pairs: unpacked one by one, their segments read together."""
    read, ids = [], []
    for pair in pairs:
        try:
            a, b, label = unpack(pair)
            a, b = _ids(corpus, a), _ids(corpus, b)
            label = None if isinstance(label, float) or label not in (0, 1) else int(label)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            read.append(e)
            continue
        read.append(label)
        ids += [a, b]
    segments = iter(_segments(corpus, ids))
    return [x if isinstance(x, Exception) else (next(segments), next(segments), x)
            for x in read]


def parse(corpus: Corpus, pairs: list, *, read: list | None = None) -> Parsed:
    """The pairs that the statistics can read (others fail an exact check of `nsp_checks`);
    `read`: `read_pairs(corpus, pairs)`, where the caller has it already."""
    rows = []
    for k, x in enumerate(read_pairs(corpus, pairs) if read is None else read):
        if isinstance(x, tuple) and None not in x and x[0].contiguous and x[1].contiguous:
            rows.append((x[0].first, x[0].last, x[1].first, x[1].last, x[2], k))
    cols = np.array(rows, np.int64).reshape(-1, 6).T
    return Parsed(*cols)


def assembled_checks(pairs: list, subject: str) -> list[Check]:
    """The assembled form, exactly, where a pair carries `input_ids` (not applicable when
    none does): `[CLS] A [SEP] B [SEP]` with the same special ids in every pair, then padding
    of one id; token types 0 through the first [SEP], 1 after, 0 on padding; an
    `attention_mask`, where given, 1 exactly on the real tokens."""
    seen, specials = 0, {}
    bad = [[0, ""], [0, ""]]
    for k, pair in enumerate(pairs):
        if not (isinstance(pair, dict) and "input_ids" in pair):
            continue
        seen += 1
        try:
            a, b, _ = unpack(pair)
            why = _assembled_problems(pair, len(np.asarray(a)), len(np.asarray(b)),
                                      np.asarray(a), np.asarray(b), specials)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            why = (f"not an assembled pair: {e}", "")
        for slot, text in zip(bad, why):
            if text:
                slot[0] += 1
                slot[1] = slot[1] or f"pair {k}: {text}"
    if not seen:
        return [Check.not_applicable(n, subject, "no pair carries input_ids", kind="exact")
                for n in ASSEMBLED]
    return [Check.exact(n, subject, v, d) for n, (v, d) in zip(ASSEMBLED, bad)]


def _assembled_problems(pair: dict, la: int, lb: int, a, b, specials: dict):
    """(input_ids problem, token types problem), '' where none."""
    ids = np.asarray(pair["input_ids"])
    types = np.asarray(pair["token_type_ids"])
    n = la + lb + 3
    if ids.ndim != 1 or ids.size < n:
        return f"input_ids of shape {ids.shape}, expected at least {n} ids for " \
               f"len(A) = {la}, len(B) = {lb}", ""
    got = {"[CLS]": int(ids[0]), "[SEP]": int(ids[la + 1])}
    if ids.size > n:
        got["padding"] = int(ids[n])
    problems = []
    if int(ids[n - 1]) != got["[SEP]"]:
        problems.append(f"the last [SEP] is {int(ids[n - 1])}, the first {got['[SEP]']}")
    for name, value in got.items():
        if specials.setdefault(name, value) != value:
            problems.append(f"{name} is {value} here, {specials[name]} in an earlier pair")
    if not (np.array_equal(ids[1:la + 1], a) and np.array_equal(ids[la + 2:n - 1], b)):
        problems.append("the ids between [CLS], [SEP] and [SEP] are not tokens_a, tokens_b")
    if ids.size > n and np.any(ids[n:] != got["padding"]):
        problems.append("the padding is not one id repeated")
    expected = np.zeros(ids.size, np.int64)
    expected[la + 2:n] = 1
    mask = pair.get("attention_mask")
    if mask is not None and not np.array_equal(np.asarray(mask), (np.arange(ids.size) < n)):
        problems.append("attention_mask is not 1 exactly on [CLS] A [SEP] B [SEP]")
    type_problem = "" if types.shape == ids.shape and np.array_equal(types, expected) else \
        f"token_type_ids {types.tolist()[:n + 2]}..., expected {la + 2} zeros, {lb + 1} ones" \
        f"{', then zeros' if ids.size > n else ''}"
    return "; ".join(problems), type_problem
