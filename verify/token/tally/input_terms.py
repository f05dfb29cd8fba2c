"""What the token gate's counts derive from an input alone (`Counts.input_terms`): computed once
per batch and shared by its replay and by every masker fed it (`verify.token.counts`).
"""

from __future__ import annotations

import numpy as np

from ..host_counts import CODES, REPEAT_CLASSES, SEGMENTS

__all__ = ["derive_input_terms"]


def derive_input_terms(counts, x) -> dict:
    """The terms of the input `x` (int64 `[seq_len, batch]`, the counters' arrays) for the
    `counts.Counts` `counts`: which positions are eligible, the codes of their unselected and
    [MASK] outcomes, each position's stratum rows, and the table a call adds if it selects
    nothing."""
    v, xp = counts.config.n_tokens, counts.xp
    eligible = counts.is_eligible(x)
    drawable_x = counts.drawable(x)
    xi = xp.clip(x, 0, v - 1)   # ids past the vocabulary are special ones: code 0
    terms = {"eligible": eligible,
             "sel_base": 2 + 3 * xp.astype(~drawable_x, xp.int32),  # code of a [MASK]
             "unsel_code": xp.astype(eligible, xp.int32)}
    # the neighbourhood: whether the left and the right neighbour are eligible (an edge of
    # the sequence counts as ineligible): boundaries are where off-by-ones live
    edge = xp.zeros(eligible[:1].shape, xp.bool, counts.device)
    left = xp.astype(xp.concatenate([edge, eligible[:-1]]), xp.int32)
    right = xp.astype(xp.concatenate([eligible[1:], edge]), xp.int32)
    strata = {"nbr": (2 * left + right) * CODES}      # per position; pos and col: `Counts._moved`
    if counts.sep is not None:
        is_sep = xp.astype(x == counts.sep, xp.int32)
        strata["seg"] = xp.clip(xp.cumsum_rows(is_sep) - is_sep, hi=SEGMENTS - 1) * CODES
    # the table a call would add if it selected nothing (every position at its unselected
    # code: 0 ineligible, 1 eligible): a call then visits its selected positions alone
    # (`Counts._moved`), and this is shared by its replay and by every masker fed the input
    unselected = xp.zeros((xp.numel(counts.table) // CODES, CODES), xp.int64, counts.device)
    for name, axis in (("pos", 1), ("col", 0)):  # ineligible and eligible of each
        o, size, here = counts.offset[name], counts.strata_sizes[name], eligible.sum(axis)
        unselected[o:o + size, :2] = xp.stack([x.shape[axis] - here, here], 1)
    if not counts.id_table:  # else the id ranges are summed from the id table on the host
        strata["idbin"] = xp.astype(xi * counts.coarse // v, xp.int32) * CODES
    else:  # the id and its repeat class: per id, then per selected position (`Counts._moved`)
        by_id = xp.bincount((xi * 2 + terms["unsel_code"]).reshape(-1),
                            minlength=2 * v).reshape(v, 2)       # [n_tokens, code 0 / 1]
        occurrences = by_id[:, 1]                                # eligible, per id
        # how much more often than a uniform id the id occurs in this call, in octaves
        share = xp.astype(occurrences, xp.float64) * (v / xp.numel(xi))
        rep = xp.clip(xp.astype(xp.log2(xp.clip(share, lo=1e-9)) + REPEAT_CLASSES // 2,
                                xp.int32), 0, REPEAT_CLASSES - 1)        # [n_tokens]
        unselected[counts.offset["id"]:counts.offset["id"] + v, :2] = by_id
        o = counts.offset["repeat"]
        for c in range(2):
            unselected[o:o + REPEAT_CLASSES, c] = xp.bincount(
                rep, minlength=REPEAT_CLASSES, weights=by_id[:, c])
        terms.update(occurrences=occurrences, xi=xi, rep=rep)
    for name in ("nbr", "seg", "idbin"):
        if name in strata:
            o, size = counts.offset[name], counts.strata_sizes[name]
            unselected[o:o + size] = xp.bincount(
                (strata[name] + terms["unsel_code"]).reshape(-1),
                minlength=size * CODES).reshape(size, CODES)
    if counts.compiled:  # the C pass reads every stratum past position and column alike
        for k in ("eligible", "sel_base", "unsel_code"):
            terms[k] = np.ascontiguousarray(terms[k])
        terms["c_rows"] = [np.ascontiguousarray(strata[k], np.int32) for k in strata]
        terms["c_offsets"] = np.array([counts.offset[k] * CODES for k in strata], np.int64)
        terms["rep"] = np.ascontiguousarray(rep, np.int32)
    terms["strata"], terms["unselected"] = strata, unselected
    return terms
