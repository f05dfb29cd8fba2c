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
* **Shared selections between aligned rows** (statistical): `verify.stream.pipeline_pairs`,
  the same example in two epochs, batches of one stream, and the streams of other ranks and
  epochs, up to 8 batches apart.

Then everything the stream shows is counted as `verify.stats` counts a masker's calls (one call
per batch), and every check of `verify.token.checks` is decided on it, except those that need
the harness's replayed inputs, which a pipeline does not have.
"""

from __future__ import annotations

import math

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine.primitives import Check
from ..token.checks import masker_checks
from ..token.counts import Counts
from .collect import Rows, Stream
from .pipeline_fields import field_checks
from .pipeline_order import order_checks
from .pipeline_pairs import shared_selection_checks
from .pipeline_words import stream_words, word_checks, word_counts, word_view

__all__ = ["pipeline_checks", "REPEAT_ALPHA"]

REPEAT_ALPHA = 1e-7     # false-alarm bound of the repeat check, spent outside the Holm budget


def pipeline_checks(stream: Stream, config: MaskingConfig, subject: str, *,
                    wwm: bool = False, examples: int | None = None, drop_last: bool = False,
                    shuffle: bool = True):
    """Every check of a pipeline's stream, and the counts behind the distribution checks.

    Args:
        wwm: gate whole-word masking even if no batch carries `word_ids` (then every batch
            must: a stream without them fails "batches carry word_ids").
        examples, drop_last, shuffle: as `pipeline_order.order_checks`.

    Returns:
        `(checks, counts, words)`: the checks are undecided until `holm`; `words` is True when
        the stream was gated as whole-word masking (`counts` are then `WordCounts`).
    """
    rows = Rows(stream, config)
    checks = _invariants(stream, rows, config, subject)
    checks += field_checks(stream, rows, config, subject)
    checks += order_checks(stream, rows, subject, examples=examples, drop_last=drop_last,
                           shuffle=shuffle)
    words = stream_words(stream, rows)
    if wwm or any("word_ids" in b.fields for b in stream.batches):
        missing = sum("word_ids" not in b.fields for b in stream.batches)
        checks.append(Check.exact("batches carry word_ids", subject, missing,
                                  f"{missing} of {len(stream.batches)} batches have no "
                                  f"word_ids" if missing else ""))
    if words is not None:
        view = word_view(rows, words)
        checks.append(_repeats(view, config, subject))
        checks += shared_selection_checks(stream, view, subject)
        h = word_counts(stream, rows, words, config)
        return checks + word_checks(h, config, subject), h, True
    checks.append(_repeats(rows, config, subject))
    checks += shared_selection_checks(stream, rows, subject)
    h = _counts(stream, rows, config)
    checks += [c for c in masker_checks(h, config, subject) if "replay" not in c.name]
    return checks, h, False


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
            groups, per = np.unique(distinct[0], return_counts=True)
            g = int(groups[per > 1][0])                       # a group that repeats
            members = np.flatnonzero(inverse == g)
            twins = [members[0], members[sighting[members] != sighting[members[0]]][0]]
            example = example or (f"{rows.locate(twins[0])} and {rows.locate(twins[1])} "
                                  f"share their first {w} outcomes (probability "
                                  f"{math.exp(cum[first[g], w - 1]):.2g} each)")
    return Check.exact(name, subject, repeats, f"{repeats} row windows repeat an earlier row's "
                       f"outcomes; {example}" if repeats else "")


def _counts(stream: Stream, rows: Rows, config: MaskingConfig):
    """The stream counted as `verify.stats` counts a masker's calls: one call per batch, padded
    to the largest batch (padding is ineligible, so it changes no count that is tested). The
    stream is NumPy already, so it is counted with NumPy arrays: no torch needed."""
    seq = max(rows.seq, 2)
    width = max([n for _, n in rows.start] + [2])
    calls = max(2, len(rows.start))
    counts = Counts(config, seq, width, calls, "cpu", arrays="numpy")
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
        t = [np.ascontiguousarray(a.T) for a in (x, out, y)]                    # [seq, batch]
        counts.update(t[0], t[0], t[1], t[2])
    h = counts.host()
    h.shape, h.calls = (seq, width), calls
    return h
