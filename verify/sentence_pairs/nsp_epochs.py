"""The NSP gate's epoch comparison: pairs are redrawn in every epoch, independently.

The gate collects epochs 0 and 1 of the same corpus (always both, even when fewer pairs are
checked) and compares them where the contract fixes the law of a coincidence:

* **labels redrawn each epoch**: a document's *opening pair* (the first pair whose A starts at
  the document's first token) has a label that is a fair coin given everything about A; with
  epochs independent, its labels in epochs 0 and 1 agree with probability exactly 1/2. One
  opening pair per document, so the agreements are independent: Binomial(n, 1/2), exact
  two-sided tails (always agreeing is a repeat; always disagreeing is a flip, just as wrong).
* **random B redrawn each epoch**: where both epochs have a pair whose A starts at the same
  token and both are random next, B's document is uniform over the N - 1 other non-empty
  documents in each, independently: the two agree with probability 1/(N - 1), so the number
  of agreements is Binomial(n, 1/(N - 1)) (the matches depend on where A starts, never on
  B's document). Exact two-sided tails; a generator that keeps each document's random partner
  across epochs agrees nearly always.
* **labels independent of nearby documents in the other epoch**: the opening label of
  document d in epoch 1 against that of d + s in epoch 0, for s = +-1..+-8: each agreement
  count ~ Binomial(n_s, 1/2); the largest of the 16 two-sided scores, Bonferroni over them
  (streams seeded `seed + epoch + d` make epoch 1 replay epoch 0 one document over).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from .nsp_checks import coin_check
from .nsp_corpus import Corpus
from .nsp_pairs import DocTable, Parsed
from ..engine.primitives import Check, binomial_score

__all__ = ["epoch_checks", "EPOCH_CHECKS", "binomial_check"]

EPOCH_CHECKS = ("labels redrawn each epoch", "random B redrawn each epoch",
                "labels independent of nearby documents in the other epoch")
SHIFTS = tuple(d for d in range(-8, 9) if d)    # document d in epoch 1 vs d + shift in epoch 0


def binomial_check(name: str, subject: str, k: int, n: int, p: float, unit: str,
                   detail: str) -> Check:
    """Two-sided exact binomial test of `k` of `n` against `p`: the statistic is the normal
    score of the exact tail on `k`'s side. MDE: the share above `p` at which the count's median
    reaches the upper critical count (50% power)."""
    z = binomial_score(k, n, p)
    tail = min(stats.binom.sf(k - 1, n, p), stats.binom.cdf(k, n, p))

    def bounds(a):
        c = float(special.ndtri(1 - a / 2))
        return -c, c

    def mde(a):
        critical = stats.binom.isf(a / 2, n, p) + 1           # smallest count rejected above
        return float(critical / n - p)
    return Check.statistical(name, subject, z, bounds, float(min(1.0, 2 * tail)), mde,
                             unit, n=n, detail=detail)


def _first_by(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys and the row of each one's first occurrence."""
    keys, rows = np.unique(key, return_index=True)
    return keys, rows


def epoch_checks(corpus: Corpus, e0: Parsed, e1: Parsed, subject: str,
                 docs: DocTable) -> list[Check]:
    """The checks above on the parsed pairs of epochs 0 and 1 (not applicable without both)."""
    if not len(e0) or not len(e1):
        return [Check.not_applicable(n, subject, "needs pairs from epochs 0 and 1")
                for n in EPOCH_CHECKS]
    doc = corpus.doc.astype(np.int64)
    opening = [_opening(e, doc, docs) for e in (e0, e1)]
    return [_labels(opening, subject), _partners(e0, e1, doc, docs, subject),
            _nearby(opening, subject)]


def _opening(e: Parsed, doc, docs: DocTable) -> dict:
    """document -> the label of its opening pair (the first whose A starts at its first
    token)."""
    opens = e.a0 == docs.first[doc[e.a0]]
    keys, rows = _first_by(doc[e.a0[opens]])
    return dict(zip(keys.tolist(), e.label[opens][rows].tolist()))


def _nearby(opening, subject: str) -> Check:
    """Opening labels of document d in epoch 1 and d + s in epoch 0, for each shift s in
    SHIFTS: each agreement count ~ Binomial(n_s, 1/2); the largest |score| of the 16, with
    Bonferroni over them. A generator seeding document d of epoch e with `seed + e + d`
    replays document d + 1's draws in the next epoch and agrees at shift 1."""
    name = EPOCH_CHECKS[2]
    scores = []
    for shift in SHIFTS:
        both = [d for d in opening[1] if d + shift in opening[0]]
        k = sum(opening[1][d] == opening[0][d + shift] for d in both)
        if both:
            scores.append((abs(binomial_score(k, len(both), 0.5)), shift, k, len(both)))
    if len(scores) < len(SHIFTS):
        return Check.not_applicable(name, subject, "too few documents with opening pairs")
    z, shift, k, n = max(scores)
    m = 2 * len(SHIFTS)

    def bounds(a):
        return -math.inf, float(special.ndtri(1 - a / m))
    return Check.statistical(
        name, subject, z, bounds, float(min(1.0, m * stats.norm.sf(z))),
        lambda a: bounds(a)[1] * 0.5 / math.sqrt(min(s[3] for s in scores)),
        "absolute share of equal labels", n=min(s[3] for s in scores),
        detail=f"most extreme shift {shift:+d}: document d in epoch 1 and d {shift:+d} in "
               f"epoch 0 have the same opening label in {k} of {n} ({k / n:.4f}), expected 0.5")


def _labels(opening, subject: str) -> Check:
    name = EPOCH_CHECKS[0]
    both = sorted(set(opening[0]) & set(opening[1]))
    if not both:
        return Check.not_applicable(name, subject, "no document has an opening pair in both")
    k = sum(opening[0][d] == opening[1][d] for d in both)
    c = coin_check(name, subject, k, len(both), "share of equal labels")
    c.detail = (f"the opening pairs of {len(both)} documents have the same label in epochs 0 "
                f"and 1 in {k} ({k / len(both):.4f}), expected 0.5 (a fair label drawn afresh "
                f"each epoch; a label forced by the document agrees too)")
    return c


def _partners(e0, e1, doc, docs: DocTable, subject: str) -> Check:
    name = EPOCH_CHECKS[1]
    seen = []
    for e in (e0, e1):
        keys, rows = _first_by(e.a0)
        random = (e.label[rows] == 1) & (doc[e.b0[rows]] != doc[keys])
        seen.append(dict(zip(keys[random].tolist(), doc[e.b0[rows[random]]].tolist())))
    both = sorted(set(seen[0]) & set(seen[1]))
    others = docs.nonempty.size - 1
    if not both or others < 1:
        return Check.not_applicable(name, subject, "no A starts a random pair in both epochs")
    k = sum(seen[0][a] == seen[1][a] for a in both)
    p = 1.0 / others
    return binomial_check(name, subject, k, len(both), p, "share of equal B documents "
                          "above 1/(N - 1)",
                          f"{len(both)} A starts with a random B in epochs 0 and 1: the same "
                          f"B document in {k}, expected {len(both) * p:.2f} (1/{others} each)")
