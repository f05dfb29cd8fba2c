"""The checks of a pipeline's stream: do its masks stay fresh across batches, workers, epochs
and ranks, and does what it produced follow the contract?

A masker can pass every check of `verify.stats` and still be wired into a pipeline that
repeats its draws: DataLoader workers that copy one generator, every epoch replaying the last,
two ranks seeded alike, an example's mask fixed once for good (docs/pipelines.md). All of those
make two masks that should be independent *share their selected positions*, so the stream is
tested for that in two ways:

* **Repeats beyond the birthday bound** (exact). Every row's observed outcomes on its first
  `W` positions (not selected, [MASK], its original, or which other id) are compared with every
  other row's, for `W` = 16, 32, 64, ... up to the longest row. Under the contract a row's
  outcome vector `s` has probability `P(s)`, computable from the configuration; two rows agree on
  an `s` with `P(s) < tau` with probability at most `tau` (the sum over such `s` of
  `P(s) P'(s)` is below `tau` times the sum of `P'`), so with `tau = 1e-7 / (windows x pairs)`
  a single such repeat is evidence beyond a one-in-ten-million false alarm. Repeats of likely
  outcomes (a short row with nothing selected) are not counted.
* **Shared selections between aligned rows** (statistical). Under the contract two rows'
  selections are independent; given each row's count of selected positions among the positions
  eligible in both, the number selected in both is hypergeometric. Summed over disjoint pairs of
  rows the excess over its expectation is a two-sided z test, for four alignments: the same
  example seen again (its original tokens identify it); row `j` of batch `k` and row `j` of
  batch `k + L`, L = 1 .. 8, in one `(epoch, rank)` stream (DataLoader workers take batches in
  turn); and row `j` of batch `k` against row `j` of batch `k + L`, L = -8 .. 8, in the paired
  rank (0 with 1, 2 with 3, ...) and in the paired epoch (0 with 1, ...): copies of one stream
  that drift by a few batches (ranks seeded `seed + rank`, workers `seed + worker`) line up at
  some lag. The most extreme lag decides, Bonferroni over the lags.

Then everything the stream shows is counted as `verify.stats` counts a masker's calls (one call
per batch), and every check of `verify.harness.checks` is decided on it, except those that need
the harness's replayed inputs, which a pipeline does not have.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from mlm_ref.config import MaskingConfig

from .checks import masker_checks
from .counts import Counts
from .pipeline import Stream
from .primitives import Check

__all__ = ["Rows", "pipeline_checks", "REPEAT_ALPHA", "LAGS"]

REPEAT_ALPHA = 1e-7     # false-alarm bound of the repeat check, spent outside the Holm budget
LAGS = 8                # batch lags tested within a stream: up to 8 DataLoader workers
MIN_VARIANCE = 4.0      # a shared-selection check needs at least this much variance


class Rows:
    """The stream's rows, padded to the longest, `[rows, seq]`: originals, outputs, selected,
    eligible; and where each batch's rows lie."""

    def __init__(self, stream: Stream, config: MaskingConfig):
        batches = stream.batches
        self.seq = max((b.input_ids.shape[1] for b in batches), default=0)
        n = sum(b.input_ids.shape[0] for b in batches)
        pad = config.padding_token
        self.orig = np.full((n, self.seq), pad, np.int64)
        self.out = np.full((n, self.seq), pad, np.int64)
        self.labels = np.full((n, self.seq), pad, np.int64)
        self.sel = np.zeros((n, self.seq), bool)
        self.start, self.where = [], {}
        ignore = pad if stream.ignore is None else stream.ignore
        r = 0
        for i, b in enumerate(batches):
            rows, s = b.input_ids.shape
            sel = b.labels != ignore
            self.orig[r:r + rows, :s] = np.where(sel, b.labels, b.input_ids)
            self.out[r:r + rows, :s] = b.input_ids
            self.labels[r:r + rows, :s] = b.labels
            self.sel[r:r + rows, :s] = sel
            self.start.append((r, rows))
            self.where[(b.epoch, b.rank, b.index)] = i
            r += rows
        special = np.array(sorted(config.ineligible_tokens), np.int64)
        self.eligible = ~np.isin(self.orig, special)
        self.ignore = ignore
        self.epoch = np.repeat([b.epoch for b in batches],
                               [b.input_ids.shape[0] for b in batches]).astype(np.int64)
        # the example a row holds: the same original tokens are the same example
        keys = np.ascontiguousarray(self.orig).view(np.dtype((np.void, 8 * self.seq))).ravel()
        self.example = np.unique(keys, return_inverse=True)[1].ravel() if n else \
            np.zeros(0, np.int64)

    def sighting(self) -> np.ndarray:
        """An id per row of (example, epoch): a sampler may show an example twice in one
        epoch (`DistributedSampler` pads the last batch so), and stateless streams mask both
        sightings alike, by design."""
        return self.example * (int(self.epoch.max(initial=0)) + 1) + self.epoch

    def slot_pairs(self, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of batches `first` and `second`, aligned row by row."""
        (a, na), (b, nb) = self.start[first], self.start[second]
        k = np.arange(min(na, nb))
        return a + k, b + k


def pipeline_checks(stream: Stream, config: MaskingConfig, subject: str):
    """Every check of a pipeline's stream, and the counts behind the distribution checks.

    Returns:
        `(checks, host_counts)`: the checks are undecided until `holm`.
    """
    rows = Rows(stream, config)
    checks = _invariants(stream, rows, config, subject)
    checks.append(_repeats(rows, config, subject))
    checks.append(_shared("an example seen again is masked afresh", subject, rows,
                          _same_examples(rows)))
    checks += _streams(stream, rows, subject)
    h = _counts(stream, rows, config)
    checks += [c for c in masker_checks(h, config, subject) if "replay" not in c.name]
    return checks, h


def _invariants(stream, rows, config, subject) -> list[Check]:
    drawable = (rows.out >= 0) & (rows.out < config.n_tokens) & \
        ~np.isin(rows.out, np.array(config.random_exclude, np.int64))
    bad_out = rows.sel & (rows.out != config.mask_token) & (rows.out != rows.orig) & ~drawable
    bad_label = (rows.labels < 0) & (rows.labels != rows.ignore)
    empty = sorted({(e, r) for e in range(stream.epochs) for r in range(stream.world_size)} -
                   {(b.epoch, b.rank) for b in stream.batches})
    out = [Check.exact("ineligible positions never selected", subject,
                       int((rows.sel & ~rows.eligible).sum()),
                       "positions holding padding, [MASK] or a no-mask id have a label"),
           Check.exact("replacements are [MASK], original or a drawable id", subject,
                       int(bad_out.sum()), "selected outputs outside {[MASK], original} and "
                                           "outside the random-id range"),
           Check.exact("labels are an id or the ignore value", subject, int(bad_label.sum()),
                       f"negative labels other than {rows.ignore}")]
    out = [c if c.violations else Check.exact(c.name, subject, 0) for c in out]
    for name in ("pipeline runs without error", "batches are input_ids and labels [batch, seq]"):
        problems = stream.problems.get(name, [])
        out.append(Check.exact(name, subject, len(problems), "; ".join(problems[:3])))
    out.append(Check.exact("every (epoch, rank) yields batches", subject, len(empty),
                           f"no batch from (epoch, rank) {empty[:4]}" if empty else ""))
    return out


def _outcome_log_probs(rows: Rows, config: MaskingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per position: an outcome code (0 not selected, 1 [MASK], 2 original, 3 + id another id)
    and the log of its probability under the contract (0 where nothing is random)."""
    p = config.masking_prob
    is_mask, is_orig = rows.out == config.mask_token, rows.out == rows.orig
    code = np.where(~rows.sel, 0, np.where(is_mask, 1, np.where(is_orig, 2, 3 + rows.out)))
    drawable_orig = (rows.orig < config.n_tokens) & \
        ~np.isin(rows.orig, np.array(config.random_exclude, np.int64))
    probs = [config.outcome_probs(_representative(config, d)) for d in (False, True)]
    mask_p = np.where(drawable_orig, probs[1].mask, probs[0].mask)
    orig_p = np.where(drawable_orig, probs[1].original, probs[0].original)
    other_p = np.full(rows.out.shape, config.randomize_prob / config.n_random)
    with np.errstate(divide="ignore"):
        logp = np.where(~rows.eligible, 0.0, np.where(
            ~rows.sel, math.log1p(-p) if p < 1 else -np.inf,
            np.log(p) + np.log(np.where(is_mask, mask_p, np.where(is_orig, orig_p, other_p)))))
    return code, logp


def _representative(config: MaskingConfig, drawable: bool) -> int:
    if not drawable:
        return config.max_output_id + 1
    return next(t for t in range(config.n_tokens)
                if config.is_random_id(t) and t != config.mask_token)


def _windows(seq: int) -> list[int]:
    w, out = 16, []
    while w < seq:
        out.append(w)
        w *= 2
    return out + [seq] if seq else []


def _repeats(rows: Rows, config: MaskingConfig, subject: str) -> Check:
    name = "no mask pattern repeats beyond the birthday bound"
    n = rows.orig.shape[0]
    windows = _windows(rows.seq)
    if n < 2 or not windows:
        return Check.exact(name, subject, 0)
    code, logp = _outcome_log_probs(rows, config)
    cum = np.cumsum(logp, axis=1)                                          # [rows, seq]
    sighting = rows.sighting()
    log_tau = math.log(REPEAT_ALPHA / (len(windows) * n * (n - 1) / 2))
    repeats, example = 0, ""
    for w in windows:
        keys = np.ascontiguousarray(code[:, :w]).view(np.dtype((np.void, 8 * w))).ravel()
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                              return_counts=True)
        inverse = inverse.ravel()
        rare = (counts > 1) & (cum[first, w - 1] < log_tau)
        members = rare[inverse]                                  # rows of rare groups
        if not members.any():
            continue
        # a group's repeats: its distinct sightings (example, epoch) beyond the first
        distinct = np.unique(np.stack([inverse[members], sighting[members]]), axis=1)
        found = distinct.shape[1] - np.unique(distinct[0]).size
        if found:
            repeats += found
            g = int(np.flatnonzero(rare)[0])
            twins = np.flatnonzero(inverse == g)[:2]
            example = example or (f"rows {twins[0]} and {twins[1]} of the stream share their "
                                  f"first {w} outcomes (probability "
                                  f"{math.exp(cum[first[g], w - 1]):.2g} each)")
    return Check.exact(name, subject, repeats, f"{repeats} row windows repeat an earlier row's "
                       f"outcomes; {example}" if repeats else "")


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


def _lagged(name: str, subject: str, stream: Stream, rows: Rows, partner, lags) -> Check:
    """Shared selections between each batch and its `partner(batch, lag)` (an `(epoch, rank,
    index)`, or None), row by row; the most extreme lag decides, Bonferroni over the lags.
    `partner` must pair each batch at most once per lag, so the pairs are disjoint."""
    found = []
    for lag in lags:
        pairs = []
        for i, b in enumerate(stream.batches):
            j = rows.where.get(partner(b, lag))
            if j is not None:
                pairs.append(rows.slot_pairs(i, j))
        sums = _overlap(rows, pairs)
        if sums[2] >= MIN_VARIANCE:
            found.append((abs(sums[0] - sums[1]) / math.sqrt(sums[2]), lag, sums))
    if not found:
        return Check.not_applicable(name, subject)
    _, lag, sums = max(found)
    return _z_check(name, subject, *sums, tests=len(found),
                    extra=f" (lag {lag}, the most extreme of {len(found)} lags)")


def _streams(stream: Stream, rows: Rows, subject: str) -> list[Check]:
    """Batches of one stream up to `LAGS` apart; pairs of ranks (0 and 1, 2 and 3, ...) and of
    epochs (0 and 1, ...) up to `LAGS` batches apart, the same slot (lag 0) included."""
    ahead = range(1, LAGS + 1)
    around = range(-LAGS, LAGS + 1)
    return [
        _lagged(f"batches mask independently (1 to {LAGS} batches apart)", subject, stream,
                rows, lambda b, lag: (b.epoch, b.rank, b.index + lag)
                if (b.index // lag) % 2 == 0 else None, ahead),
        _lagged(f"ranks mask independently (up to {LAGS} batches apart)", subject, stream,
                rows, lambda b, lag: (b.epoch, b.rank + 1, b.index + lag)
                if b.rank % 2 == 0 else None, around),
        _lagged(f"epochs mask independently (up to {LAGS} batches apart)", subject, stream,
                rows, lambda b, lag: (b.epoch + 1, b.rank, b.index + lag)
                if b.epoch % 2 == 0 else None, around)]


def _counts(stream: Stream, rows: Rows, config: MaskingConfig):
    """The stream counted as `verify.stats` counts a masker's calls: one call per batch, padded
    to the largest batch (padding is ineligible, so it changes no count that is tested)."""
    import torch
    seq = max(rows.seq, 2)
    width = max([n for _, n in rows.start] + [2])
    calls = max(2, len(rows.start))
    counts = Counts(config, seq, width, calls, "cpu")
    pad = config.padding_token
    for c in range(calls):
        x = np.full((width, seq), pad, np.int64)
        out, y = x.copy(), x.copy()
        if c < len(rows.start):
            start, n = rows.start[c]
            part = slice(start, start + n)
            x[:n, :rows.seq] = rows.orig[part]
            out[:n, :rows.seq] = rows.out[part]
            y[:n, :rows.seq] = np.where(rows.sel[part], rows.orig[part], pad)
        t = [torch.from_numpy(np.ascontiguousarray(a.T)) for a in (x, out, y)]  # [seq, batch]
        counts.update(t[0], t[0], t[1], t[2])
    h = counts.host()
    h.shape, h.calls = (seq, width), calls
    return h
