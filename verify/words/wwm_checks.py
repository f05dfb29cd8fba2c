"""The checks of a whole-word masker, built from its `WordCounts`.

The WWM contract has the token-level laws one level up, on words:

* **selection**: an eligible word is selected with probability `masking_prob`, one draw per
  word, whatever its length, its place, its neighbours or the call; so the number of selected
  words of a sequence is Binomial(eligible words, p);
* **category**: a selected word gets one category for all its pieces (`[MASK]`, random,
  unchanged with `MaskingConfig.category_probs()`); what an observer sees is the word-level
  split of `wwm_counts.word_outcome_probs`;
* **random id**: each piece of a random word is its own uniform draw over the drawable ids.

Exact invariants (all-or-nothing words, nothing outside words, no ineligible word) are counted
in `wwm_counts`; the statistical checks below are decided under the run's one Holm budget with
the token-level harness's primitives. Each returns a `Check` or None (not applicable).
"""

from __future__ import annotations

import math
import types

import numpy as np
from scipy import stats

from mlm_ref.config import MaskingConfig

from ..token.checks import count_binomial
from ..token.host_counts import COARSE_BINS, DISPERSION_MIN
from ..token.invariants import counted_invariants
from ..engine.primitives import (Check, binomial_dispersion_sums, binomial_score, chi2_check,
                         contingency, dispersion_check, pearson, rows_homogeneity,
                         upper_binomial_check)
from ..token.random_ids import random_ids_all, random_ids_coarse, random_ids_extreme
from ..token.random_ids import representative_original
from .wwm_counts import LENGTH_CLASSES, OUTCOMES, WWM_INVARIANTS, WordCounts
from .wwm_joint import JOINT_STATISTICAL, joint_checks

__all__ = ["wwm_checks", "wwm_invariant_checks", "WWM_STATISTICAL"]

# every statistical check of one masker, in report order
WWM_STATISTICAL = (
    "word selection rate", "word selection flat across word lengths",
    "word selection flat across positions", "word selection homogeneous over calls",
    "selected words per sequence ~ Binomial (dispersion)",
    "selected words per sequence ~ Binomial (distribution)",
    "word selection independent of the neighbouring word",
    "word selection independent of a replayed call (same input, new seed)",
    "word outcome split (all [MASK], all original, all other, mixed)",
    "piece outcome split (first piece of each word)",
    "piece outcome split (last piece of multi-piece words)",
    "random ids uniform (all ids)", "random ids uniform (ranges)",
    "random ids: most extreme single id",
    "random pieces of a word drawn independently") + JOINT_STATISTICAL


def wwm_invariant_checks(h: WordCounts, subject: str) -> list[Check]:
    """The exact invariants counted per position, then those seen on the host."""
    return counted_invariants(h, subject, WWM_INVARIANTS)


def wwm_checks(h: WordCounts, cfg: MaskingConfig, subject: str) -> list[Check]:
    """Every statistical check of one masker (None turned into not applicable)."""
    p = cfg.masking_prob
    made = {
        WWM_STATISTICAL[0]: word_selection_rate(h, p, subject),
        WWM_STATISTICAL[1]: rows_homogeneity(WWM_STATISTICAL[1], subject, h.by_length,
                                             "word length classes (1..7, 8+ pieces)"),
        WWM_STATISTICAL[2]: rows_homogeneity(WWM_STATISTICAL[2], subject, h.by_pos,
                                             "buckets of the word's first position"),
        WWM_STATISTICAL[3]: rows_homogeneity(WWM_STATISTICAL[3], subject, h.by_call, "calls"),
        WWM_STATISTICAL[4]: _dispersion(h, p, subject),
        WWM_STATISTICAL[5]: count_binomial(h.seq_hist, p, subject, WWM_STATISTICAL[5]),
        WWM_STATISTICAL[6]: _pair(WWM_STATISTICAL[6], h.pairs["nbr"], subject),
        WWM_STATISTICAL[7]: _pair(WWM_STATISTICAL[7], h.pairs["replay"], subject),
        WWM_STATISTICAL[8]: word_outcome_split(h, subject),
        WWM_STATISTICAL[9]: _piece_split(WWM_STATISTICAL[9], h.first_piece, cfg, subject),
        WWM_STATISTICAL[10]: _piece_split(WWM_STATISTICAL[10], h.last_piece, cfg, subject),
    }
    ids = _random_view(h, cfg)
    made[WWM_STATISTICAL[11]] = random_ids_all(ids, cfg, subject)
    made[WWM_STATISTICAL[12]] = random_ids_coarse(ids, cfg, subject)
    made[WWM_STATISTICAL[13]] = random_ids_extreme(ids, cfg, subject)
    made[WWM_STATISTICAL[14]] = _independent_pieces(h, cfg, subject)
    made.update(joint_checks(h.joint, cfg, subject))   # independence between words
    return [c if c is not None else Check.not_applicable(name, subject)
            for name, c in made.items()]


def word_selection_rate(h: WordCounts, p: float, subject: str):
    """Selected among eligible words ~ Binomial(n, p): exact tail as a normal score,
    two-sided. MDE: absolute rate."""
    n, k = h.eligible_words, h.selected_words
    if n == 0 or not 0 < p < 1:
        return None
    z = binomial_score(k, n, p)
    sd = math.sqrt(p * (1 - p) / n)
    two = lambda a: (-float(stats.norm.isf(a / 2)), float(stats.norm.isf(a / 2)))  # noqa: E731
    return Check.statistical(
        WWM_STATISTICAL[0], subject, z, two, float(2 * stats.norm.sf(abs(z))),
        lambda a: two(a)[1] * sd, "absolute rate", n=n,
        detail=f"expected rate {p:.6f}, observed {k / n:.6f} ({k} of {n} eligible words)")


def _dispersion(h: WordCounts, p: float, subject: str):
    m = np.broadcast_to(np.arange(h.seq_hist.shape[0])[:, None], h.seq_hist.shape)
    k = np.broadcast_to(np.arange(h.seq_hist.shape[1])[None, :], h.seq_hist.shape)
    sums = binomial_dispersion_sums(k.ravel(), m.ravel(), p, DISPERSION_MIN,
                                    weights=h.seq_hist.ravel())
    return dispersion_check(WWM_STATISTICAL[4], subject, *sums, "sequences")


def _pair(name: str, table: np.ndarray, subject: str):
    """2 x 2 independence of the selection of two eligible words."""
    stat, df, n = contingency(table)
    if df == 0:
        return None
    (_, _), (_, ss) = table
    expected = table[1].sum() * table[:, 1].sum() / max(n, 1)
    return chi2_check(name, subject, stat, df, n,
                      f"both selected {ss} of {n} pairs, expected {expected:.1f}")


def word_outcome_split(h: WordCounts, subject: str):
    """Pearson of the word outcomes (all [MASK], all original, all other, mixed) against the
    summed contract probabilities, per length class (sparse classes merged), summed."""
    total, df, n = 0.0, 0, 0
    for lc in range(LENGTH_CLASSES):
        obs, exp = h.outcomes[lc].astype(np.float64), h.expected[lc]
        if obs.sum() == 0:
            continue
        stat, d = pearson(obs, exp)
        total, df, n = total + stat, df + d, n + int(obs.sum())
    if df == 0:
        return None
    share = lambda v: ", ".join(f"{x:.4f}" for x in v / max(v.sum(), 1))  # noqa: E731
    multi = h.outcomes[1:].sum(0).astype(np.float64)
    return chi2_check(WWM_STATISTICAL[8], subject, total, df, n,
                      f"words of 2+ pieces ({', '.join(OUTCOMES)}): expected "
                      f"({share(h.expected[1:].sum(0))}), observed ({share(multi)}) of "
                      f"{int(multi.sum())}; {n} selected words in all")


def _piece_split(name: str, table: np.ndarray, cfg: MaskingConfig, subject: str):
    """One piece per selected word, outcome (mask, original, other) against
    `MaskingConfig.outcome_probs`, per group of originals (drawable or not)."""
    total, df, n = 0.0, 0, 0
    for drawable in (0, 1):
        counts = table[drawable]
        m = int(counts.sum())
        if m == 0:
            continue
        expected = m * np.asarray(cfg.outcome_probs(
            representative_original(cfg, bool(drawable))).as_tuple())
        stat, d = pearson(counts, expected)
        total, df, n = total + stat, df + d, n + m
    if df == 0:
        return None
    obs = table.sum(0) / max(n, 1)
    return chi2_check(name, subject, total, df, n,
                      f"observed (mask, original, other) ({obs[0]:.4f}, {obs[1]:.4f}, "
                      f"{obs[2]:.4f}) of {n} words")


def _random_view(h: WordCounts, cfg: MaskingConfig):
    """The fields `random_ids` reads, from a WWM run's counts (every selected piece is one
    draw of the category; visible random ids and drawable originals per id)."""
    v, c = cfg.n_tokens, min(COARSE_BINS, cfg.n_tokens)
    edges = np.append(np.arange(v) * c // v, c)
    return types.SimpleNamespace(
        other_hist=h.other_hist, orig_hist=h.orig_hist, selected=h.selected_pieces,
        coarse_other=np.bincount(edges, h.other_hist, c + 1).astype(np.int64),
        coarse_orig=np.bincount(edges, h.orig_hist, c + 1).astype(np.int64))


def _independent_pieces(h: WordCounts, cfg: MaskingConfig, subject: str):
    """Neighbouring pieces of one word that both show a random id show the same id with
    probability below 1/(K-1), K the drawable ids other than [MASK]: one-sided exact binomial
    (one id copied to every piece of a random word fails)."""
    pairs, equal = (int(v) for v in h.equal_neighbours)
    k = cfg.n_random - (1 if cfg.is_random_id(cfg.mask_token) else 0)
    if pairs == 0 or k < 3:
        return None
    c = upper_binomial_check(WWM_STATISTICAL[14], subject, equal, pairs, 1.0 / (k - 1),
                             "share of equal ids")
    c.detail = f"{equal} of {pairs} neighbouring random pieces equal, at most " \
               f"{pairs / (k - 1):.1f} expected"
    return c
