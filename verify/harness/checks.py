"""The statistical checks of one masker, built from its host counts (`Counts.host()`).

Each check function returns a statistical `Check` (decided later by Holm) or None when the run
holds too little data for the check to mean anything; `masker_checks` turns that None into a
check whose outcome is "not applicable" (the report lists it; it never passes by default). The expected probabilities come from `MaskingConfig`; the only quantities
derived here are the ones a test needs on top of it, each written as a function of the config:
`other_id_weights` and `coarse_drawable_counts` (where a visible random id can land).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from mlm_ref.config import MaskingConfig

from .counts import COARSE_BINS, HostCounts
from .primitives import Check, chi2_check, contingency, greedy_groups, pearson

__all__ = ["CHECK_NAMES", "masker_checks", "other_id_weights", "coarse_drawable_counts",
           "representative_original"]

# Sequences shorter than this are left out of the dispersion test: a sum over very short
# binomials is too skewed for its two-moment chi-square approximation at tiny levels.
DISPERSION_MIN_ELIGIBLE = 8


# The names of `masker_checks`'s entries, in order (for the ones that are not applicable).
CHECK_NAMES = ("selection rate", "category split (mask, original, other)",
               "random ids uniform (all ids)", "random ids uniform (ranges)",
               "random ids: most extreme single id", "homogeneity over positions",
               "homogeneity over batch columns", "independence of neighbouring positions",
               "independence of neighbouring batch columns", "independence of consecutive calls",
               "per-sequence count ~ Binomial (dispersion)",
               "per-sequence count ~ Binomial (distribution)")


def masker_checks(h: HostCounts, cfg: MaskingConfig, subject: str) -> list[Check]:
    """Every statistical check of one masker, in the order of `CHECK_NAMES`
    (those the run's counts cannot support come back not applicable)."""
    checks = [selection_rate(h, cfg, subject), category_split(h, cfg, subject),
              random_ids_all(h, cfg, subject), random_ids_coarse(h, cfg, subject),
            random_ids_extreme(h, cfg, subject),
            homogeneity(h.pos_sel, h.pos_elig, "homogeneity over positions", subject),
            homogeneity(h.col_sel, h.col_elig, "homogeneity over batch columns",
                        subject),
            *(independence(h.scalars, k, what, subject) for k, what in (
                ("seq", "neighbouring positions"), ("col", "neighbouring batch columns"),
                ("call", "consecutive calls"))),
            count_dispersion(h.seq_hist, cfg, subject),
            count_binomial(h.seq_hist, cfg, subject)]
    return [c if c is not None else Check.not_applicable(name, subject)
            for name, c in zip(CHECK_NAMES, checks)]


def selection_rate(h, cfg, subject):
    """Selected among eligible ~ Binomial(n, p): two-sided z with exact normal scores."""
    n, k, p = h.scalars["eligible"], h.scalars["selected"], cfg.masking_prob
    if n == 0:
        return None
    if p in (0.0, 1.0):  # no randomness: the count is exact
        return Check.statistical("selection rate", subject, float(k - n * p), lambda a: (0.0, 0.0),
                         float(k == n * p), lambda a: 0.0, "absolute rate", n=n,
                         detail=f"expected exactly {n * p:.0f} of {n}, observed {k}")
    z = _binomial_score(k, n, p)
    sd = math.sqrt(p * (1 - p) / n)
    return Check.statistical(
        "selection rate", subject, z, lambda a: _two_sided(a), float(2 * stats.norm.sf(abs(z))),
        lambda a: _two_sided(a)[1] * sd, "absolute rate", n=n,
        detail=f"expected rate {p:.6f}, observed {k / n:.6f} ({k} of {n} eligible)")


def _two_sided(level: float) -> tuple[float, float]:
    z = float(stats.norm.isf(level / 2))
    return -z, z


def _binomial_score(k, n, p) -> float:
    """The normal score of the exact binomial tail of `k` (signed; no underflow)."""
    if k >= n * p:
        return float(-special.ndtri_exp(min(0.0, stats.binom.logsf(k - 1, n, p))))
    return float(special.ndtri_exp(min(0.0, stats.binom.logcdf(k, n, p))))


def category_split(h, cfg, subject):
    """Observed outcomes (mask, original, other) of selected positions, Pearson per group of
    originals (a random draw can hit the original only if the original is drawable)."""
    total, df, n, obs_all, exp_all = 0.0, 0, 0, np.zeros(3), np.zeros(3)
    for drawable, counts in ((False, h.outcomes[0]), (True, h.outcomes[1])):
        m = int(counts.sum())
        if m == 0:
            continue
        expected = m * np.asarray(cfg.outcome_probs(representative_original(cfg, drawable)).as_tuple())
        stat, d = pearson(counts, expected)
        total, df, n = total + stat, df + d, n + m
        obs_all, exp_all = obs_all + counts, exp_all + expected
    if df == 0:
        return None
    fmt = lambda v: ", ".join(f"{x / n:.5f}" for x in v)  # noqa: E731
    return chi2_check("category split (mask, original, other)", subject, total, df, n,
                      f"expected ({fmt(exp_all)}), observed ({fmt(obs_all)}) of {n} selected")


def representative_original(cfg: MaskingConfig, drawable: bool) -> int:
    """An eligible-looking id that is (or is not) drawable: `outcome_probs` depends on the
    original only through `is_random_id(original)`."""
    if not drawable:
        return cfg.max_output_id + 1
    return next(t for t in range(cfg.n_tokens) if cfg.is_random_id(t) and t != cfg.mask_token)


def other_id_weights(cfg: MaskingConfig, n_selected: int, orig_hist: np.ndarray) -> np.ndarray:
    """Expected share (unnormalised) of each id among visible random replacements.

    A random draw lands on id t with probability 1/n_random for every drawable t, and is
    visible as a replacement unless it equals the original or `mask_token`; so over a run the
    expected count of id t is proportional to the number of selected positions whose original
    is not t: `n_selected - orig_hist[t]`, for drawable t other than `mask_token`, 0 elsewhere.
    """
    support = np.zeros(cfg.n_tokens, bool)
    support[cfg.random_ids()] = True
    if cfg.mask_token < cfg.n_tokens:
        support[cfg.mask_token] = False
    return np.where(support, n_selected - orig_hist[:cfg.n_tokens], 0).astype(np.float64)


def coarse_drawable_counts(cfg: MaskingConfig, bins: int) -> np.ndarray:
    """How many drawable ids other than `mask_token` fall in each coarse bin `t * bins // V`."""
    v = cfg.n_tokens
    edges = -(-np.arange(bins + 1, dtype=np.int64) * v // bins)  # ceil(b V / bins)
    size = np.diff(edges)
    gone = list(cfg.random_exclude) + ([cfg.mask_token] if cfg.is_random_id(cfg.mask_token) else [])
    return size - np.bincount(np.asarray(gone, np.int64) * bins // v, minlength=bins)[:bins]


def _other_expected(h, cfg):
    """(observed, expected) per id of visible random replacements, or None."""
    if h.other_hist is None or cfg.randomize_prob == 0:
        return None
    w = other_id_weights(cfg, h.scalars["selected"], h.orig_hist)
    obs = h.other_hist[:cfg.n_tokens].astype(np.float64)
    n = obs.sum()
    if n == 0 or w.sum() == 0:
        return None
    return obs, n * w / w.sum()


def random_ids_all(h, cfg, subject):
    """Pearson over all V ids (sparse ones merged): a diffuse skew of the random draw."""
    oe = _other_expected(h, cfg)
    if oe is None:
        return None
    stat, df = pearson(*oe)
    if df == 0:
        return None
    return chi2_check("random ids uniform (all ids)", subject, stat, df, int(oe[0].sum()),
                      f"{int(oe[0].sum())} visible random ids over {df + 1} merged bins")


def random_ids_coarse(h, cfg, subject):
    """Pearson over 64 equal id ranges: a range or modulo bias, with few degrees of freedom."""
    if cfg.randomize_prob == 0:
        return None
    c = min(COARSE_BINS, cfg.n_tokens)
    w = coarse_drawable_counts(cfg, c) * h.scalars["selected"] - h.coarse_orig[:c]
    obs = h.coarse_other[:c].astype(np.float64)
    n = obs.sum()
    if n == 0:
        return None
    stat, df = pearson(obs, n * w / w.sum())
    if df == 0:
        return None
    return chi2_check("random ids uniform (ranges)", subject, stat, df, int(n),
                      f"{int(n)} visible random ids over {c} equal id ranges")


def random_ids_extreme(h, cfg, subject):
    """The most extreme single id, exact binomial tails as normal scores, Bonferroni over the
    2K tails: one missing or doubled id is caught even when the all-ids Pearson is not."""
    oe = _other_expected(h, cfg)
    if oe is None:
        return None
    obs, exp = oe
    keep = exp > 0
    obs, exp, n = obs[keep], exp[keep], int(obs.sum())
    if obs.size < 2:
        return None
    q = exp / n
    up = -special.ndtri_exp(np.minimum(0.0, stats.binom.logsf(obs - 1, n, q)))
    down = -special.ndtri_exp(np.minimum(0.0, stats.binom.logcdf(obs, n, q)))
    score = np.maximum(up, down)
    worst = int(np.argmax(score))
    ids = np.flatnonzero(keep)
    k = obs.size
    crit = lambda a: float(stats.norm.isf(a / (2 * k)))  # noqa: E731
    e_med = float(np.median(exp))
    return Check.statistical(
        "random ids: most extreme single id", subject, float(score[worst]),
        lambda a: (-math.inf, crit(a)), float(min(1.0, 2 * k * stats.norm.sf(score[worst]))),
        lambda a: crit(a) * math.sqrt(e_med) / e_med, "relative change of one id", n=n,
        detail=f"id {ids[worst]}: expected {exp[worst]:.1f}, observed {obs[worst]:.0f}")


def homogeneity(sel, elig, name, subject):
    """Selected vs not among eligible, per position (or column): a 2 x k Pearson test of equal
    rates, adjacent sparse positions merged. A never-selected position stands out here."""
    sel, elig = np.asarray(sel, np.float64), np.asarray(elig, np.float64)
    n = elig.sum()
    if n == 0:
        return None
    p = sel.sum() / n
    if p in (0.0, 1.0):
        return None
    g = greedy_groups(elig * min(p, 1 - p), 5.0)
    s, e = np.bincount(g, sel), np.bincount(g, elig)
    if s.size < 2:
        return None
    stat = float(((s - e * p) ** 2 / (e * p * (1 - p))).sum())
    worst = int(np.argmax(np.abs(s - e * p) / np.sqrt(e * p * (1 - p))))
    return chi2_check(name, subject, stat, s.size - 1, int(n),
                      f"pooled rate {p:.5f}; most deviant group {worst}: rate "
                      f"{s[worst] / e[worst]:.5f} over {e[worst]:.0f} eligible")


def independence(scalars, prefix, what, subject):
    """2 x 2 Pearson test of independence of the selection indicators of a pair."""
    both, a, b, ab = (scalars[f"{prefix}_{k}"] for k in ("pairs", "a", "b", "ab"))
    table = [[ab, a - ab], [b - ab, both - a - b + ab]]
    stat, df, n = contingency(table)
    if df == 0:
        return None
    den = math.sqrt(max(a * (both - a) * b * (both - b), 1))
    phi = (ab * both - a * b) / den
    return chi2_check(f"independence of {what}", subject, stat, df, n,
                      f"correlation of selections {phi:+.5f} over {both} eligible pairs "
                      f"(both selected {ab}, expected {a * b / max(both, 1):.1f})")


def count_dispersion(seq_hist, cfg, subject):
    """Variance of the per-sequence selected count against the binomial's: sum over sequences
    of (k - n p)^2 / (n p q), referred to a chi-square matched in mean and variance; two-sided,
    so an exact-count masker (too little variance) fails as well as a clumpy one (too much)."""
    p = cfg.masking_prob
    n = np.arange(seq_hist.shape[0])[:, None].astype(np.float64)
    k = np.arange(seq_hist.shape[1])[None, :].astype(np.float64)
    use = (n >= DISPERSION_MIN_ELIGIBLE) & (seq_hist > 0)
    if p in (0.0, 1.0) or not use.any():
        return None
    c = seq_hist[use].astype(np.float64)
    n, k = np.broadcast_to(n, use.shape)[use], np.broadcast_to(k, use.shape)[use]
    npq = n * p * (1 - p)
    d = float((c * (k - n * p) ** 2 / npq).sum())
    mean, var = c.sum(), float((c * (2 + (1 - 6 * p * (1 - p)) / npq)).sum())
    scale, nu = var / (2 * mean), 2 * mean ** 2 / var

    def bounds(a):
        return (scale * float(stats.chi2.ppf(a / 2, nu)), scale * float(stats.chi2.isf(a / 2, nu)))
    tail = min(stats.chi2.cdf(d / scale, nu), stats.chi2.sf(d / scale, nu))
    return Check.statistical(
        "per-sequence count ~ Binomial (dispersion)", subject, d, bounds, float(min(1, 2 * tail)),
        lambda a: bounds(a)[1] / mean - 1, "relative excess variance", n=int(mean),
        detail=f"variance ratio observed/binomial {d / mean:.4f} over {int(mean)} sequences "
               f"with >= {DISPERSION_MIN_ELIGIBLE} eligible")


def count_binomial(seq_hist, cfg, subject):
    """Pearson of the per-sequence selected count against Binomial(n_eligible, p), one
    histogram per n_eligible with sparse tails merged, summed over n."""
    p, total, df, m = cfg.masking_prob, 0.0, 0, 0
    if p in (0.0, 1.0):
        return None
    for n in range(1, seq_hist.shape[0]):
        c = seq_hist[n, :n + 1].astype(np.float64)
        if c.sum() == 0:
            continue
        stat, d = pearson(c, c.sum() * stats.binom.pmf(np.arange(n + 1), n, p))
        total, df, m = total + stat, df + d, m + int(c.sum())
    if df == 0:
        return None
    return chi2_check("per-sequence count ~ Binomial (distribution)", subject, total, df, m,
                      f"{m} sequences, {df} degrees of freedom")
