"""The NSP gate's checks on how B is drawn, read and cut (docs/nsp.md, "The gate").

Read through the corpus's numbering (`nsp_pairs.parse`), a pair tells which sentences its
segments touch. Segments are whole sentences before truncation, so the sentences a segment
touches lie inside what it held before the cut. From that, under the contract:

* **B is read only to the target less A's** (exact). The target is at most `max_seq_len - 3`,
  and B stops at the first sentence that reaches `target - len(A)` (IsNext: the chunk stops at
  the target; a chunk of one sentence takes one more). So B's touched sentences before its
  last hold fewer than `max(1, max_seq_len - 3 - A's touched sentences)` tokens.
* **cut only down to the limit** (exact): truncation removes one token at a time while the
  pair is too long, so a pair with a segment cut inside a sentence has exactly
  `max_seq_len - 3` tokens.
* **B reaches the target** (one per label, a bound): a pair shorter than `max_seq_len - 3`
  whose B stops before its document ends was read to a short target, which BERT draws with
  probability `short_seq_prob` = 0.1 per document (or chunk). A short-target document makes
  more pairs, so only each document's *opening pair* (A starts at the document's first token)
  is counted, once per epoch: there the share of such pairs is at most 0.1 in each label;
  one-sided exact binomial test at 0.1 (conservative: ours has 0.088 IsNext, 0.050 random
  next at 20,000 pairs).
* **random B's document uniform** over the other non-empty documents, whatever A's, not
  weighted by length nor drawn near A's: the non-empty documents fall into 8 near-equal groups
  by size (token count), and apart into 8 by corpus order; Pearson goodness of fit over the
  8 x 8 cells (A's group, B's group), where a random pair whose A lies in group g expects
  `(n_h - [g = h]) / (N - 1)` in cell (g, h). Two-sided: documents taken in turn fit too well.
* **random B's documents spread as independent draws**: how often each document served as
  random B has the multinomial's dispersion, two-sided: a deck dealt without replacement
  (every document used equally) is too even, a favoured few too uneven.
* **random B starts at a uniform sentence**: in `long-sentences` documents (every sentence
  longer than a pair, so B is exactly the sentence it started at), B's sentence is uniform
  over the document's 2-4 sentences: Pearson over the cells (sentences, place), two-sided.
* **random B's start independent of sentence length**: in the same documents, whose sentences
  are 1 to 4 times `max_seq_len + 5` long, a start that is uniform in place on average but
  favours long (or short) sentences, e.g. the sentence of a uniform *token*: the score test of
  a start weighted by `length ** theta` at `theta = 0`, `z = sum(x) / sqrt(sum(v))` with `x` the
  log-length of B's sentence less its document's mean log-length and `v` that document's
  variance of log-lengths (each start uniform and independent under the contract, so `z` is
  a sum of independent centred terms: normal), two-sided. MDE: `theta` (1 = by token).
* **cuts front vs back, per side and label**: the cut tokens of a `long-sentences` segment
  (original length known) are front ~ Binomial(cut, 1/2), for A and B and each label apart.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .nsp_checks import coin_check
from .nsp_corpus import BASE, CLASSES, Corpus
from .nsp_pairs import DocTable, Parsed
from ..engine.primitives import (Check, dispersion_check, lambda50, pearson,
                                 upper_binomial_check)

__all__ = ["draw_checks", "SHORT_SEQ_PROB", "GROUPS", "CUT_CHECKS", "START_BY_LENGTH",
           "blockwise_pearson"]

SHORT_SEQ_PROB = 0.1       # BERT's short-target probability: the bound of "B reaches the target"
GROUPS = 8                 # document groups of the "random B's document" checks
LABELS = ("IsNext", "random next")
START_BY_LENGTH = "random B's start independent of sentence length"
CUT_CHECKS = tuple(f"cuts front vs back: {side}, {label}" for side in ("A", "B")
                   for label in LABELS)


class _Where:
    """Corpus facts per position, as corpus positions (not ids)."""

    def __init__(self, corpus: Corpus):
        self.start = corpus.sentence_start.astype(np.int64) - BASE
        self.end = corpus.sentence_end.astype(np.int64) - BASE
        self.doc = corpus.doc.astype(np.int64)
        self.long = np.asarray(corpus.doc_class) == CLASSES.index("long-sentences")


def draw_checks(corpus: Corpus, p: Parsed, subject: str, max_seq_len: int,
                docs: DocTable) -> list[Check]:
    """Every check of this module on the parsed pairs `p` (see the module docstring)."""
    w, limit = _Where(corpus), max_seq_len - 3
    checks = _exact(w, p, subject, limit)
    checks += _reaches_target(w, p, subject, limit, docs)
    random = (p.label == 1) & (w.doc[p.a0] != w.doc[p.b0])
    a_doc, b_doc = w.doc[p.a0[random]], w.doc[p.b0[random]]
    checks += _document_uniform(a_doc, b_doc, docs, subject)
    checks.append(_document_spread(a_doc, b_doc, docs, subject))
    checks.append(_start_uniform(w, p, random, docs, subject))
    checks.append(_start_by_length(w, p, random, subject))
    return checks + _cuts(w, p, subject)


def _first(mask: np.ndarray, p: Parsed, text) -> str:
    """The first violation in words: `text(i)` for the first flagged row i."""
    rows = np.flatnonzero(mask)
    return f"pair {int(p.index[rows[0]])}: {text(int(rows[0]))}" if rows.size else ""


def _exact(w: _Where, p: Parsed, subject: str, limit: int) -> list[Check]:
    total = p.a1 - p.a0 + p.b1 - p.b0 + 2
    a_sentences = w.end[p.a1] - w.start[p.a0]              # A's touched sentences, tokens
    b_before_last = w.start[p.b1] - w.start[p.b0]          # B's touched sentences but the last
    allowed = np.maximum(1, limit - a_sentences)
    over = b_before_last >= allowed
    cut = (w.start[p.a0] != p.a0) | (w.end[p.a1] != p.a1 + 1) | \
        (w.start[p.b0] != p.b0) | (w.end[p.b1] != p.b1 + 1)
    short_cut = cut & (total < limit)
    return [
        Check.exact("B read only to the target less A's", subject, int(over.sum()), _first(
            over, p, lambda i: f"B's sentences before its last hold {b_before_last[i]} tokens, "
                               f"expected fewer than {allowed[i]} (max_seq_len - 3 = {limit} "
                               f"less A's sentences, {a_sentences[i]} tokens)")),
        Check.exact("cut only down to the limit", subject, int(short_cut.sum()), _first(
            short_cut, p, lambda i: f"a segment cut inside a sentence, but len(A) + len(B) = "
                                    f"{total[i]}, expected {limit} (max_seq_len - 3)"))]


def _reaches_target(w: _Where, p: Parsed, subject: str, limit: int,
                    docs: DocTable) -> list[Check]:
    total = p.a1 - p.a0 + p.b1 - p.b0 + 2
    short = (total < limit) & (p.b1 + 1 != docs.end[w.doc[p.b1]])
    # one pair per document and epoch, its opening pair: a short target is drawn per document
    # (or chunk) with probability 0.1, but a short-target document makes more pairs
    opening = p.a0 == docs.first[w.doc[p.a0]]
    out = []
    for label, name in enumerate(LABELS):
        title = f"B reaches the target ({name})"
        mine = (p.label == label) & opening
        n, k = int(mine.sum()), int(short[mine].sum())
        if not n:
            out.append(Check.not_applicable(title, subject))
            continue
        c = upper_binomial_check(title, subject, k, n, SHORT_SEQ_PROB,
                                 "share of short pairs above 0.1")
        c.detail = (f"{k} of {n} opening pairs ({k / n:.4f}) shorter than max_seq_len - 3 "
                    f"with B stopping before its document ends; expected at most "
                    f"{SHORT_SEQ_PROB} (short targets)")
        out.append(c)
    return out


def _groups(order: np.ndarray) -> np.ndarray:
    """Group (0..GROUPS-1) of each document listed in `order`: GROUPS near-equal runs."""
    group = np.empty(order.size, np.int64)
    group[order] = np.arange(order.size) * GROUPS // max(1, order.size)
    return group


def _document_uniform(a_doc, b_doc, docs: DocTable, subject: str) -> list[Check]:
    """B's document given A's: the cells (A's group, B's group) of 8 x 8 document groups."""
    nonempty = docs.nonempty
    where = np.full(docs.tokens.size, -1, np.int64)
    where[nonempty] = np.arange(nonempty.size)
    n_other = nonempty.size - 1
    out = []
    for name, key in (("random B's document uniform over document sizes",
                       np.lexsort((nonempty, docs.tokens[nonempty]))),
                      ("random B's document uniform over the corpus order",
                       np.arange(nonempty.size))):
        if a_doc.size == 0 or n_other < 1 or (where[b_doc] < 0).any() or \
                (where[a_doc] < 0).any():
            out.append(Check.not_applicable(name, subject))
            continue
        group = _groups(key)
        size = np.bincount(group, minlength=GROUPS).astype(np.float64)
        ga, gb = group[where[a_doc]], group[where[b_doc]]
        observed = np.bincount(ga * GROUPS + gb, minlength=GROUPS ** 2).astype(np.float64)
        n_a = np.bincount(ga, minlength=GROUPS).astype(np.float64)
        expected = (np.outer(n_a, size) - np.diag(n_a)).ravel() / n_other
        stat, df = blockwise_pearson(observed, expected, np.repeat(np.arange(GROUPS), GROUPS))
        out.append(_gof(name, subject, stat, df, a_doc.size, observed.reshape(GROUPS, -1).sum(0),
                        expected.reshape(GROUPS, -1).sum(0),
                        f"(A's group, B's group) over {GROUPS} x {GROUPS} groups of documents "
                        f"by {name.rsplit('over ', 1)[1]}; B's groups"))
    return out


def _document_spread(a_doc, b_doc, docs: DocTable, subject: str) -> Check:
    """How often each non-empty document served as random B: Pearson's sum over documents of
    (count - E)^2 / E, E = (random pairs whose A is not that document) / (N - 1), has the
    multinomial's mean K - 1 and variance 2(K - 1) + (sum 1/p - K^2 - 2K + 2) / n (K = N
    documents, p = E / n); two-sided, moment-matched chi-square (`dispersion_check`)."""
    name = "random B's documents spread as independent draws"
    n, k = a_doc.size, docs.nonempty.size
    if n == 0 or k < 2:
        return Check.not_applicable(name, subject)
    used = np.bincount(b_doc, minlength=docs.tokens.size)[docs.nonempty].astype(np.float64)
    own = np.bincount(a_doc, minlength=docs.tokens.size)[docs.nonempty]
    expected = (n - own) / (k - 1)
    d = float(((used - expected) ** 2 / expected).sum())
    var = 2 * (k - 1) + (float((n / expected).sum()) - k * k - 2 * k + 2) / n
    c = dispersion_check(name, subject, d, k - 1, var, "documents (their use as random B)")
    return c or Check.not_applicable(name, subject)


def blockwise_pearson(observed, expected, block) -> tuple[float, int]:
    """Pearson's statistic and degrees of freedom summed over blocks of cells whose totals
    are fixed (a block's cells - 1 each: the rows of a table with known column shares, the
    documents of one size); sparse cells are merged within their block (`pearson`), so a
    block expecting too few draws to compare its cells adds nothing. One Pearson over all
    the cells would count a degree of freedom per block too many (a chi-square of 56 degrees
    tested as one of 63: twenty times the stated false-alarm share at the gate's levels)."""
    stat, df = 0.0, 0
    for b in np.unique(block):
        mine = block == b
        s, d = pearson(observed[mine], expected[mine])
        stat, df = stat + s, df + d
    return stat, df


def _gof(name, subject, stat, df, n, observed, expected, what) -> Check:
    """Pearson goodness of fit, two-sided: counts closer to their expectation than
    independent draws allow (documents or starts taken in turn) fail as surely as counts too
    far. MDE: Cohen's w at 50% power on the upper side."""
    if df < 1:
        return Check.not_applicable(name, subject)
    fmt = lambda v: ", ".join(f"{x:.0f}" for x in v)  # noqa: E731

    def bounds(a):
        return float(stats.chi2.ppf(a / 2, df)), float(stats.chi2.isf(a / 2, df))

    def mde(a):
        return math.sqrt(lambda50(df, bounds(a)[1]) / n)
    tail = min(stats.chi2.cdf(stat, df), stats.chi2.sf(stat, df))
    return Check.statistical(name, subject, stat, bounds, float(min(1.0, 2 * tail)), mde,
                             "Cohen's w", n=int(n), detail=f"{what}: expected "
                             f"({fmt(expected)}), observed ({fmt(observed)})")


def _start_uniform(w: _Where, p: Parsed, random, docs: DocTable, subject: str) -> Check:
    """B's sentence in `long-sentences` documents: uniform over (sentences, place) cells."""
    name = "random B starts at a uniform sentence"
    b_doc = w.doc[p.b0]
    use = random & w.long[b_doc] & (w.start[p.b0] == w.start[p.b1])
    s = docs.sentences[b_doc[use]]
    j = docs.ordinal[p.b0[use]]
    top = int(docs.sentences[w.long].max()) if w.long.any() else 0
    if not s.size or top < 2:
        return Check.not_applicable(name, subject)
    offset = np.concatenate([[0], np.cumsum(np.arange(1, top + 1))])   # cells of size S at S
    observed = np.bincount(offset[s - 1] + j, minlength=int(offset[-1])).astype(np.float64)
    expected = np.zeros_like(observed)
    for size in np.unique(s):
        count = (s == size).sum()
        expected[offset[size - 1]:offset[size - 1] + size] = count / size
    keep = expected > 0
    block = np.repeat(np.arange(top), np.arange(1, top + 1))          # the cells' size - 1
    stat, df = blockwise_pearson(observed[keep], expected[keep], block[keep])
    stat = math.inf if observed[~keep].sum() else stat
    return _gof(name, subject, stat, df, s.size, observed[keep], expected[keep],
                "cells (sentences of B's document, B's sentence), B's documents with 2, 3, 4 "
                "sentences")


def _start_by_length(w: _Where, p: Parsed, random, subject: str) -> Check:
    """B's sentence in `long-sentences` documents against its document's sentence lengths:
    the score test of a start weighted by `length ** theta` at `theta = 0` (see the module
    docstring). Each term is centred within B's own document, so a document's sentences'
    places and number do not enter: only which of them, by length, was chosen."""
    b_doc = w.doc[p.b0]
    use = random & w.long[b_doc] & (w.start[p.b0] == w.start[p.b1])
    starts = np.flatnonzero(w.start == np.arange(w.start.size))      # every sentence's start
    doc = w.doc[starts]
    log_len = np.log((w.end[starts] - starts).astype(np.float64))
    count = np.bincount(doc, minlength=w.long.size).astype(np.float64)
    mean = np.bincount(doc, log_len, w.long.size) / np.maximum(count, 1)
    var = np.bincount(doc, (log_len - mean[doc]) ** 2, w.long.size) / np.maximum(count, 1)
    chosen = b_doc[use]
    x = np.log((w.end[p.b0[use]] - w.start[p.b0[use]]).astype(np.float64)) - mean[chosen]
    total = float(var[chosen].sum())
    if total <= 0:
        return Check.not_applicable(START_BY_LENGTH, subject)
    z = float(x.sum()) / math.sqrt(total)

    def bounds(a):
        c = float(stats.norm.isf(a / 2))
        return -c, c
    shift = float(x.mean()) if x.size else 0.0
    return Check.statistical(
        START_BY_LENGTH, subject, z, bounds, float(min(1.0, 2 * stats.norm.sf(abs(z)))),
        lambda a: bounds(a)[1] / math.sqrt(total), "theta of a start weighted by "
        "length ** theta (1: by token)", n=int(x.size),
        detail=f"{x.size} random B in long-sentences documents: B's sentence is on average "
               f"{shift:+.4f} in log-length from its document's mean, expected 0 (standard "
               f"error {math.sqrt(total) / max(1, x.size):.4f}; above 0: long sentences "
               f"favoured, as by a start at a uniform token)")


def _cuts(w: _Where, p: Parsed, subject: str) -> list[Check]:
    """Front share of the cut tokens of `long-sentences` one-sentence segments, per side and
    label: a fair coin per cut token."""
    out = []
    for side, (f, la) in zip("AB", ((p.a0, p.a1), (p.b0, p.b1))):
        known = w.long[w.doc[f]] & (w.start[f] == w.start[la])
        front = f - w.start[f]
        cut = w.end[f] - w.start[f] - (la - f + 1)
        for label, name in enumerate(LABELS):
            title = f"cuts front vs back: {side}, {name}"
            use = known & (p.label == label)
            k, m = int(front[use].sum()), int(cut[use].sum())
            out.append(coin_check(title, subject, k, m, "front share") if m else
                       Check.not_applicable(title, subject))
    return out
