"""Joint laws of the token-level contract, counted beside `Counts` on the device.

Each marginal law can be exact while the laws are tied together: the category of a selected
position must not depend on *how* it was selected. The contract draws a position's category
independently of every selection, so for a selected position with a drawable original the
outcome (`[MASK]`, original, other) has one law whatever

* its neighbours' selection (left and right neighbour selected or not: a category draw reused
  from a neighbour's selection draw, or "no two [MASK]s in a row", shows here);
* its order among the selected positions of its sequence (only, first, middle, last: categories
  handed out down a list of the selected);
* how many were selected in its sequence, against Binomial(n_eligible, p) (eight classes of
  the count's mid-p value: categories that make up for a count, a cap that turns the excess
  into "unchanged").

And random ids are independent draws within a call: the number of equal pairs among a call's
visible random ids has an exact mean and variance under the contract
(`two_sided.collision_moments`), so ids drawn without replacement (too few collisions) fail as
surely as ids shared between positions (too many).

Everything is a sum over calls of integer counts (`tensors`), so a distributed run sums it
exactly like the other counters.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from mlm_ref.config import MaskingConfig

if TYPE_CHECKING:  # torch is imported where it counts (`position_codes`)
    import torch

__all__ = ["JointCounts", "position_codes", "COUNT_CLASSES", "ORDER_NAMES", "NEIGHBOUR_NAMES"]

COUNT_CLASSES = 8
ORDER_NAMES = ("only selected", "first selected", "middle", "last selected")
NEIGHBOUR_NAMES = ("neither neighbour selected", "right selected", "left selected",
                   "both selected")


def position_codes(cfg: MaskingConfig, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor,
                   ineligible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The harness's code of every position (`verify.token.counts`: 0 ineligible, 1 eligible
    not selected, 2..4 selected with a drawable original as mask / original / other, 5..7 the
    same for other originals) and the number of positions breaking each exact invariant
    (`counts.INVARIANTS` minus "input not mutated", in that order), for any shape."""
    import torch  # the token gate's call shapes count on the device; a stream needs no torch
    eligible = ~torch.isin(x, ineligible)
    labelled = y != cfg.padding_token
    sel = labelled & eligible
    is_mask, is_orig = out == cfg.mask_token, out == x

    def drawable(t):
        ok = (t >= 0) & (t < cfg.n_tokens)
        if cfg.random_exclude:
            ok &= ~torch.isin(t, torch.tensor(cfg.random_exclude, device=t.device))
        return ok
    outcome = torch.where(is_mask, 0, torch.where(is_orig, 1, 2))
    base = 2 + 3 * (~drawable(x)).long()
    code = torch.where(sel, outcome + base, eligible.long())
    broken = torch.stack([(labelled & (y != x)).sum(), (~labelled & (out != x)).sum(),
                          (labelled & ~eligible).sum(),
                          (labelled & ~is_mask & ~is_orig & ~drawable(out)).sum()])
    return code, broken


@functools.lru_cache(maxsize=16)
def _count_class_table(seq_len: int, p: float) -> np.ndarray:
    """[n_eligible, n_selected] -> one of COUNT_CLASSES classes of the count's mid-p value
    (read-only: one table per shape and rate, shared by every run in the process)."""
    t = np.zeros((seq_len + 1, seq_len + 1), np.int64)
    if 0 < p < 1:
        n, k = np.tril_indices(seq_len + 1)          # every 0 <= k <= n, row n = 0 left at 0
        n, k = n[1:], k[1:]
        midp = stats.binom.cdf(k - 1, n, p) + 0.5 * stats.binom.pmf(k, n, p)
        t[n, k] = np.clip((midp * COUNT_CLASSES).astype(np.int64), 0, COUNT_CLASSES - 1)
    t.flags.writeable = False
    return t


class JointCounts:
    """Joint tables of one masker's run, `[seq_len, batch]` calls, on `device`, in the array
    namespace `xp` (`verify.engine.frameworks`: torch tensors, or NumPy arrays for a stream).

    Args:
        config: the masking parameters.
        seq_len: length of the sequences (dimension 0).
        device: where the counters live.
        collisions: count equal pairs of random ids per call (needs a bincount over the
            vocabulary per call; off above `counts.FULL_HISTOGRAM_MAX`).
    """

    def __init__(self, config: MaskingConfig, seq_len: int, device, collisions: bool, xp):
        self.config, self.collisions, self.xp = config, collisions, xp
        z = lambda *n: xp.zeros(n, xp.int64, device)  # noqa: E731
        # [stratum, outcome]: 4 neighbour classes, 4 order classes, COUNT_CLASSES count classes
        self.tables = z(8 + COUNT_CLASSES, 3)
        self.collision_sums = z(3)              # equal pairs, pairs apart, pairs same original
        self.count_class = xp.asarray(_count_class_table(seq_len, config.masking_prob),
                                 device=device)
        self._pos = xp.arange(seq_len, xp.int16, device)[:, None]

    def update(self, codes, *, at, code, x, out, drawable_out, tables: bool = True):
        """Add one call: `codes` `[seq_len, batch]`, and of its selected positions the flat
        indices `at` with their codes, input, output and drawable outputs ([n_selected]): its
        collisions, and with `tables` its joint tables (the runner tabulates every other call,
        the first of each replayed pair: any choice of calls made without looking at the
        outputs keeps the null, and half the calls halve the cost). Only the selected
        positions are visited (one bincount over all three tables)."""
        xp = self.xp
        keep = xp.flatnonzero(code <= 4)                                 # drawable originals
        at, cat = xp.take(at, keep), xp.astype(xp.take(code, keep) - 2, xp.int64)
        if self.collisions:
            visible = xp.take(keep, xp.flatnonzero((cat == 2) & xp.take(drawable_out, keep)))
            self._collide(xp.take(x, visible), xp.take(out, visible))
        if tables:
            self._tables(codes, at, cat)

    def _tables(self, code, at, cat):
        (seq_len, batch), xp = code.shape, self.xp
        sel = code >= 2                                                 # [seq_len, batch]
        pos, col = at // batch, at % batch
        left = (pos > 0) & xp.take(sel, xp.clip(at - batch, lo=0))
        right = (pos < seq_len - 1) & xp.take(sel, xp.clip(at + batch, hi=seq_len * batch - 1))
        neighbours = 2 * xp.astype(left, xp.int64) + xp.astype(right, xp.int64)
        k = sel.sum(0)                                                  # [batch]
        # the first and last selected position of each column: two reductions, no cumsum
        # (`select`: a branch-free `where`, the conditions being random)
        first = xp.take(xp.amin(xp.select(sel, self._pos, seq_len), 0), col)   # [n_sel]
        last = xp.take(xp.amax(xp.select(sel, self._pos, -1), 0), col)         # [n_sel]
        order = xp.select(xp.take(k, col) == 1, 0, xp.select(
            pos == first, 1, xp.select(pos == last, 3, 2)))
        count = xp.take(self.count_class[(code >= 1).sum(0), k], col)
        stratum = xp.concatenate([neighbours, 4 + order, 8 + count])
        self.tables += xp.bincount(stratum * 3 + xp.tile(cat, 3),
                                   minlength=xp.numel(self.tables)).reshape(self.tables.shape)

    def _collide(self, originals, ids):
        """Equal pairs among a call's visible random `ids` (their `originals` beside them)."""
        v, xp = self.config.n_tokens, self.xp
        h = xp.bincount(xp.clip(ids, 0, v - 1), minlength=v)
        m = xp.bincount(xp.clip(originals, 0, v - 1), minlength=v)
        n = h.sum()
        same = (m * (m - 1) // 2).sum()
        self.collision_sums += xp.stack([(h * (h - 1) // 2).sum(), n * (n - 1) // 2 - same,
                                            same])

    def tensors(self) -> list:
        """Every counter (sums over calls)."""
        return [self.tables, self.collision_sums]

    def host(self) -> dict:
        get = self.xp.to_numpy
        t = get(self.tables)
        return {"neighbours": t[:4], "order": t[4:8], "count": t[8:],
                "collisions": tuple(int(v) for v in get(self.collision_sums))
                if self.collisions else None}
