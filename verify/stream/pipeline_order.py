"""Which examples a pipeline shows, to which rank, in which order: the order-and-coverage half of
the pipeline gate (docs/pipelines.md, "What a pipeline promises").

An example is named by the batch's `index` (one int per row) when every batch carries one, else
by its original tokens (recovered from the labels); the same tokens are then the same example,
so a dataset holding one text twice must carry `index`. `N` is the dataset's size when the
caller gives it (`examples=`), else the number of distinct examples the whole run showed. With
`R` ranks, `DistributedSampler` shows `ceil(N / R)` examples per rank, padding with
`(-N) mod R` repeats (or, with its `drop_last`, leaving `N mod R` out); `DataLoader(drop_last=
True)` leaves up to `batch - 1` more out per rank (allowed with `drop_last=True` here). Exact:

* every rank gets its 1/R share: between `floor(N / R)` (less the loader's drop) and
  `ceil(N / R)` rows per (epoch, rank);
* ranks see disjoint examples: at most `(-N) mod R` examples of an epoch on two ranks;
* every example is seen in every epoch: at most `N mod R` (plus the loader's drop) left out;
* no example is shown twice in an epoch beyond the sampler's padding (`(-N) mod R`);
* an index always holds the same tokens (with `index`).

Statistical (the order is a fresh uniform permutation each epoch, independent of the last):

* **neighbours kept**: unordered pairs of examples next to each other in a rank's stream in
  epoch `e + 1` that were neighbours in epoch `e`. Each neighbour pair of a uniform permutation
  is a uniform pair of distinct examples, so the count has mean
  `|pairs(e + 1)| |pairs(e)| / C(N, 2)` (about 2) and is asymptotically Poisson; one-sided
  upper Poisson tail (too few cannot be told from chance at a mean of 2). A replayed or
  rotated order, batches shuffled as fixed blocks, ranks swapped each epoch keep most pairs.
* **position correlation**: Pearson correlation of an example's relative position in its
  rank's stream in epoch `e` and in `e + 1` (pooled over consecutive epochs): under independent
  permutations `z = r sqrt(n - 1)` is standard normal; two-sided. A small shuffle buffer over a
  fixed source order, or a replay, correlates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .collect import Rows, Stream
from ..engine.primitives import Check

__all__ = ["order_checks", "ORDER_CHECKS"]

ORDER_CHECKS = ("every rank gets its 1/world_size share",
                "ranks see disjoint examples (beyond the sampler's padding)",
                "every example is seen in every epoch",
                "no example shown twice in an epoch (beyond the sampler's padding)",
                "an index always holds the same tokens",
                "each epoch reshuffles the order (neighbours kept)",
                "each epoch reshuffles the order (position correlation)")


class _Layout:
    """Per row: epoch, rank, example and position in its (epoch, rank) stream (0 .. 1)."""

    def __init__(self, stream: Stream, rows: Rows):
        sizes = [b.input_ids.shape[0] for b in stream.batches]
        self.rank = np.repeat([b.rank for b in stream.batches], sizes).astype(np.int64)
        self.epoch, self.example, self.rows = rows.epoch, rows.example, rows
        self.n = int(self.example.max(initial=-1)) + 1
        group = self.epoch * (stream.world_size + 1) + self.rank
        order = np.argsort(group, kind="stable")       # rows are in stream order within groups
        starts = np.searchsorted(group[order], group[order])
        pos = np.empty(order.size, np.int64)
        pos[order] = np.arange(order.size) - starts
        length = np.bincount(group, minlength=int(group.max(initial=0)) + 1)[group]
        self.position, self.stream_len = pos, length
        self.batch = max(sizes, default=1)
        self.names = np.concatenate([b.fields["index"] for b in stream.batches]) \
            if rows.indexed else None

    def name(self, row: int) -> str:
        """An example as the report names it: its index, or where it was seen."""
        where = self.rows.locate(row)
        return f"index {self.names[row]} ({where})" if self.names is not None else where


def order_checks(stream: Stream, rows: Rows, subject: str, *, examples: int | None = None,
                 drop_last: bool = False, shuffle: bool = True) -> list[Check]:
    """The order-and-coverage checks of a stream (statistical ones undecided until `holm`).

    Args:
        examples: the dataset's size (default: the distinct examples the run showed).
        drop_last: the loader may leave up to `batch - 1` examples per rank and epoch out.
        shuffle: the pipeline shuffles each epoch (False: the order checks do not apply).
    """
    if not stream.batches:
        return [Check.not_applicable(n, subject, kind="exact" if i < 5 else "statistical")
                for i, n in enumerate(ORDER_CHECKS)]
    lay = _Layout(stream, rows)
    n = lay.n if examples is None else examples
    world, epochs = stream.world_size, stream.epochs
    loader_drop = world * (lay.batch - 1) if drop_last else 0
    out = [_shares(lay, n, world, epochs, loader_drop, subject),
           _disjoint(lay, n, world, epochs, subject),
           _coverage(lay, n, world, epochs, loader_drop, examples, subject),
           _duplicates(lay, n, world, epochs, subject),
           _same_tokens(lay, rows, subject)]
    if not shuffle or epochs < 2:
        why = "the pipeline does not shuffle (--no-shuffle)" if not shuffle else "one epoch"
        return out + [Check.not_applicable(c, subject, why) for c in ORDER_CHECKS[5:]]
    return out + [_neighbours(lay, epochs, subject), _positions(lay, epochs, subject)]


def _shares(lay, n, world, epochs, loader_drop, subject) -> Check:
    name = ORDER_CHECKS[0]
    if world < 2:
        return Check.not_applicable(name, subject, "one rank", kind="exact")
    low, high = n // world - loader_drop // world, -(-n // world)
    bad = []
    for e in range(epochs):
        for r in range(world):
            count = int(((lay.epoch == e) & (lay.rank == r)).sum())
            if not low <= count <= high:
                bad.append(f"epoch {e}, rank {r}: {count} rows")
    return Check.exact(name, subject, len(bad), f"{'; '.join(bad[:4])}; a 1/{world} share of "
                       f"{n} examples is {low} to {high} rows" if bad else "")


def _per_epoch(lay, e):
    """Rows of epoch `e`, their examples and ranks."""
    at = np.flatnonzero(lay.epoch == e)
    return at, lay.example[at], lay.rank[at]


def _disjoint(lay, n, world, epochs, subject) -> Check:
    name = ORDER_CHECKS[1]
    if world < 2:
        return Check.not_applicable(name, subject, "one rank", kind="exact")
    pad, total, example = (-n) % world, 0, ""
    for e in range(epochs):
        at, ex, rk = _per_epoch(lay, e)
        pairs = np.unique(np.stack([ex, rk]), axis=1)          # distinct (example, rank)
        ranks_of = np.bincount(pairs[0], minlength=lay.n)
        shared = np.flatnonzero(ranks_of > 1)
        excess = max(0, shared.size - pad)
        if excess:
            total += excess
            rows = at[ex == shared[0]]
            other = rows[lay.rank[rows] != lay.rank[rows[0]]][0]
            example = example or (f"epoch {e}: {shared.size} examples on more than one rank "
                                  f"(the sampler's padding explains {pad}), e.g. "
                                  f"{lay.name(rows[0])} and {lay.rows.locate(other)}")
    return Check.exact(name, subject, total, example)


def _coverage(lay, n, world, epochs, loader_drop, examples, subject) -> Check:
    name = ORDER_CHECKS[2]
    allowed, total, details = n % world + loader_drop, 0, []
    if examples is not None and lay.n > examples:
        total += lay.n - examples
        details.append(f"the run shows {lay.n} distinct examples, the dataset has {examples}")
    for e in range(epochs):
        _, ex, _ = _per_epoch(lay, e)
        seen = np.zeros(lay.n, bool)
        seen[ex] = True
        missing = n - int(seen.sum())
        if missing > allowed:
            total += missing - allowed
            gone = np.flatnonzero(~seen)
            named = f"; e.g. {lay.name(int(np.flatnonzero(lay.example == gone[0])[0]))}" \
                if gone.size else ""
            details.append(f"epoch {e} leaves out {missing} of {n} examples (the sampler "
                           f"explains {allowed}){named}")
    return Check.exact(name, subject, total, "; ".join(details[:3]))


def _duplicates(lay, n, world, epochs, subject) -> Check:
    name = ORDER_CHECKS[3]
    pad, total, example = (-n) % world, 0, ""
    for e in range(epochs):
        at, ex, _ = _per_epoch(lay, e)
        counts = np.bincount(ex, minlength=lay.n)
        extra = int((counts[counts > 1] - 1).sum())
        if extra > pad:
            total += extra - pad
            twice = at[ex == np.flatnonzero(counts > 1)[0]]
            example = example or (f"epoch {e} shows {extra} repeated sightings (the sampler's "
                                  f"padding explains {pad}), e.g. {lay.name(twice[0])} again at "
                                  f"{lay.rows.locate(twice[1])}")
    return Check.exact(name, subject, total, example)


def _same_tokens(lay, rows: Rows, subject) -> Check:
    name = ORDER_CHECKS[4]
    if not rows.indexed:
        return Check.not_applicable(name, subject, "the batches carry no index", kind="exact")
    pairs = np.unique(np.stack([rows.example, rows.fingerprint]), axis=1)
    tokens_of = np.bincount(pairs[0], minlength=lay.n)
    bad = np.flatnonzero(tokens_of > 1)
    if not bad.size:
        return Check.exact(name, subject, 0)
    at = np.flatnonzero(rows.example == bad[0])
    other = at[rows.fingerprint[at] != rows.fingerprint[at[0]]][0]
    return Check.exact(name, subject, int(bad.size), f"{bad.size} indices hold different tokens "
                       f"in different sightings, e.g. {lay.name(at[0])} and "
                       f"{rows.locate(other)}")


def _neighbour_pairs(lay, e) -> np.ndarray:
    """Unordered pairs (as one int64 key) of examples next to each other in a rank's stream."""
    at = np.flatnonzero(lay.epoch == e)
    at = at[np.lexsort((lay.position[at], lay.rank[at]))]
    a, b = lay.example[at[:-1]], lay.example[at[1:]]
    keep = (lay.rank[at[:-1]] == lay.rank[at[1:]]) & (a != b)
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    return lo * lay.n + hi


def _neighbours(lay, epochs, subject) -> Check:
    name = ORDER_CHECKS[5]
    kept = expected = count = 0.0
    all_pairs = lay.n * (lay.n - 1) / 2
    for e in range(epochs - 1):
        before, after = np.unique(_neighbour_pairs(lay, e)), _neighbour_pairs(lay, e + 1)
        kept += float(np.isin(after, before).sum())
        expected += after.size * before.size / max(all_pairs, 1)
        count += after.size
    if count == 0 or expected == 0:
        return Check.not_applicable(name, subject)

    def bounds(level):
        return -math.inf, float(stats.poisson.isf(level, expected))
    return Check.statistical(
        name, subject, kept, bounds, float(stats.poisson.sf(kept - 1, expected)),
        lambda level: max(0.0, bounds(level)[1] - expected) / count,
        "share of neighbour pairs kept", n=int(count),
        detail=f"{kept:.0f} of {count:.0f} neighbouring pairs were neighbours the epoch before, "
               f"{expected:.1f} expected of a fresh shuffle")


def _positions(lay, epochs, subject) -> Check:
    name = ORDER_CHECKS[6]
    q = lay.position / np.maximum(lay.stream_len - 1, 1)
    xs, ys = [], []
    for e in range(epochs - 1):
        first = {}
        for ep in (e, e + 1):                   # an example's first sighting in each epoch
            at = np.flatnonzero(lay.epoch == ep)
            ex, idx = np.unique(lay.example[at], return_index=True)
            first[ep] = dict(zip(ex.tolist(), q[at[idx]].tolist()))
        both = sorted(set(first[e]) & set(first[e + 1]))
        xs += [first[e][k] for k in both]
        ys += [first[e + 1][k] for k in both]
    n = len(xs)
    if n < 10 or np.std(xs) == 0 or np.std(ys) == 0:
        return Check.not_applicable(name, subject)
    r = float(np.corrcoef(xs, ys)[0, 1])
    z = r * math.sqrt(n - 1)

    def bounds(level):
        c = float(stats.norm.isf(level / 2))
        return -c, c
    return Check.statistical(
        name, subject, z, bounds, float(2 * stats.norm.sf(abs(z))),
        lambda level: bounds(level)[1] / math.sqrt(n - 1), "correlation", n=n,
        detail=f"an example's place in epoch e and in e + 1 correlate {r:+.3f} over {n} "
               f"examples, 0 +- {1 / math.sqrt(n - 1):.3f} if reshuffled")
