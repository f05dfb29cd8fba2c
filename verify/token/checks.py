"""The statistical checks of one masker, built from its host counts (`HostCounts`).

The contract fixes three laws, and each holds *conditionally on everything observable*:

* **selection**: an eligible position is selected with probability `masking_prob`;
* **category**: a selected position becomes `[MASK]`, a random id or stays, with the configured
  probabilities (seen as the outcome shares of `MaskingConfig.outcome_probs`);
* **random id**: uniform over the drawable ids (`verify.token.random_ids`).

So each law is tested pooled, then for homogeneity across every stratum a masker could get
wrong (position, batch column, call, segment, id range, token id, id frequency class, repeats of
the id in its call, sequence length), for independence between neighbours and between calls
(a replay of the same input under a new seed above all), and each count for binomial
dispersion at every aggregation level, both ways (sequence, call, position across a call's
columns, id within a call). Category checks compare selected positions whose original is
drawable, whose outcome law is one and the same.

Each check function returns a `Check` (decided later by Holm) or None when the run holds too
little data for it; `masker_checks` turns that None into a check whose outcome is "not
applicable" (listed in the report; it never passes by default).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from mlm_ref.config import MaskingConfig

from .host_counts import CODES, DISPERSION_MIN, HostCounts, mask_share
from ..engine.primitives import (Check, binomial_dispersion_sums, binomial_score, chi2_check,
                                 contingency, dispersion_check, extreme_binomial_check,
                                 pearson, rows_homogeneity)
from .random_ids import random_id_checks, representative_original
from .power.power_checks import token_power_checks
from .power.two_sided import gof_check

__all__ = ["masker_checks", "count_binomial", "agreement_checks", "AGREEMENT_NAMES",
           "STRATA"]

# The strata of `HostCounts.strata` and how a report names them.
STRATA = {"pos": "positions", "col": "batch columns", "seg": "segments", "idbin": "id ranges",
          "id": "token ids", "repeat": "in-call repeat classes",
          "nbr": "neighbourhoods (left, right neighbour eligible)"}
PAIRS = {"seq": "neighbouring positions", "col": "neighbouring batch columns",
         "replay": "a replayed call (same input, new seed)", "fresh": "consecutive calls"}


def masker_checks(h: HostCounts, cfg: MaskingConfig, subject: str) -> list[Check]:
    """Every statistical check of one masker (those the counts cannot support: not applicable)."""
    named = [("selection rate", selection_rate(h, cfg, subject)),
             ("selection: most extreme single id", selection_extreme_id(h, cfg, subject))]
    named += [(f"selection homogeneous over {label}",
               _homogeneity(f"selection homogeneous over {label}", subject, table[:, 1:],
                            _selection_columns, label))
              for label, table in _strata_tables(h).items()]
    named += [("selection homogeneous over sequence lengths",
               selection_by_length(h.seq_hist, subject))]
    named += _dispersions(h, cfg, subject)
    named += [("per-sequence count ~ Binomial (distribution)",
               count_binomial(h.seq_hist, cfg.masking_prob, subject, two_sided=True))]
    named += [(f"selection independent of {what}", pair_selection(h.pairs[k], what, subject))
              for k, what in PAIRS.items()]
    named += [("category split (mask, original, other)", category_split(h, cfg, subject))]
    named += [(f"category homogeneous over {label}",
               _homogeneity(f"category homogeneous over {label}", subject, table[:, 2:5],
                            None, label))
              for label, table in _strata_tables(h).items() if label != "sequence lengths"]
    named += [(f"category independent of {what}", pair_category(h.pairs[k], what, subject))
              for k, what in PAIRS.items()]
    named += random_id_checks(h, cfg, subject)
    named += token_power_checks(h, cfg, subject)
    return [c if c is not None else Check.not_applicable(name, subject) for name, c in named]


def _strata_tables(h: HostCounts) -> dict[str, np.ndarray]:
    """`{label: [strata, CODES]}`: the device strata, calls, and id frequency classes (ids
    grouped by how often they were eligible over the run, a property of the input alone)."""
    tables = {STRATA[k]: t for k, t in h.strata.items() if k != "id"}
    tables["calls"] = h.by_call
    if "id" in h.strata:
        tables[STRATA["id"]] = h.strata["id"]
        elig = h.strata["id"][:, 1:].sum(1)
        cls = np.floor(np.log2(np.maximum(elig, 1))).astype(np.int64)
        freq = np.zeros((cls.max() + 1, CODES), np.int64)
        np.add.at(freq, cls[elig > 0], h.strata["id"][elig > 0])
        tables["id frequency classes"] = freq
    return tables


def _selection_columns(t: np.ndarray) -> np.ndarray:
    """[eligible not selected, selected] from codes 1..7."""
    return np.stack([t[:, 0], t[:, 1:].sum(1)], axis=1)


def _homogeneity(name, subject, table, columns, label):
    t = columns(table) if columns is not None else table
    return rows_homogeneity(name, subject, t, label, two_sided=True)


def selection_rate(h, cfg, subject):
    """Selected among eligible ~ Binomial(n, p): two-sided z with exact normal scores."""
    n, k, p = h.eligible, h.selected, cfg.masking_prob
    if n == 0:
        return None
    if p in (0.0, 1.0):  # no randomness: the count is exact
        return Check.statistical("selection rate", subject, float(k - n * p), lambda a: (0.0, 0.0),
                                 float(k == n * p), lambda a: 0.0, "absolute rate", n=n,
                                 detail=f"expected exactly {n * p:.0f} of {n}, observed {k}")
    z = binomial_score(k, n, p)
    sd = math.sqrt(p * (1 - p) / n)
    return Check.statistical(
        "selection rate", subject, z, _two_sided, float(2 * stats.norm.sf(abs(z))),
        lambda a: _two_sided(a)[1] * sd, "absolute rate", n=n,
        detail=f"expected rate {p:.6f}, observed {k / n:.6f} ({k} of {n} eligible)")


def _two_sided(level: float) -> tuple[float, float]:
    z = float(stats.norm.isf(level / 2))
    return -z, z


def selection_extreme_id(h, cfg, subject):
    """The token id whose selected count is most extreme for its eligible count (exact
    binomial tails, Bonferroni over 2K tails): one id never (or always) selected shows here
    long before it moves the pooled rate."""
    p = cfg.masking_prob
    if "id" not in h.strata or not 0 < p < 1:
        return None
    t = h.strata["id"]
    n, k = t[:, 1:].sum(1), t[:, 2:].sum(1)
    keep = n > 0
    n, k, ids = n[keep], k[keep], np.flatnonzero(keep)
    n_med = float(np.median(n)) if n.size else math.nan
    return extreme_binomial_check(
        "selection: most extreme single id", subject, k, n, p,
        lambda crit: crit * math.sqrt(p * (1 - p) / n_med), "absolute rate of a median id",
        lambda i: f"id {ids[i]}: expected {n[i] * p:.1f} of {n[i]} eligible selected, "
                  f"observed {k[i]}")


def selection_by_length(seq_hist, subject):
    """Selection rate per number of eligible positions in the sequence."""
    n = np.arange(seq_hist.shape[0])[:, None]
    k = np.arange(seq_hist.shape[1])[None, :]
    sel = (seq_hist * k).sum(1)
    unsel = (seq_hist * np.maximum(n - k, 0)).sum(1)
    return rows_homogeneity("selection homogeneous over sequence lengths", subject,
                            np.stack([unsel, sel], axis=1), "sequence lengths", two_sided=True)


def _dispersions(h, cfg, subject) -> list:
    p = cfg.masking_prob
    sel_call = binomial_dispersion_sums(h.by_call[:, 2:].sum(1), h.by_call[:, 1:].sum(1), p,
                                        DISPERSION_MIN)
    q = mask_share(cfg)
    mask_call = binomial_dispersion_sums(h.by_call[:, 2], h.by_call[:, 2:5].sum(1), q,
                                         DISPERSION_MIN) if q is not None else (0, 0, 0)
    levels = [("selected count per sequence ~ Binomial (dispersion)",
               _sequence_dispersion(h.seq_hist, p), "sequences"),
              ("selected count per call ~ Binomial (dispersion)", sel_call, "calls"),
              ("selected count per position of a call ~ Binomial (dispersion)",
               h.dispersion["position in call"], "positions of calls"),
              ("selected count per id in a call ~ Binomial (dispersion)",
               h.dispersion["id in call"], "ids of calls"),
              ("[MASK] count per sequence ~ Binomial (dispersion)",
               h.dispersion["[MASK] per sequence"], "sequences"),
              ("[MASK] count per call ~ Binomial (dispersion)", mask_call, "calls")]
    return [(name, dispersion_check(name, subject, *sums, what)) for name, sums, what in levels]


def _sequence_dispersion(seq_hist, p) -> tuple[float, float, float]:
    """Dispersion sums over sequences, from the `[n_eligible, n_selected]` histogram."""
    n = np.broadcast_to(np.arange(seq_hist.shape[0])[:, None], seq_hist.shape)
    k = np.broadcast_to(np.arange(seq_hist.shape[1])[None, :], seq_hist.shape)
    return binomial_dispersion_sums(k.ravel(), n.ravel(), p, DISPERSION_MIN,
                                    weights=seq_hist.ravel())


def count_binomial(seq_hist, p: float, subject: str,
                   name: str = "per-sequence count ~ Binomial (distribution)",
                   two_sided: bool = False):
    """Pearson of the per-sequence selected count against Binomial(n, p), one histogram per
    n (the row of `seq_hist`: eligible positions, or eligible words) with sparse tails merged,
    summed over n. `two_sided`: also too close a fit, against the exact null moments."""
    total, df, m = 0.0, 0, 0
    if p in (0.0, 1.0):
        return None
    tri = np.arange(seq_hist.shape[1]) <= np.arange(seq_hist.shape[0])[:, None]   # k <= n
    parts, used = [], np.flatnonzero(np.where(tri, seq_hist, 0)[1:].sum(1)) + 1   # n >= 1
    # Binomial(n, p) of every row used, in one call of scipy (a call per row costs more than
    # the rest of the run's checks)
    row_of, k = np.nonzero(tri[used])
    pmf = np.zeros((len(used), seq_hist.shape[1]))                       # [rows used, k]
    pmf[row_of, k] = stats.binom.pmf(k, used[row_of], p)
    for n, row in zip(used, pmf):
        c = seq_hist[n, :n + 1].astype(np.float64)
        parts.append((c, c.sum() * row[:n + 1]))
        stat, d = pearson(*parts[-1])
        total, df, m = total + stat, df + d, m + int(c.sum())
    if two_sided:
        return gof_check(name, subject, parts, f"{m} sequences, {df} degrees of freedom")
    if df == 0:
        return None
    return chi2_check(name, subject, total, df, m, f"{m} sequences, {df} degrees of freedom")


def pair_selection(pairs, what, subject):
    """2 x 2 test of independence of the selection of the two positions of a pair (both
    eligible)."""
    t = pairs[1:, 1:]                                   # both eligible
    a = np.stack([t[:1].sum(0), t[1:].sum(0)])          # [first selected?, second code]
    table = np.stack([a[:, :1].sum(1), a[:, 1:].sum(1)], axis=1)
    stat, df, n = contingency(table)
    if df == 0:
        return None
    (nn, ns), (sn, ss) = table
    return chi2_check(f"selection independent of {what}", subject, stat, df, n,
                      f"both selected {ss} of {n} eligible pairs, expected "
                      f"{(sn + ss) * (ns + ss) / max(n, 1):.1f}", two_sided=True)


def pair_category(pairs, what, subject):
    """3 x 3 test of independence of the outcomes of the two positions of a pair (both
    selected, originals drawable)."""
    table = pairs[2:5, 2:5]
    stat, df, n = contingency(table)
    if df == 0:
        return None
    return chi2_check(f"category independent of {what}", subject, stat, df, n,
                      f"{n} pairs with both selected; same outcome {np.trace(table)}",
                      two_sided=True)


def category_split(h, cfg, subject):
    """Observed outcomes (mask, original, other) of selected positions, Pearson per group of
    originals (a random draw can hit the original only if the original is drawable)."""
    parts, n, obs_all, exp_all = [], 0, np.zeros(3), np.zeros(3)
    for drawable, counts in ((False, h.outcomes[0]), (True, h.outcomes[1])):
        m = int(counts.sum())
        if m == 0:
            continue
        expected = m * np.asarray(cfg.outcome_probs(
            representative_original(cfg, drawable)).as_tuple())
        parts.append((counts, expected))
        n, obs_all, exp_all = n + m, obs_all + counts, exp_all + expected
    fmt = lambda v: ", ".join(f"{x / max(n, 1):.5f}" for x in v)  # noqa: E731
    # two-sided: a split held exactly at its expectation (quotas) is no draw either
    return gof_check("category split (mask, original, other)", subject, parts,
                     f"expected ({fmt(exp_all)}), observed ({fmt(obs_all)}) of {n} selected")


# Cross-implementation agreement: whatever each masker's own checks say, two maskers fed the
# same synthetic inputs should produce the same distributions. For every pair, a Pearson test of
# homogeneity (a `2 x k` contingency table, sparse columns merged) on the selection counts, the
# observed outcomes, the coarse histogram of visible random ids and the per-sequence counts.
AGREEMENT_NAMES = ("agreement: selection rate", "agreement: category split",
                   "agreement: random-id ranges", "agreement: per-sequence count")


def agreement_checks(a: HostCounts, b: HostCounts, subject: str) -> list[Check]:
    """Homogeneity of two maskers' counts (not applicable where a table has one column)."""
    tables = [[[a.selected, a.eligible - a.selected], [b.selected, b.eligible - b.selected]],
              [a.outcomes.sum(0), b.outcomes.sum(0)],
              [a.coarse_other[:-1], b.coarse_other[:-1]],
              [a.seq_hist[1:].sum(0), b.seq_hist[1:].sum(0)]]
    out = []
    for name, table in zip(AGREEMENT_NAMES, tables):
        stat, df, n = contingency(np.asarray(table, np.int64))
        out.append(chi2_check(name, subject, stat, df, n, f"{df + 1} merged columns") if df
                   else Check.not_applicable(name, subject))
    return out
