"""Small C libraries built on first use and loaded by ctypes: the standard library alone.

Two parts of the project keep a NumPy formulation beside a C pass that does the same work in
one pass over the data: the PyTorch backend's CPU masking (`mlm_torch.compiled`) and the token
gate's counting on a CPU (`verify.token.compiled_counts`). Both build their C files the way
Triton builds its launchers:

* the C compiler (`$CC`, else `cc`; split like make splits it: "ccache gcc") compiles the files
  once per machine into a cache folder (`$<cache_env>`, else `$XDG_CACHE_HOME/mlm-verify`,
  else `~/.cache/mlm-verify`; a private temporary folder when that cannot be written);
* the library's name hashes the sources, the compiler's `--version`, the flags and the
  platform, so a changed file or compiler builds a new one;
* it is compiled to a private file and renamed into place, so processes that build it at once
  (DataLoader workers, test workers) never load a partial file; a damaged file is built again,
  once;
* where there is no compiler, the build fails or `$<off_env>` is set, `library()` is None and
  `status()` says why: the caller runs its NumPy formulation.

ctypes releases the GIL during a call, so a C pass runs beside Python threads.
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
from typing import Callable, Sequence

__all__ = ["CLibrary", "FLAGS"]

# no -march=native: a cache folder may be shared by machines with different CPUs
FLAGS = ("-O3", "-std=c99", "-shared", "-fPIC")


class CLibrary:
    """One C library, built once per machine and loaded on first use.

    Args:
        stem: the start of the library's file name (`<stem>-<hash>.so`).
        sources: the C files compiled together.
        headers: files they include (hashed into the name, not compiled).
        off_env: the environment variable that, set to anything but "" or "0", disables it.
        cache_env: the environment variable naming the cache folder.
        declare: sets the argument and result types of the loaded library's functions.
    """

    def __init__(self, stem: str, sources: Sequence[pathlib.Path],
                 headers: Sequence[pathlib.Path] = (), *, off_env: str, cache_env: str,
                 declare: Callable[[ctypes.CDLL], None]):
        self.stem, self.sources, self.headers = stem, tuple(sources), tuple(headers)
        self.off_env, self.cache_env, self.declare = off_env, cache_env, declare
        self._lock = threading.Lock()
        self._state: dict = {}  # "lib": the loaded library or None; "status": why, in words
        if hasattr(os, "register_at_fork"):  # a thread of the parent may hold the old lock
            os.register_at_fork(after_in_child=self._new_lock)

    def _new_lock(self) -> None:
        self._lock = threading.Lock()

    def library(self):
        """The loaded library, or None (then `status()` says why); built on the first call."""
        if "lib" not in self._state:
            with self._lock:
                if "lib" not in self._state:
                    lib, why = self._load()
                    self._state["status"] = why     # first: "lib" present means both are
                    self._state["lib"] = lib
        return self._state["lib"]

    def status(self) -> str:
        """In words: which compiler built the loaded library and where it lies, or why the
        NumPy formulation runs instead."""
        self.library()
        return self._state["status"]

    def _load(self):
        """`(lib, status)`: the library with its signatures declared, or None and the reason."""
        if os.environ.get(self.off_env, "") not in ("", "0"):
            return None, f"not compiled: {self.off_env} is set"
        cc = shlex.split(os.environ.get("CC") or "cc")
        if not cc or shutil.which(cc[0]) is None:
            return None, f"not compiled: no C compiler ({' '.join(cc)!r} not found)"
        try:
            version = subprocess.run([*cc, "--version"], capture_output=True, timeout=60).stdout
            path = self._built(cc, version)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:                 # a damaged file in the cache: built again, once
                path.unlink(missing_ok=True)
                lib = ctypes.CDLL(str(self._built(cc, version)))
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"not compiled: {e}"
        self.declare(lib)
        name = version.decode(errors="replace").strip().split("\n")[0] or " ".join(cc)
        return lib, f"compiled by {name} into {path}"

    def _built(self, cc: list[str], version: bytes) -> pathlib.Path:
        """The library's path in the cache, compiled there first if it is missing."""
        source = b"\0".join(f.read_bytes() for f in (*self.sources, *self.headers))
        tag = hashlib.sha256(b"\0".join([source, version, " ".join(FLAGS).encode(),
                                         platform.machine().encode(), sys.platform.encode()]))
        name = f"{self.stem}-{tag.hexdigest()[:16]}.so"
        for folder in (self._cache_folder, None):
            try:
                where = folder() if folder else pathlib.Path(
                    tempfile.mkdtemp(prefix="mlm-verify-"))
                path = where / name
                if not path.exists():
                    self._compile(cc, where, path)
                return path
            except PermissionError:
                continue
        raise OSError("no folder to build the library in")

    def _cache_folder(self) -> pathlib.Path:
        """The folder for the built library (created)."""
        root = os.environ.get(self.cache_env)
        if not root:
            xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                   ".cache")
            root = os.path.join(xdg, "mlm-verify")
        folder = pathlib.Path(root)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _compile(self, cc: list[str], folder: pathlib.Path, path: pathlib.Path) -> None:
        """Compile the sources to a private file in `folder`, then rename it to `path`."""
        fd, partial = tempfile.mkstemp(prefix=path.stem + "-", suffix=".so", dir=folder)
        os.close(fd)
        try:
            done = subprocess.run([*cc, *FLAGS, "-o", partial, *map(str, self.sources)],
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise OSError(f"{' '.join(cc)} failed ({done.returncode}): "
                              f"{done.stderr.strip()[-500:]}")
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
