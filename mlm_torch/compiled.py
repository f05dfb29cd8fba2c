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

Built like Triton builds its launchers: the C compiler (`$CC`, else `cc`) compiles the files
once per machine into a cache folder (`$MLM_TORCH_CACHE`, else `$XDG_CACHE_HOME/mlm-verify`,
else `~/.cache/mlm-verify`; a temporary folder when that cannot be written), under a name
that hashes the sources, the compiler and the flags; a finished library is renamed into place,
so processes that build it at once (DataLoader workers) never load a partial file. Where there
is no compiler, the build fails or `MLM_TORCH_NO_COMPILE=1` is set, `library()` is None,
`status()` says why, and the callers run their NumPy formulations: the same bits, slower.
ctypes releases the GIL during the call.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import pathlib
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np
import torch

__all__ = ["library", "status", "outputs", "FLAGS"]

SOURCES = tuple(pathlib.Path(__file__).with_name(f) for f in ("native_cpu.c", "exact_cpu.c"))
HEADER = pathlib.Path(__file__).with_name("cpu_passes.h")       # included by both
# no -march=native: a cache folder may be shared by machines with different CPUs
FLAGS = ("-O3", "-std=c99", "-shared", "-fPIC")

_lock = threading.Lock()
_state: dict = {}            # "lib": the loaded library or None; "status": why, in words


def _new_lock() -> None:
    """In a forked child: a fresh lock (a thread of the parent may have held the old one)."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock)


def library():
    """The loaded library, or None (then `status()` says why); built on the first call."""
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                lib, why = _load()
                _state["status"] = why          # first: "lib" present means both are
                _state["lib"] = lib
    return _state["lib"]


def status() -> str:
    """In words: which compiler built the loaded pass and where it lies, or why the NumPy
    formulation runs instead."""
    library()
    return _state["status"]


def outputs(x):
    """`(x_masked, y, source)` of a compiled call on the CPU tensor `x`: two new contiguous
    tensors like `x`, and the contiguous ids the pass reads: `x`, or for a strided `x` its
    copy in `x_masked` (the passes read each position before they write it)."""
    x_masked, y = torch.empty(x.shape, dtype=x.dtype), torch.empty(x.shape, dtype=x.dtype)
    if x.is_contiguous():
        return x_masked, y, x
    np.copyto(x_masked.numpy(), x.numpy())      # NumPy: on this thread, not torch's pool
    return x_masked, y, x_masked


def _load():
    """`(lib, status)`: the library with its signatures declared, or None and the reason."""
    if os.environ.get("MLM_TORCH_NO_COMPILE", "") not in ("", "0"):
        return None, "not compiled: MLM_TORCH_NO_COMPILE is set"
    cc = shlex.split(os.environ.get("CC") or "cc")      # as make reads it: "ccache gcc"
    if not cc or shutil.which(cc[0]) is None:
        return None, f"not compiled: no C compiler ({' '.join(cc)!r} not found)"
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, timeout=60).stdout
        path = _built(cc, version)
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:                 # a damaged file in the cache: built again, once
            path.unlink(missing_ok=True)
            lib = ctypes.CDLL(str(_built(cc, version)))
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"not compiled: {e}"
    _declare(lib)
    name = version.decode(errors="replace").strip().split("\n")[0] or " ".join(cc)
    return lib, f"compiled by {name} into {path}"


def _built(cc: list[str], version: bytes) -> pathlib.Path:
    """The library's path in the cache, compiled there first if it is missing."""
    source = b"\0".join(f.read_bytes() for f in (*SOURCES, HEADER))
    tag = hashlib.sha256(b"\0".join([source, version, " ".join(FLAGS).encode(),
                                     platform.machine().encode(), sys.platform.encode()]))
    name = f"native_cpu-{tag.hexdigest()[:16]}.so"
    for folder in (_cache_folder(), None):
        try:
            if folder is None:
                folder = pathlib.Path(tempfile.mkdtemp(prefix="mlm-verify-"))
            path = folder / name
            if not path.exists():
                _compile(cc, folder, path)
            return path
        except PermissionError:
            continue
    raise OSError("no folder to build the library in")


def _cache_folder() -> pathlib.Path:
    """The folder for the built library (created)."""
    root = os.environ.get("MLM_TORCH_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "mlm-verify")
    folder = pathlib.Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _compile(cc: list[str], folder: pathlib.Path, path: pathlib.Path) -> None:
    """Compile `SOURCES` to a private file in `folder`, then rename it to `path` (atomic)."""
    fd, partial = tempfile.mkstemp(prefix=path.stem + "-", suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run([*cc, *FLAGS, "-o", partial, *map(str, SOURCES)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise OSError(f"{' '.join(cc)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


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
