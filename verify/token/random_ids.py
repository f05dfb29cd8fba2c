"""Counts and checks of the random replacements: which ids a masker draws, and from what.

The contract: a random replacement is uniform over the drawable ids (`0 .. n_tokens-1` minus
`random_exclude`), whatever the position, the original token or anything else. The observer
sees a random draw only when it lands on neither the original nor `mask_token` (an *other*
outcome), so each expectation below is the uniform law with exactly those ids taken out.
Every test is two-sided (`verify.token.power.two_sided`): ids spread more evenly than
independent draws spread them (drawn without replacement, in turn) fail too.
"""

from __future__ import annotations

import math

import numpy as np

from mlm_ref.config import MaskingConfig

from .host_counts import COARSE_BINS, FULL_HISTOGRAM_MAX, POS_BUCKETS, HostCounts
from ..engine.primitives import extreme_binomial_check
from .power.two_sided import binomial_two_sided, gof_check

__all__ = ["random_id_checks", "other_id_weights", "coarse_drawable_counts",
           "representative_original"]



class RandomIdCounts:
    """The selected positions' ids, counted per call beside `counts.Counts` (in its array
    namespace `xp`, on `device`): visible random ids per id (`full`: a vocabulary of at most
    `FULL_HISTOGRAM_MAX`) or per id range, against the original's range and the position."""

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, device, xp):
        self.config, self.seq_len, self.batch, self.xp = config, seq_len, batch, xp
        v = config.n_tokens
        self.full, self.coarse = v <= FULL_HISTOGRAM_MAX, min(COARSE_BINS, v)
        z = lambda *n: xp.zeros(n, xp.int64, device)  # noqa: E731
        c1 = self.coarse + 1
        self.other_hist = z(v + 1) if self.full else None       # [n_tokens + 1]
        self.orig_hist = z(v + 1) if self.full else None        # [n_tokens + 1]
        self.coarse_other, self.coarse_orig = z(c1), z(c1)
        self.other_by_orig = z(self.coarse * c1)                # [orig bin, other bin]
        self.other_by_pos = z(POS_BUCKETS * c1)                 # [pos bucket, other bin]
        self.orig_by_pos = z(POS_BUCKETS * c1)                  # [pos bucket, orig bin]

    def update(self, at, x, out, code, drawable_out) -> None:
        """Add a call's selected positions: flat indices `at`, input, output, code and whether
        the output is drawable, each [n_selected]."""
        v, c, xp = self.config.n_tokens, self.coarse, self.xp
        pos = at // self.batch
        other = (code == 4) & drawable_out  # a visible random id, drawable original
        orig = code <= 4                    # drawable originals that a random draw could hit
        visible = ((code == 4) | (code == 7)) & drawable_out
        if self.full:
            self.other_hist += xp.bincount(xp.select(visible, out, v), minlength=v + 1)
            self.orig_hist += xp.bincount(xp.select(orig, x, v), minlength=v + 1)
        out_bin = xp.select(visible, xp.clip(out, 0, v - 1) * c // v, c)
        x_bin = xp.clip(x, 0, v - 1) * c // v
        if not self.full:  # else summed from the per-id histograms on the host
            self.coarse_other += xp.bincount(out_bin, minlength=c + 1)
            self.coarse_orig += xp.bincount(xp.select(orig, x_bin, c), minlength=c + 1)
        c1 = c + 1
        other_bin = xp.select(other, out_bin, c)
        self.other_by_orig += xp.bincount(xp.select(other, x_bin, 0) * c1 + other_bin,
                                          minlength=c * c1)
        bucket = pos * POS_BUCKETS // self.seq_len
        self.other_by_pos += xp.bincount(bucket * c1 + other_bin, minlength=POS_BUCKETS * c1)
        self.orig_by_pos += xp.bincount(bucket * c1 + xp.select(other, x_bin, c),
                                        minlength=POS_BUCKETS * c1)

    def tensors(self) -> list:
        """Every counter (sums over calls)."""
        return [t for t in (self.other_hist, self.orig_hist, self.coarse_other,
                            self.coarse_orig, self.other_by_orig, self.other_by_pos,
                            self.orig_by_pos) if t is not None]

    def host(self) -> dict:
        """The `HostCounts` fields, as NumPy arrays (coarse ranges summed from the per-id
        histograms where these are kept)."""
        get = lambda t: None if t is None else self.xp.to_numpy(t)  # noqa: E731
        c1, v = self.coarse + 1, self.config.n_tokens
        coarse_other, coarse_orig = get(self.coarse_other), get(self.coarse_orig)
        if self.full:
            edges = np.append(np.arange(v) * self.coarse // v, self.coarse)   # the last: rest
            coarse_other = np.bincount(edges, get(self.other_hist), c1).astype(np.int64)
            coarse_orig = np.bincount(edges, get(self.orig_hist), c1).astype(np.int64)
        return dict(other_hist=get(self.other_hist), orig_hist=get(self.orig_hist),
                    coarse_other=coarse_other, coarse_orig=coarse_orig,
                    other_by_orig=get(self.other_by_orig).reshape(self.coarse, c1),
                    other_by_pos=get(self.other_by_pos).reshape(POS_BUCKETS, c1),
                    orig_by_pos=get(self.orig_by_pos).reshape(POS_BUCKETS, c1))

def random_id_checks(h: HostCounts, cfg: MaskingConfig, subject: str) -> list:
    """(name, check or None) of every random-id check."""
    return [("random ids uniform (all ids)", random_ids_all(h, cfg, subject)),
            ("random ids uniform (ranges)", random_ids_coarse(h, cfg, subject)),
            ("random ids: most extreme single id", random_ids_extreme(h, cfg, subject)),
            ("random ids independent of the original's id range",
             random_ids_by_original(h, cfg, subject)),
            ("random ids independent of position", random_ids_by_position(h, cfg, subject)),
            ("random ids differ between replays (same input, new seed)",
             random_ids_replayed(h, cfg, subject))]


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
    w = other_id_weights(cfg, h.selected, h.orig_hist)
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
    return gof_check("random ids uniform (all ids)", subject, [oe],
                     f"{int(oe[0].sum())} visible random ids over {cfg.n_tokens} ids")


def random_ids_coarse(h, cfg, subject):
    """Pearson over 64 equal id ranges: a range or modulo bias, with few degrees of freedom."""
    if cfg.randomize_prob == 0:
        return None
    c = min(COARSE_BINS, cfg.n_tokens)
    w = coarse_drawable_counts(cfg, c) * h.selected - h.coarse_orig[:c]
    obs = h.coarse_other[:c].astype(np.float64)
    n = obs.sum()
    if n == 0:
        return None
    return gof_check("random ids uniform (ranges)", subject, [(obs, n * w / w.sum())],
                     f"{int(n)} visible random ids over {c} equal id ranges")


def random_ids_extreme(h, cfg, subject):
    """The most extreme single id (exact binomial tails, Bonferroni over the 2K tails): one
    missing or doubled id is caught even when the all-ids Pearson is not."""
    oe = _other_expected(h, cfg)
    if oe is None:
        return None
    obs, exp = oe
    keep = exp > 0
    obs, exp, n, ids = obs[keep], exp[keep], int(obs[keep].sum()), np.flatnonzero(keep)
    e_med = float(np.median(exp)) if exp.size else math.nan
    return extreme_binomial_check(
        "random ids: most extreme single id", subject, obs, n, exp / max(n, 1),
        lambda crit: crit * math.sqrt(e_med) / e_med, "relative change of one id",
        lambda i: f"id {ids[i]}: expected {exp[i]:.1f}, observed {obs[i]:.0f}")


def _row_expected(cfg: MaskingConfig, bins: int, diagonal: np.ndarray) -> np.ndarray:
    """Expected bin weights of a visible random id for originals spread as `diagonal` over the
    bins: every drawable id but `mask_token` equally, minus each draw's own original."""
    return coarse_drawable_counts(cfg, bins) * diagonal.sum() - diagonal


def _conditional_gof(name, subject, observed_rows, originals_rows, cfg, what):
    """Sum over rows of Pearson's goodness of fit of each row's visible random ids to the
    uniform law given that row's originals (`originals_rows[r, b]`: originals in bin b)."""
    if cfg.randomize_prob == 0:
        return None
    c = observed_rows.shape[1] - 1
    parts = []
    for obs, orig in zip(observed_rows[:, :c].astype(np.float64),
                         originals_rows[:, :c].astype(np.float64)):
        m = obs.sum()
        w = _row_expected(cfg, c, orig)
        if m > 0 and w.sum() > 0:
            parts.append((obs, m * w / w.sum()))
    n = int(sum(o.sum() for o, _ in parts))
    return gof_check(name, subject, parts, f"{n} visible random ids, {what}")


def random_ids_by_original(h, cfg, subject):
    """Rows by the original's id range: a draw that copies or follows the input shows here."""
    c = h.other_by_orig.shape[0]
    diag = np.zeros((c, c + 1))
    diag[np.arange(c), np.arange(c)] = h.other_by_orig[:, :c].sum(1)
    return _conditional_gof("random ids independent of the original's id range", subject,
                            h.other_by_orig, diag, cfg, f"{c} rows by the original's id range")


def random_ids_by_position(h, cfg, subject):
    """Rows by position bucket (eighths of the sequence)."""
    return _conditional_gof("random ids independent of position", subject, h.other_by_pos,
                            h.orig_by_pos, cfg, f"{h.other_by_pos.shape[0]} position buckets")


def random_ids_replayed(h, cfg, subject):
    """Where both calls of a replay drew a visible random id at a position, the two ids agree
    with probability 1/K (K ids are possible there); more agreement means the draw ignores
    the seed, less that the second draw avoids the first (two-sided, exact binomial)."""
    n, same = h.replay_same_other
    k = cfg.n_random - 1 - (1 if cfg.is_random_id(cfg.mask_token) else 0)
    if n == 0 or k <= 1:
        return None
    return binomial_two_sided("random ids differ between replays (same input, new seed)",
                              subject, same, n, 1.0 / k, "share of equal ids")
