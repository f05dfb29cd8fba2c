"""What the token gate's counts derive from an input alone (`Counts.input_terms`): computed once
per batch and shared by its replay and by every masker fed it (`verify.token.counts`).

Two formulations of the per-position part, one result: array operations (NumPy or torch,
`_per_position`) and, where `Counts.compiled`, one C pass (`compiled.input_terms`); the tables
are then assembled alike (`_assemble`).
"""

from __future__ import annotations

import numpy as np

from ..host_counts import CODES, REPEAT_CLASSES, SEGMENTS
from . import compiled

__all__ = ["derive_input_terms"]


def derive_input_terms(counts, x) -> dict:
    """The terms of the input `x` (int64 `[seq_len, batch]`, the counters' arrays) for the
    `counts.Counts` `counts`: which positions are eligible, the codes of their unselected and
    [MASK] outcomes, each position's stratum rows, and the table a call adds if it selects
    nothing."""
    if counts.compiled:
        parts = compiled.input_terms(np.ascontiguousarray(x), counts.config,
                                     eligible_id=counts.eligible_table,
                                     drawable=counts.drawable_table, sep=counts.sep,
                                     segments=SEGMENTS)
    else:
        parts = _per_position(counts, x)
    return _assemble(counts, x.shape, parts)


def _per_position(counts, x) -> dict:
    """`_assemble`'s parts in array operations (the namespace `counts.xp`)."""
    v, xp = counts.config.n_tokens, counts.xp
    eligible = counts.is_eligible(x)
    drawable_x = counts.drawable(x)
    xi = xp.clip(x, 0, v - 1)   # ids past the vocabulary are special ones: code 0
    unsel = xp.astype(eligible, xp.int32)
    # the neighbourhood: whether the left and the right neighbour are eligible (an edge of
    # the sequence counts as ineligible): boundaries are where off-by-ones live
    edge = xp.zeros(eligible[:1].shape, xp.bool, counts.device)
    left = xp.astype(xp.concatenate([edge, eligible[:-1]]), xp.int32)
    right = xp.astype(xp.concatenate([eligible[1:], edge]), xp.int32)
    strata = {"nbr": (2 * left + right) * CODES}      # per position; pos and col: `Counts._moved`
    if counts.sep is not None:
        is_sep = xp.astype(x == counts.sep, xp.int32)
        strata["seg"] = xp.clip(xp.cumsum_rows(is_sep) - is_sep, hi=SEGMENTS - 1) * CODES
    by_id = None
    if not counts.id_table:  # else the id ranges are summed from the id table on the host
        strata["idbin"] = xp.astype(xi * counts.coarse // v, xp.int32) * CODES
    else:  # ineligible and eligible occurrences of each id
        by_id = xp.bincount((xi * 2 + unsel).reshape(-1), minlength=2 * v).reshape(v, 2)
    tables = {name: xp.bincount((rows + unsel).reshape(-1),
                                minlength=counts.strata_sizes[name] * CODES)
              for name, rows in strata.items()}
    return dict(eligible=eligible, sel_base=2 + 3 * xp.astype(~drawable_x, xp.int32),
                unsel_code=unsel, strata=strata, tables=tables, by_id=by_id, xi=xi,
                pos_eligible=eligible.sum(1), col_eligible=eligible.sum(0))


def _assemble(counts, shape: tuple[int, int], parts: dict) -> dict:
    """The terms from the per-position `parts`: the unselected table (every position at its
    unselected code: 0 ineligible, 1 eligible), so that a call visits its selected positions
    alone (`Counts._moved`, the C pass), and each id's repeat class."""
    v, xp, (seq_len, batch) = counts.config.n_tokens, counts.xp, shape
    terms = {k: parts[k] for k in ("eligible", "sel_base", "unsel_code")}
    unselected = xp.zeros((xp.numel(counts.table) // CODES, CODES), xp.int64, counts.device)
    for name, here, of in (("pos", parts["pos_eligible"], batch),
                           ("col", parts["col_eligible"], seq_len)):
        o, size = counts.offset[name], counts.strata_sizes[name]
        unselected[o:o + size, :2] = xp.stack([of - here, here], 1)
    by_id = parts["by_id"]                                       # [n_tokens, code 0 / 1]
    if by_id is not None:  # the id and its repeat class: per id, then per selected position
        occurrences = by_id[:, 1]                                # eligible, per id
        # how much more often than a uniform id the id occurs in this call, in octaves
        share = xp.astype(occurrences, xp.float64) * (v / (seq_len * batch))
        rep = xp.clip(xp.astype(xp.log2(xp.clip(share, lo=1e-9)) + REPEAT_CLASSES // 2,
                                xp.int32), 0, REPEAT_CLASSES - 1)        # [n_tokens]
        unselected[counts.offset["id"]:counts.offset["id"] + v, :2] = by_id
        o = counts.offset["repeat"]
        for c in range(2):
            unselected[o:o + REPEAT_CLASSES, c] = xp.bincount(
                rep, minlength=REPEAT_CLASSES, weights=by_id[:, c])
        terms.update(occurrences=occurrences, rep=rep)
        if "xi" in parts:  # the array formulation's clipped ids (`Counts._moved`)
            terms["xi"] = parts["xi"]
    for name, table in parts["tables"].items():
        o, size = counts.offset[name], counts.strata_sizes[name]
        unselected[o:o + size] = table.reshape(size, CODES)
    strata = parts["strata"]
    if counts.compiled:  # the C pass reads every stratum past position and column alike
        terms["col_eligible"] = parts["col_eligible"]
        terms["c_rows"] = [np.ascontiguousarray(strata[k], np.int32) for k in strata]
        terms["c_offsets"] = np.array([counts.offset[k] * CODES for k in strata], np.int64)
        terms["rep"] = np.ascontiguousarray(rep, np.int32)
    terms["strata"], terms["unselected"] = strata, unselected
    return terms
