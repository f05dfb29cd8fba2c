"""The compiled CPU passes, native and exact mode (`native_cpu.c`, `exact_cpu.c`): built on first
use, loaded by ctypes.

In NumPy the native path's stream (`mlm_torch.cpu`) is ~40 calls, and at `[512, 32]` those
calls, not the data, are the cost: each costs a microsecond or more whatever its length; exact
mode's draws (`mlm_torch.exact`, `mlm_torch.streams`) are threefry hashes of ~110 NumPy calls
each. The C files do the same work in one pass over the positions, a block of 1024 at a time:
`native_cpu.c` copies, fills, makes the SplitMix64 bytes, finds the candidates and writes
their outcomes (a hash per 8 positions and per candidate); `exact_cpu.c` splits the key and
hashes the selection bits of every position and the category bits of the selected ones in
loops the compiler vectorises, for one batch or one key per row (a collator's batch).

Built on first use by `mlm_ref.clib` (the compiler `$CC`, else `cc`; the cache folder
`$MLM_TORCH_CACHE`, else `$XDG_CACHE_HOME/mlm-verify`, else `~/.cache/mlm-verify`). Where there
is no compiler, the build fails or `MLM_TORCH_NO_COMPILE=1` is set, `library()` is None,
`status()` says why, and the callers run their NumPy formulations: the same bits, slower.
"""

from __future__ import annotations

import ctypes
import pathlib

import numpy as np
import torch

from mlm_ref.clib import FLAGS, CLibrary

__all__ = ["library", "status", "outputs", "FLAGS"]

SOURCES = tuple(pathlib.Path(__file__).with_name(f) for f in ("native_cpu.c", "exact_cpu.c"))
HEADER = pathlib.Path(__file__).with_name("cpu_passes.h")       # included by both


def library():
    """The loaded library, or None (then `status()` says why); built on the first call."""
    return _LIBRARY.library()


def status() -> str:
    """In words: which compiler built the loaded pass and where it lies, or why the NumPy
    formulation runs instead."""
    return _LIBRARY.status()


def outputs(x):
    """`(x_masked, y, source)` of a compiled call on the CPU tensor `x`: two new contiguous
    tensors like `x`, and the contiguous ids the pass reads: `x`, or for a strided `x` its
    copy in `x_masked` (the passes read each position before they write it)."""
    x_masked, y = torch.empty(x.shape, dtype=x.dtype), torch.empty(x.shape, dtype=x.dtype)
    if x.is_contiguous():
        return x_masked, y, x
    np.copyto(x_masked.numpy(), x.numpy())      # NumPy: on this thread, not torch's pool
    return x_masked, y, x_masked


def _declare(lib) -> None:
    """Argument and result types of the library's functions (pointers as integers)."""
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    for fn in (lib.mlm_mask_int64, lib.mlm_mask_int32, lib.mlm_exact_int64,
               lib.mlm_exact_int32):
        fn.argtypes = [p, p, p, i64, p, p, p, p]
        fn.restype = i64
    for fn in (lib.mlm_exact_rows_int64, lib.mlm_exact_rows_int32):
        fn.argtypes = [p, p, p, i64, i64, p, p, p, p]
        fn.restype = i64


_LIBRARY = CLibrary("native_cpu", SOURCES, (HEADER,), off_env="MLM_TORCH_NO_COMPILE",
                    cache_env="MLM_TORCH_CACHE", declare=_declare)
