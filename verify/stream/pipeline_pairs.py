"""Shared selections between rows that should be masked independently: the statistical half
of the pipeline gate (`verify.stream.pipeline_checks` has the rest).

Under the contract two rows' selections are independent. Take the positions eligible in both
rows: given each row's count of selected positions there (`k_a`, `k_b` of `n`), the number
selected in both is hypergeometric, with mean `k_a k_b / n` and variance
`k_a k_b (n - k_a)(n - k_b) / (n^2 (n - 1))`. Summed over disjoint pairs of rows, the excess over
the expectation is a two-sided z test. The rows are paired four ways:

* the same example (the same original tokens) in the next epoch it is seen in;
* row `j` of batch `k` and row `j` of batch `k + L`, L = 1 .. 8, in one `(epoch, rank)` stream
  (DataLoader workers take batches in turn);
* row `j` of batch `k` and row `j` of batch `k + L`, L = -8 .. 8, in the paired rank (0 with 1,
  2 with 3, ...), in the paired epoch (0 with 1, ...), and in the streams a step away in both
  (epoch 0 of rank 0 with epoch 1 of rank 1, epoch 0 of rank 1 with epoch 1 of rank 0, ...):
  copies of one stream that drift by a few batches (ranks seeded `seed + rank`, workers
  `seed + worker`, epochs `seed + epoch`) line up at some lag and pairing.

Within a check the most extreme alignment decides, Bonferroni over the alignments.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .collect import Rows, Stream
from ..engine.primitives import Check

__all__ = ["shared_selection_checks", "LAGS", "MIN_VARIANCE"]

LAGS = 8                # batch lags tested: up to 8 DataLoader workers, or a drift of 8 batches
MIN_VARIANCE = 4.0      # a shared-selection check needs at least this much variance


def shared_selection_checks(stream: Stream, rows: Rows, subject: str) -> list[Check]:
    """The shared-selection checks of a stream (undecided until `holm`)."""
    return [_shared("an example seen again is masked afresh", subject, rows,
                    _same_examples(rows))] + _streams(stream, rows, subject)


def _same_examples(rows: Rows) -> list[tuple[np.ndarray, np.ndarray]]:
    """Disjoint pairs of an example's sightings in consecutive epochs it was seen in (the
    first sighting of each epoch), pairing the 1st with the 2nd, the 3rd with the 4th, ..."""
    n = rows.orig.shape[0]
    if n < 2:
        return []
    order = np.lexsort((np.arange(n), rows.epoch, rows.example))    # by example, epoch, row
    firsts = np.concatenate([[True], np.diff(rows.sighting()[order]) != 0])
    order = order[firsts]                                  # one sighting per (example, epoch)
    same = rows.example[order[1:]] == rows.example[order[:-1]]
    new = np.concatenate([[True], ~same])
    nth = np.arange(order.size) - np.flatnonzero(new)[np.cumsum(new) - 1]
    first = np.flatnonzero(same & (nth[:-1] % 2 == 0))
    return [(order[first], order[first + 1])] if first.size else []


def _overlap(rows: Rows, pairs) -> tuple[float, float, float, int]:
    """(shared, expected shared, variance, row pairs) of the selections of aligned rows."""
    shared = expected = variance = 0.0
    count = 0
    for a, b in pairs:
        common = rows.eligible[a] & rows.eligible[b]
        sa, sb = rows.sel[a] & common, rows.sel[b] & common
        n = common.sum(1).astype(np.float64)
        ka, kb = sa.sum(1).astype(np.float64), sb.sum(1).astype(np.float64)
        keep = n >= 2
        n, ka, kb = n[keep], ka[keep], kb[keep]
        shared += float((sa & sb)[keep].sum())
        expected += float((ka * kb / n).sum())
        variance += float((ka * kb * (n - ka) * (n - kb) / (n * n * (n - 1))).sum())
        count += int(keep.sum())
    return shared, expected, variance, count


def _z_check(name, subject, shared, expected, variance, count, tests: int = 1, extra=""):
    sd = math.sqrt(variance)
    z = (shared - expected) / sd
    bounds = lambda level: (-float(stats.norm.isf(level / (2 * tests))),  # noqa: E731
                            float(stats.norm.isf(level / (2 * tests))))
    return Check.statistical(
        name, subject, z, bounds, min(1.0, 2 * tests * float(stats.norm.sf(abs(z)))),
        lambda level: bounds(level)[1] * sd / expected, "excess shared selections, "
        "fraction of expected", n=count,
        detail=f"{count} row pairs share {shared:.0f} selected positions, expected "
               f"{expected:.1f} +- {sd:.1f} if independent{extra}")


def _shared(name, subject, rows, pairs) -> Check:
    shared, expected, variance, count = _overlap(rows, pairs)
    if variance < MIN_VARIANCE:
        return Check.not_applicable(name, subject)
    return _z_check(name, subject, shared, expected, variance, count)


def _lagged(name: str, subject: str, stream: Stream, rows: Rows, tests) -> Check:
    """Shared selections between each batch and its partner, row by row, for each test
    `(label, partner)`: `partner(batch)` is an `(epoch, rank, index)` or None, and pairs each
    batch at most once (so a test's pairs are disjoint). The most extreme test decides,
    Bonferroni over the tests."""
    found = []
    for label, partner in tests:
        pairs = []
        for i, b in enumerate(stream.batches):
            j = rows.where.get(partner(b))
            if j is not None:
                pairs.append(rows.slot_pairs(i, j))
        sums = _overlap(rows, pairs)
        if sums[2] >= MIN_VARIANCE:
            found.append((abs(sums[0] - sums[1]) / math.sqrt(sums[2]), label, sums))
    if not found:
        return Check.not_applicable(name, subject)
    _, label, sums = max(found, key=lambda f: f[0])
    return _z_check(name, subject, *sums, tests=len(found),
                    extra=f" ({label}, the most extreme of {len(found)} alignments)")


def _stream_tests(step, lags):
    """`(label, partner)` for each lag: the batch `lag` places after the same slot of the
    stream `step(batch)` names (an `(epoch, rank)`, or None)."""
    def partner(lag):
        def at(b):
            other = step(b)
            return None if other is None else (*other, b.index + lag)
        return at
    return [(f"lag {lag}", partner(lag)) for lag in lags]


def _streams(stream: Stream, rows: Rows, subject: str) -> list[Check]:
    """Batches of one stream up to `LAGS` apart; paired ranks (0 and 1, 2 and 3, ...), paired
    epochs (0 and 1, ...), and streams a step apart in both (epoch 0 rank 0 with epoch 1 rank 1,
    epoch 0 rank 1 with epoch 1 rank 0, ...), up to `LAGS` batches apart, lag 0 included."""
    around = range(-LAGS, LAGS + 1)
    within = [(f"lag {lag}", (lambda lag: lambda b: (b.epoch, b.rank, b.index + lag)
                              if (b.index // lag) % 2 == 0 else None)(lag))
              for lag in range(1, LAGS + 1)]
    even = lambda v: v % 2 == 0                                       # noqa: E731
    return [
        _lagged(f"batches mask independently (1 to {LAGS} batches apart)", subject, stream,
                rows, within),
        _lagged(f"ranks mask independently (up to {LAGS} batches apart)", subject, stream,
                rows, _stream_tests(lambda b: (b.epoch, b.rank + 1) if even(b.rank) else None,
                                    around)),
        _lagged(f"epochs mask independently (up to {LAGS} batches apart)", subject, stream,
                rows, _stream_tests(lambda b: (b.epoch + 1, b.rank) if even(b.epoch) else None,
                                    around)),
        _lagged(f"other epochs of other ranks mask independently (up to {LAGS} batches apart)",
                subject, stream, rows,
                [(f"rank + 1, {label}", f) for label, f in _stream_tests(
                    lambda b: (b.epoch + 1, b.rank + 1) if even(b.epoch) else None, around)] +
                [(f"rank - 1, {label}", f) for label, f in _stream_tests(
                    lambda b: (b.epoch + 1, b.rank - 1) if even(b.epoch) and b.rank else None,
                    around)])]
