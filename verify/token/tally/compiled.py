"""The token gate's C passes on a CPU (`count_call.c`, `make_batch.c`): built on first use,
loaded by ctypes, NumPy arrays in and out.

`Counts` (NumPy arrays) decodes a call's outcome codes and adds its invariants, code pairs,
fingerprints, stratum moves, random ids and joint tables in some seventy NumPy operations, at
about a nanosecond a position each, many of them holding the GIL. Here four passes do that
work, each releasing the GIL, so the counting of one call runs beside the next masker call:
`input_terms` (once per batch: what the counts derive from the input alone), `count_call`
(every position of a call), `count_selected` (its selected positions' random ids and joint
tables) and `make_batch` (the batch itself, `batches`). The NumPy formulations stay, and give
the same counts and ids (`tests/test_counts_compiled.py`): they run where there is no
compiler, the build fails, `MLM_VERIFY_NO_COMPILE=1` is set, the vocabulary is too large for
the per-id tables (2**18), or the counters are torch tensors (a GPU).

Built by `mlm_ref.clib` (the compiler `$CC`, else `cc`; the cache folder `$MLM_VERIFY_CACHE`,
else `$XDG_CACHE_HOME/mlm-verify`, else `~/.cache/mlm-verify`).
"""

from __future__ import annotations

import ctypes
import pathlib

import numpy as np

from mlm_ref.clib import CLibrary

from ..host_counts import CODES
from ..power.joint import COUNT_CLASSES

__all__ = ["library", "status", "count_call", "count_selected", "input_terms", "make_batch"]

_p, _i64 = ctypes.c_void_p, ctypes.c_int64


class _Call(ctypes.Structure):
    """`count_call_t` of count_call.c, field for field (pointers as addresses)."""

    _fields_ = [(name, kind) for names, kind in (
        ("x x_after out y eligible sel_base unsel_code strata_rows strata_offset", _p),
        ("repeat_class", _p), ("n_strata pos_offset col_offset id_offset repeat_offset", _i64),
        ("drawable", _p), ("n_tokens", _i64),
        ("prev_code prev_out", _p), ("prev_kind", _i64), ("weights", _p),
        ("seq_len batch padding mask_token", _i64),
        ("code at x_sel out_sel code_sel drawable_sel moved", _p), ("moved_size", _i64),
        ("fingerprint col_selected col_first col_last invariants pairs replay_same", _p))
        for name in names.split()]


class _Input(ctypes.Structure):
    """`input_terms_t` of count_call.c, field for field."""

    _fields_ = [(name, kind) for names, kind in (
        ("x", _p), ("seq_len batch", _i64), ("eligible_id", _p), ("top", _i64),
        ("drawable", _p), ("n_tokens has_sep sep segments", _i64),
        ("eligible sel_base unsel_code nbr seg by_id pos_eligible col_eligible nbr_table "
         "seg_table", _p)) for name in names.split()]


class _Selected(ctypes.Structure):
    """`selected_t` of count_call.c, field for field."""

    _fields_ = [(name, kind) for names, kind in (
        ("n_sel", _i64),
        ("at x out code drawable_out codes col_selected col_first col_last col_eligible "
         "count_class", _p),
        ("seq_len batch n_tokens coarse pos_buckets tables", _i64),
        ("seen_ids seen_originals other_hist orig_hist other_by_orig other_by_pos orig_by_pos "
         "joint_tables collision_sums", _p)) for name in names.split()]


class _Batch(ctypes.Structure):
    """`batch_t` of make_batch.c, field for field."""

    _fields_ = [("seed", ctypes.c_uint64)] + [(name, kind) for names, kind in (
        ("seq_len batch n_tokens mask_token padding has_specials cls sep mask_below", _i64),
        ("id_of columns x", _p)) for name in names.split()]


def _declare(lib) -> None:
    lib.mlm_count_call.argtypes = [ctypes.POINTER(_Call)]
    lib.mlm_count_call.restype = _i64
    lib.mlm_input_terms.argtypes = [ctypes.POINTER(_Input)]
    lib.mlm_input_terms.restype = None
    lib.mlm_count_selected.argtypes = [ctypes.POINTER(_Selected)]
    lib.mlm_count_selected.restype = None
    lib.mlm_make_batch.argtypes = [ctypes.POINTER(_Batch)]
    lib.mlm_make_batch.restype = None


_LIBRARY = CLibrary("count_call", [pathlib.Path(__file__).with_name(f)
                                   for f in ("count_call.c", "make_batch.c")],
                    off_env="MLM_VERIFY_NO_COMPILE", cache_env="MLM_VERIFY_CACHE",
                    declare=_declare)


def library():
    """The loaded library, or None (then `status()` says why); built on the first call."""
    return _LIBRARY.library()


def status() -> str:
    """In words: which compiler built the counting pass, or why NumPy counts instead."""
    return _LIBRARY.status()


def _address(a: np.ndarray, dtype, size: int | None = None) -> int:
    """The address of `a`'s data, once it is known to be what the C side reads: C-contiguous,
    of `dtype`, and (where given) of `size` elements (the C passes index without bounds)."""
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"the C passes need C-contiguous {np.dtype(dtype)} arrays, got "
                        f"{a.dtype} (contiguous: {a.flags.c_contiguous})")
    if size is not None and a.size != size:
        raise ValueError(f"the C passes need {size} elements here, got {a.size}")
    return a.ctypes.data


def count_call(*, x, x_after, out, y, terms: dict, drawable: np.ndarray, prev, prev_kind: int,
               weights: np.ndarray, offsets: tuple[int, int, int, int], table_size: int, config,
               invariants: np.ndarray, pairs: np.ndarray, replay_same: np.ndarray) -> dict:
    """Count one call `[seq_len, batch]` (int64 arrays `x`, `x_after`, `out`, `y`).

    Args:
        terms: the input's terms (`input_terms.derive_input_terms`), with `"c_rows"` (k int32
            arrays `[seq_len, batch]`: each position's row times CODES in the strata read per
            position) and `"c_offsets"` (int64 `[k]`: their first rows times CODES).
        drawable: the bool table `[n_tokens + 2]` (id t drawable: `drawable[t + 1]`).
        prev: `(codes, outputs)` of the call before, or None; `prev_kind` its pair row.
        weights: the fingerprint's int64 weights `[seq_len]`.
        offsets: the position, column, id and repeat-class strata's first rows, times CODES.
        table_size: the stratum table's length (rows times CODES).
        invariants, pairs, replay_same: the counters the call is added to (int64).

    Returns:
        `code` (int32 `[seq_len, batch]`), `moved` (int64 `[table_size]`), `fingerprint`
        (int64 `[batch]`), and of the selected positions `at`, `x`, `out`, `code` and
        `drawable_out` (`[n_selected]`).
    """
    seq_len, batch = x.shape
    n = seq_len * batch
    code, moved = np.empty((seq_len, batch), np.int32), np.empty(table_size, np.int64)
    fingerprint = np.empty(batch, np.int64)
    columns = np.empty((3, batch), np.int64)    # selected count, first and last selected
    at, x_sel, out_sel = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    code_sel, drawable_sel = np.empty(n, np.int32), np.empty(n, np.bool_)
    i64, i32, u8 = np.int64, np.int32, np.bool_
    prev_code, prev_out = prev if prev is not None else (None, None)
    rows = np.array([_address(r, i32, n) for r in terms["c_rows"]], np.int64)
    call = _Call(
        *(_address(a, i64, n) for a in (x, x_after, out, y)),
        _address(terms["eligible"], u8, n), _address(terms["sel_base"], i32, n),
        _address(terms["unsel_code"], i32, n), rows.ctypes.data,
        _address(terms["c_offsets"], i64, len(rows)),
        _address(terms["rep"], i32, config.n_tokens), len(rows), *offsets,
        _address(drawable, u8, config.n_tokens + 2), config.n_tokens,
        None if prev_code is None else _address(prev_code, i32, n),
        None if prev_out is None else _address(prev_out, i64, n), prev_kind,
        _address(weights, i64, seq_len), seq_len, batch, config.padding_token,
        config.mask_token,
        *(_address(a, t) for a, t in ((code, i32), (at, i64), (x_sel, i64), (out_sel, i64),
                                      (code_sel, i32), (drawable_sel, u8), (moved, i64))),
        table_size, _address(fingerprint, i64), *(a.ctypes.data for a in columns),
        *(_address(a, i64, size) for a, size in ((invariants, 5), (pairs, 4 * CODES * CODES),
                                                 (replay_same, 2))))
    k = library().mlm_count_call(ctypes.byref(call))
    return dict(code=code, moved=moved, fingerprint=fingerprint, columns=columns, at=at[:k],
                x=x_sel[:k], out=out_sel[:k], code_sel=code_sel[:k],
                drawable_out=drawable_sel[:k])


def count_selected(*, chosen: dict, codes: np.ndarray, columns: np.ndarray,
                   col_eligible: np.ndarray, count_class: np.ndarray, random_ids, joint,
                   scratch: tuple[np.ndarray, np.ndarray], tables: bool, pos_buckets: int):
    """Add a call's selected positions to the random-id and joint counters.

    Args:
        chosen: `at`, `x`, `out`, `code` and `drawable_out` of the selected positions (as
            `count_call` returns them).
        codes: every position's code, int32 `[seq_len, batch]`; `columns` `count_call`'s.
        col_eligible: the eligible positions of each column (int64 `[batch]`).
        count_class: the joint table's count classes, int64 `[seq_len + 1, seq_len + 1]`.
        random_ids, joint: the `RandomIdCounts` (per-id histograms) and `JointCounts` (with
            collisions) whose NumPy counters are added to.
        scratch: two zeroed int64 arrays `[n_tokens]`, left zeroed.
        tables: add the joint tables (else the collisions alone).
        pos_buckets: the position buckets of the random ids' table.
    """
    i64, (seq_len, batch), k = np.int64, codes.shape, len(chosen["at"])
    v, c1, r = random_ids.config.n_tokens, random_ids.coarse + 1, random_ids
    call = _Selected(
        k, *(_address(chosen[name], i64, k) for name in ("at", "x", "out")),
        _address(chosen["code"], np.int32, k), _address(chosen["drawable_out"], np.bool_, k),
        _address(codes, np.int32), *(_address(a, i64, batch) for a in columns),
        _address(col_eligible, i64, batch), _address(count_class, i64, (seq_len + 1) ** 2),
        seq_len, batch, v, random_ids.coarse, pos_buckets, tables,
        *(_address(a, i64, v) for a in scratch),
        *(_address(a, i64, size) for a, size in (
            (r.other_hist, v + 1), (r.orig_hist, v + 1), (r.other_by_orig, (c1 - 1) * c1),
            (r.other_by_pos, pos_buckets * c1), (r.orig_by_pos, pos_buckets * c1),
            (joint.tables, 3 * (8 + COUNT_CLASSES)), (joint.collision_sums, 3))))
    library().mlm_count_selected(ctypes.byref(call))


def input_terms(x: np.ndarray, config, *, eligible_id: np.ndarray, drawable: np.ndarray,
                sep: int | None, segments: int) -> dict:
    """The per-position parts of an input's terms (`input_terms._per_position`'s, but `xi`).

    Args:
        x: the input, C-contiguous int64 `[seq_len, batch]`.
        config: the masking parameters.
        eligible_id: the bool table `[top + 1]` (ids from `top` on read its last entry).
        drawable: the bool table `[n_tokens + 2]` (id t drawable: `drawable[t + 1]`).
        sep: the [SEP] id, or None.
        segments: the segment count's cap.
    """
    (seq_len, batch), v = x.shape, config.n_tokens
    parts = dict(eligible=np.empty(x.shape, np.bool_), sel_base=np.empty(x.shape, np.int32),
                 unsel_code=np.empty(x.shape, np.int32), by_id=np.empty((v, 2), np.int64),
                 pos_eligible=np.empty(seq_len, np.int64), col_eligible=np.empty(batch, np.int64))
    strata = {"nbr": np.empty(x.shape, np.int32)}
    tables = {"nbr": np.empty(4 * CODES, np.int64)}
    if sep is not None:
        strata["seg"] = np.empty(x.shape, np.int32)
        tables["seg"] = np.empty(segments * CODES, np.int64)
    seg, seg_table = strata.get("seg"), tables.get("seg")
    call = _Input(_address(x, np.int64), seq_len, batch, _address(eligible_id, np.bool_),
                  len(eligible_id) - 1, _address(drawable, np.bool_, v + 2), v, sep is not None,
                  0 if sep is None else sep, segments,
                  *(_address(parts[k], t) for k, t in (("eligible", np.bool_),
                                                       ("sel_base", np.int32),
                                                       ("unsel_code", np.int32))),
                  _address(strata["nbr"], np.int32),
                  None if seg is None else _address(seg, np.int32),
                  *(_address(parts[k], np.int64) for k in ("by_id", "pos_eligible",
                                                           "col_eligible")),
                  _address(tables["nbr"], np.int64),
                  None if seg_table is None else _address(seg_table, np.int64))
    library().mlm_input_terms(ctypes.byref(call))
    return dict(parts, strata=strata, tables=tables)


def make_batch(config, seq_len: int, batch: int, seed: int, *, id_of: np.ndarray,
               mask_below: int) -> np.ndarray:
    """The token gate's CPU batch `[seq_len, batch]` (int64) of `seed` (`batches.make_batch`).

    Args:
        config: the masking parameters.
        seq_len, batch: the shape.
        seed: the batch's seed, in `[0, 2**64)`.
        id_of: the id of each of the 65536 Zipf grid points (int64).
        mask_below: positions whose 16 [MASK] bits fall below this hold `mask_token`.
    """
    x, columns = np.empty((seq_len, batch), np.int64), np.empty((3, batch), np.int64)
    specials = config.no_mask_tokens
    call = _Batch(seed, seq_len, batch, config.n_tokens, config.mask_token,
                  config.padding_token, bool(specials), specials[0] if specials else 0,
                  specials[-1] if specials else 0, mask_below,
                  _address(id_of, np.int64, 1 << 16),
                  columns.ctypes.data, x.ctypes.data)
    library().mlm_make_batch(ctypes.byref(call))
    return x
