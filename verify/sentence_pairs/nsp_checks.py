"""The NSP gate's checks: what a generator's pairs must show on the synthetic corpus.

Each pair `(tokens_a, tokens_b, is_random_next)` is read back through the corpus's numbering
(`nsp_corpus`): a token's document, its sentence, and whether a segment starts or ends inside a
sentence (then it was cut there). Exact invariants spend no false-alarm budget; the statistical
checks share one family-wise budget by Holm, like `verify.stats`:

| check | kind | under the contract |
|---|---|---|
| pairs are well-formed | exact | ids from the corpus, 1-d, label 0 or 1 |
| segment lengths | exact | `1 <= len`, `len(A) + len(B) + 3 <= max_seq_len` |
| contiguous segments | exact | each segment is consecutive text of one document |
| IsNext B follows A | exact | same document, B after A; right after A unless at the limit |
| random B from another document | exact | label 1: B's document differs from A's |
| the longer side is cut | exact | a side cut inside a sentence has >= the other's length - 1 |
| one-document corpus refused | exact | one non-empty document: an exception or no pair |
| label rate | statistical | Binomial(n, 1/2), exact two-sided tails (MDE: absolute rate) |
| label rate by document class | statistical | one rate in every stratum, Pearson (Cohen's w) |
| label rate by place in the document | statistical | the same, by the pair's place |
| ties cut A vs B | statistical | after a tie, the longer side left is a fair coin (share) |

The strata are things fixed before a pair's label is drawn: the class of A's document, and the
pair's place among the consecutive pairs whose A comes from the same document (1st, 2nd, 3rd-4th,
5th-8th, later). The length of A is *not* one of them: cutting the longer side makes A's final
length depend on B, hence on the label, in every generator that truncates like Google's (ours
included; docs/nsp.md).

The checks on how B is drawn, read and cut (per side and label) are `nsp_draws`'s, the epoch
comparison `nsp_epochs`'s, the assembled form `nsp_pairs`'s. The tie check uses the
`long-sentences` documents, where the length before the cut is known: when both sides are at
least `(max_seq_len - 2) // 2` long (odd `max_seq_len - 3`) the cutting ends with a tie broken
by the last coin, so which side ends one token longer is a fair coin.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
from scipy import special, stats

from .nsp_corpus import BASE, CLASSES, Corpus
from .nsp_pairs import read_pairs
from ..engine.primitives import Check, binomial_score, holm, rows_homogeneity
from ..engine.reporting import (clean, failure_message, format_critical, format_number,
                                skeleton, table)

__all__ = ["NSPReport", "analyse", "coin_check", "PLACE_BINS", "LABEL_RATE", "NSP_SCHEMA"]

# the NSP gate's own schema before it shared the skeleton's (`mlm-verify.report/1`): still
# written, as `nsp_schema`, for readers that looked for it
NSP_SCHEMA = "mlm-verify.nsp-report/1"
# strata of a pair's place among the consecutive pairs of its A's document: 1st, 2nd, 3rd-4th, ...
PLACE_BINS = (1, 2, 3, 5, 9)
LABEL_RATE = "label rate (1 = random next)"


def coin_check(name: str, subject: str, k: int, n: int, what: str) -> Check:
    """Two-sided exact binomial test of `k` of `n` against 1/2; statistic: the normal score of
    the exact tail on `k`'s side. MDE: the absolute departure from 1/2 with 50% power."""
    z = binomial_score(k, n, 0.5)
    tail = stats.binom.sf(k - 1, n, 0.5) if k >= n / 2 else stats.binom.cdf(k, n, 0.5)
    crit = lambda a: float(special.ndtri(1 - a / 2))  # noqa: E731
    return Check.statistical(name, subject, z, lambda a: (-crit(a), crit(a)),
                             float(min(1.0, 2 * tail)), lambda a: crit(a) * 0.5 / math.sqrt(n),
                             f"absolute {what}", n=n,
                             detail=f"{k} of {n} ({k / n:.4f}), expected 0.5")


class _Tally:
    """Violations of one exact invariant: how many, and the first one in words."""

    def __init__(self, name: str):
        self.name, self.count, self.first = name, 0, ""

    def add(self, i: int, why: str):
        self.count += 1
        self.first = self.first or f"pair {i}: {why}"

    def check(self, subject: str) -> Check:
        return Check.exact(self.name, subject, self.count, self.first)


def analyse(corpus: Corpus, pairs: list, subject: str, max_seq_len: int, *,
            read: list | None = None) -> list[Check]:
    """Every check on `pairs` made from `corpus` (the one-document check is the runner's);
    `read`: `nsp_pairs.read_pairs(corpus, pairs)`, where the caller has it already."""
    names = ("pairs are well-formed", "segment lengths within max_seq_len",
             "segments are contiguous text of one document", "IsNext B follows A",
             "random B from another document", "the longer side is cut")
    well, lengths, contig, follows, other, longer = (_Tally(n) for n in names)
    max_tokens = max_seq_len - 3
    labels, classes, place = [], [], []
    previous, run = -1, 0
    ties = a_longer = 0
    for i, x in enumerate(read_pairs(corpus, pairs) if read is None else read):
        if isinstance(x, Exception):
            well.add(i, f"not (tokens_a, tokens_b, is_random_next): {x}")
            continue
        sa, sb, label = x
        if sa is None or sb is None or label is None:
            well.add(i, "token ids not 1-d ids of the corpus, or a label other than 0/1")
            continue
        labels.append(label)
        classes.append(int(corpus.doc_class[sa.doc]))
        run = run + 1 if sa.doc == previous else 1
        previous = sa.doc
        place.append(run)
        if sa.length + sb.length > max_tokens:
            lengths.add(i, f"len(A) + len(B) + 3 = {sa.length + sb.length + 3} > {max_seq_len}")
        if not (sa.contiguous and sb.contiguous):
            contig.add(i, "a segment skips tokens or spans two documents")
            continue
        if label == 0 and not (sa.doc == sb.doc and sb.first > sa.last and (
                sb.first == sa.last + 1 or sa.length + sb.length >= max_tokens)):
            follows.add(i, f"A ends at token {sa.last + BASE} of document {sa.doc}, B starts at "
                           f"{sb.first + BASE} of document {sb.doc}, not cut")
        if label == 1 and sa.doc == sb.doc:
            other.add(i, f"random B from A's own document {sa.doc}")
        for mine, theirs in ((sa, sb), (sb, sa)):
            if (mine.cut_front or mine.cut_back) and mine.length < theirs.length - 1:
                longer.add(i, f"a side of {mine.length} tokens cut, the other has "
                              f"{theirs.length}")
        known = [s.one_sentence and CLASSES[corpus.doc_class[s.doc]] == "long-sentences"
                 for s in (sa, sb)]
        if all(known) and max_tokens % 2 == 1:
            full = [int(corpus.sentence_end[s.first] - corpus.sentence_start[s.first])
                    for s in (sa, sb)]
            if min(full) >= (max_tokens + 1) // 2 and sa.length != sb.length:
                ties += 1
                a_longer += sa.length > sb.length
    checks = [t.check(subject) for t in (well, lengths, contig, follows, other, longer)]
    return checks + _statistical(subject, np.array(labels, np.int64),
                                 np.array(classes, np.int64), np.array(place, np.int64),
                                 (a_longer, ties))


def _statistical(subject, labels, classes, place, a_ties) -> list[Check]:
    n = labels.size
    na = lambda name: Check.not_applicable(name, subject)  # noqa: E731
    checks = [coin_check(LABEL_RATE, subject, int(labels.sum()), n, "rate")
              if n else na(LABEL_RATE)]
    for name, stratum, what in (
            ("label rate by document class", classes, "document classes"),
            ("label rate by place in the document", np.searchsorted(PLACE_BINS, place, "right"),
             "places of the pair among its document's")):
        table = np.zeros((max(len(CLASSES), len(PLACE_BINS) + 1), 2))
        np.add.at(table, (stratum, labels), 1)
        c = rows_homogeneity(name, subject, table, what) if n else None
        checks.append(c or na(name))
    k, m = a_ties
    checks.append(coin_check("ties cut A vs B", subject, k, m, "share of A longer") if m
                  else na("ties cut A vs B"))
    return checks


@dataclasses.dataclass
class NSPReport:
    """The gate's verdict on one generator: `passed`, `verdict`, `str()` (a table), JSON."""

    subject: str
    alpha: float
    seed: int
    max_seq_len: int
    pairs: int
    epochs: int
    seconds: float
    checks: list[Check]

    def decide(self) -> "NSPReport":
        holm(self.checks, self.alpha)
        return self

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def verdict(self) -> str:
        """FAIL, INCONCLUSIVE (no pairs, so the label rate was not tested) or PASS."""
        rate = [c for c in self.checks if c.name == LABEL_RATE]
        if self.failures:
            return "FAIL"
        return "PASS" if rate and rate[0].applicable else "INCONCLUSIVE"

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    def __bool__(self) -> bool:
        return self.passed

    def failure_message(self) -> str:
        return failure_message(self.checks)

    def __str__(self) -> str:
        head = ("generator", "check", "statistic", "critical", "MDE (50% power)", "verdict")
        rows = [(c.subject, c.name, str(c.violations) if c.kind == "exact" else "-", "0"
                 if c.kind == "exact" else "-", "exact" if c.kind == "exact" else "-",
                 "FAIL" if c.failed else c.outcome.value) for c in self.checks
                if c.kind == "exact" or not c.applicable]
        rows += [(c.subject, c.name, format_number(c.statistic), format_critical(c),
                  f"{format_number(c.mde_value)} ({c.mde_unit})",
                  "FAIL" if c.failed else c.outcome.value)
                 for c in self.checks if c.kind == "statistical" and c.applicable]
        n_stat = sum(c.kind == "statistical" and c.applicable for c in self.checks)
        out = [f"NSP pairs of {self.subject}: {self.pairs} pairs from {self.epochs} epoch(s) of "
               f"the synthetic corpus in {self.seconds:.1f} s, max_seq_len {self.max_seq_len}, "
               f"seed {self.seed}",
               f"family-wise alpha {self.alpha:g} split by Holm over {n_stat} statistical checks",
               *table(head, rows)]
        if self.failures:
            out += [f"FAIL: {len(self.failures)} check(s)", self.failure_message()]
        else:
            out.append(self.verdict + ("" if self.passed else ": no pairs were made"))
        return "\n".join(out)

    def to_dict(self) -> dict:
        """The shared skeleton (`verify.engine.reporting.skeleton`, `gate: "nsp"`) and this
        gate's sections: the generator, its pairs and every check in one list (`checks`)."""
        return {**skeleton("nsp", passed=self.passed, verdict=self.verdict, alpha=self.alpha,
                           seed=self.seed, checks=self.checks),
                "nsp_schema": NSP_SCHEMA, "subject": self.subject,
                "max_seq_len": self.max_seq_len, "pairs": self.pairs, "epochs": self.epochs,
                "seconds": self.seconds,
                "checks": [{"name": c.name, "kind": c.kind, "outcome": c.outcome.value,
                            "violations": c.violations, "statistic": clean(c.statistic),
                            "critical": [clean(x) for x in c.critical], "level": clean(c.level),
                            "p_value": clean(c.p_value), "mde": clean(c.mde_value),
                            "mde_unit": c.mde_unit, "n": c.n, "detail": c.detail}
                           for c in self.checks]}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)
