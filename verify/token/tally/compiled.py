"""The token gate's per-position counting in C (`count_call.c`): built on first use, loaded by
ctypes, NumPy arrays in and out.

`Counts` (NumPy arrays) decodes a call's outcome codes and adds its invariants, code pairs,
fingerprints and stratum moves in some thirty NumPy passes over the call, at about a
nanosecond a position each, most of them holding the GIL; the C pass does them in one pass and
releases the GIL, so the counting of one call runs beside the next masker call. The NumPy
formulation stays, and gives the same counts (`tests/test_counts_compiled.py`): it runs where
there is no compiler, the build fails, `MLM_VERIFY_NO_COMPILE=1` is set, the vocabulary is too
large for the per-id tables, or the counters are torch tensors (a GPU).

Built by `mlm_ref.clib` (the compiler `$CC`, else `cc`; the cache folder `$MLM_VERIFY_CACHE`,
else `$XDG_CACHE_HOME/mlm-verify`, else `~/.cache/mlm-verify`).
"""

from __future__ import annotations

import ctypes
import pathlib

import numpy as np

from mlm_ref.clib import CLibrary

__all__ = ["library", "status", "count_call"]

_p, _i64 = ctypes.c_void_p, ctypes.c_int64


class _Call(ctypes.Structure):
    """`count_call_t` of count_call.c, field for field (pointers as addresses)."""

    _fields_ = [(name, kind) for names, kind in (
        ("x x_after out y eligible sel_base unsel_code strata_rows strata_offset", _p),
        ("repeat_class", _p), ("n_strata pos_offset col_offset id_offset repeat_offset", _i64), ("drawable", _p), ("n_tokens", _i64),
        ("prev_code prev_out", _p), ("prev_kind", _i64), ("weights", _p),
        ("seq_len batch padding mask_token", _i64),
        ("code at x_sel out_sel code_sel drawable_sel moved", _p), ("moved_size", _i64),
        ("fingerprint invariants pairs replay_same", _p)) for name in names.split()]


def _declare(lib) -> None:
    lib.mlm_count_call.argtypes = [ctypes.POINTER(_Call)]
    lib.mlm_count_call.restype = _i64


_LIBRARY = CLibrary("count_call", [pathlib.Path(__file__).with_name("count_call.c")],
                    off_env="MLM_VERIFY_NO_COMPILE", cache_env="MLM_VERIFY_CACHE",
                    declare=_declare)


def library():
    """The loaded library, or None (then `status()` says why); built on the first call."""
    return _LIBRARY.library()


def status() -> str:
    """In words: which compiler built the counting pass, or why NumPy counts instead."""
    return _LIBRARY.status()


def _address(a: np.ndarray, dtype) -> int:
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"count_call needs C-contiguous {np.dtype(dtype)} arrays, got "
                        f"{a.dtype} (contiguous: {a.flags.c_contiguous})")
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
    at, x_sel, out_sel = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    code_sel, drawable_sel = np.empty(n, np.int32), np.empty(n, np.bool_)
    i64, i32, u8 = np.int64, np.int32, np.bool_
    prev_code, prev_out = prev if prev is not None else (None, None)
    rows = np.array([_address(r, i32) for r in terms["c_rows"]], np.int64)
    call = _Call(
        *(_address(a, i64) for a in (x, x_after, out, y)), _address(terms["eligible"], u8),
        _address(terms["sel_base"], i32), _address(terms["unsel_code"], i32),
        rows.ctypes.data, _address(terms["c_offsets"], i64), _address(terms["rep"], i32),
        len(rows), *offsets,
        _address(drawable, u8), config.n_tokens,
        None if prev_code is None else _address(prev_code, i32),
        None if prev_out is None else _address(prev_out, i64), prev_kind,
        _address(weights, i64), seq_len, batch, config.padding_token, config.mask_token,
        *(_address(a, t) for a, t in ((code, i32), (at, i64), (x_sel, i64), (out_sel, i64),
                                      (code_sel, i32), (drawable_sel, u8), (moved, i64))),
        table_size, *(_address(a, i64) for a in (fingerprint, invariants, pairs, replay_same)))
    k = library().mlm_count_call(ctypes.byref(call))
    return dict(code=code, moved=moved, fingerprint=fingerprint, at=at[:k], x=x_sel[:k],
                out=out_sel[:k], code_sel=code_sel[:k], drawable_out=drawable_sel[:k])
