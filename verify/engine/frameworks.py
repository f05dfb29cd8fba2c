"""One small adapter per framework (einops-style): our three backends behind one interface.

A `Backend` knows how to build our `MLM` in its framework, how to move arrays in and out of
it (from NumPy for the tests and `verify.exact`, from torch tensors for the harness, zero-copy
where it can: `Tensor.numpy()` on the CPU, DLPack for JAX), how to seed a call, and what a
correct output looks like. Tests, `verify.exact` and the harness all go through it, so one test
body checks all three. Frameworks are imported lazily: a backend whose framework is missing
reports itself unavailable instead of failing at import. `MLM_BACKENDS=numpy,torch`
(environment) narrows the set; the default is every installed backend.

Counting code is written once against `array_namespace("torch" | "numpy")`, the operations the
counters use (`verify.token.counts`), one meaning in both: NumPy on a CPU (a pipeline's stream;
the token gate, on its tensors' own memory), torch on a GPU.

Seeding: `numpy` takes `rng=seed`; `torch` a `torch.Generator` on the tensor's device seeded
with `seed`; `jax` takes `key=seed` (meaning `jax.random.key(seed)`). Exact mode is `key=` in all
three.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from typing import Callable

import numpy as np

__all__ = ["Backend", "BACKENDS", "selected_backends", "array_namespace", "NumPyOps", "TorchOps",
           "branch_free_where"]


class Backend:
    """How to build, feed and read one framework's `MLM`.

    Args:
        name: `numpy`, `torch` or `jax` (the registry's name of our masker in it).
        module: the package that implements it (`mlm_ref`, `mlm_torch`, `mlm_jax`).
        framework: the import that must be present for it to run.
    """

    def __init__(self, name: str, module: str, framework: str):
        self.name, self.module, self.framework = name, module, framework

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def available(self) -> bool:
        return importlib.util.find_spec(self.framework) is not None

    def mlm(self, **config):
        """The backend's `MLM` built from the module description's keywords."""
        return importlib.import_module(self.module).MLM(**config)

    def harness_dtype(self):
        """The torch dtype the harness feeds this backend: int64, but int32 for JAX unless
        its 64-bit mode is on (JAX would silently narrow int64)."""
        import torch
        if self.name == "jax":
            import jax
            return torch.int64 if jax.config.jax_enable_x64 else torch.int32
        return torch.int64

    def from_torch(self, x):
        """A torch tensor as this framework's array, sharing memory where possible."""
        if self.name == "torch":
            return x
        if self.name == "numpy":
            return x.numpy() if x.device.type == "cpu" else x.cpu().numpy()
        import jax
        try:
            return jax.dlpack.from_dlpack(x)  # zero-copy when JAX has the device
        except Exception:  # noqa: BLE001 (e.g. a CUDA tensor and a CPU-only jax)
            return jax.numpy.asarray(x.cpu().numpy())

    def to_torch(self, a, device):
        """This framework's array as a torch tensor on `device`."""
        import torch
        if self.name == "torch":
            return a.to(device)
        if self.name == "jax":
            try:
                return torch.from_dlpack(a).to(device)
            except Exception:  # noqa: BLE001 (a device torch cannot import)
                pass
        return torch.from_numpy(np.ascontiguousarray(np.asarray(a))).to(device)

    def problems(self, out, y, x) -> list[str]:
        """How `(out, y)` break the output contract for the input `x`, in words (empty: none):
        the framework's array type, `x`'s shape and dtype, and for torch its device."""
        kind = _array_type(self.name)
        problems = []
        for name, a in (("x_masked", out), ("y", y)):
            if not isinstance(a, kind):
                problems.append(f"{name} is a {type(a).__name__}, expected {kind.__name__}")
            elif tuple(a.shape) != tuple(x.shape) or a.dtype != x.dtype:
                problems.append(f"{name} is {a.dtype}{list(a.shape)}, "
                                f"expected {x.dtype}{list(x.shape)}")
            elif self.name == "torch" and a.device != x.device:
                problems.append(f"{name} is on {a.device}, expected {x.device}")
        return problems

    def asarray(self, x: np.ndarray, device: str = "cpu"):
        """`x` as this framework's array (same dtype) on `device`."""
        if self.name == "torch":
            import torch
            return torch.from_numpy(np.require(x, requirements="C")).to(device)
        if self.name == "jax":
            import jax
            with _x64(x.dtype):
                return jax.device_put(x, _jax_device(device))
        return np.array(x)

    def to_numpy(self, y) -> np.ndarray:
        if self.name == "torch":
            return y.cpu().numpy()
        return np.asarray(y)

    def call(self, mlm, x, *, seed: int | None = None, key=None):
        """Call `mlm` on a native array: native mode with `seed`, or exact mode with `key`."""
        if self.name == "jax":
            with _x64(x.dtype):  # an int seed means jax.random.key(seed)
                return mlm(x, key=key if key is not None else (seed or 0))
        if key is not None:
            return mlm(x, key=key)
        if self.name == "torch":
            import torch
            g = None if seed is None else torch.Generator(device=x.device).manual_seed(seed)
            return mlm(x, generator=g)
        return mlm(x, rng=seed)

    def call_words(self, mlm, x, word_ids, *, seed: int):
        """Whole-word masking in native mode: `mlm(x, word_ids=word_ids, <seed>)`, seeded as
        `call` seeds it (`rng=seed`, a seeded `torch.Generator` on `x`'s device, `key=seed`)."""
        if self.name == "jax":
            with _x64(x.dtype):
                return mlm(x, word_ids=word_ids, key=seed)
        if self.name == "torch":
            import torch
            g = torch.Generator(device=x.device).manual_seed(seed)
            return mlm(x, word_ids=word_ids, generator=g)
        return mlm(x, word_ids=word_ids, rng=seed)

    def mask(self, mlm, x: np.ndarray, *, seed: int | None = None, key=None,
             device: str = "cpu") -> tuple[np.ndarray, np.ndarray, object]:
        """NumPy in, NumPy out: `(x_masked, y, native_x)`; `native_x` lets a test check that
        the caller's array was left alone."""
        native = self.asarray(x, device)
        x_masked, y = self.call(mlm, native, seed=seed, key=key)
        return self.to_numpy(x_masked), self.to_numpy(y), native


def _array_type(framework: str) -> type:
    if framework == "torch":
        import torch
        return torch.Tensor
    if framework == "jax":
        import jax
        return jax.Array
    return np.ndarray


def _x64(dtype):
    """JAX's 64-bit mode, switched on only around int64 work (JAX defaults to 32 bits)."""
    if np.dtype(dtype) not in (np.int64, np.uint64) or importlib.util.find_spec("jax") is None:
        return contextlib.nullcontext()
    import jax
    return jax.enable_x64(True)


def _jax_device(device: str):
    import jax
    return jax.devices("gpu" if device == "cuda" else device)[0]


BACKENDS: dict[str, Backend] = {
    "numpy": Backend("numpy", "mlm_ref", "numpy"),
    "torch": Backend("torch", "mlm_torch", "torch"),
    "jax": Backend("jax", "mlm_jax", "jax"),
}


def selected_backends(environ: Callable[[str], str | None] = os.environ.get) -> list[Backend]:
    """The backends named in `MLM_BACKENDS` (comma-separated), or all of them."""
    names = environ("MLM_BACKENDS")
    if not names:
        return list(BACKENDS.values())
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in BACKENDS]
    if unknown:
        raise ValueError(f"MLM_BACKENDS names unknown backends {unknown}; "
                         f"choose from {sorted(BACKENDS)}")
    return [BACKENDS[n] for n in chosen]


def branch_free_where(cond, a, b):
    """`where(cond, a, b)` for integers (arrays or scalars; bool `cond`), as `b + cond * (a - b)`:
    exact (two's complement wraps both ways), in `where`'s dtype. NumPy's and torch's CPU
    `where` branch per element, and on a random condition (a masker's outputs) a mispredicted
    branch costs about 3 ns an element, ten times this arithmetic."""
    return b + cond * (a - b)


class NumPyOps:
    """The operations on NumPy arrays (`device` arguments are accepted and ignored)."""

    name = "numpy"
    int16, int32, int64, float64, bool = np.int16, np.int32, np.int64, np.float64, np.bool_

    def asarray(self, a, dtype=None, device=None):
        """`a` (a list, an array, a CPU tensor: its memory) as an array of `dtype`."""
        return np.asarray(a, dtype)

    def zeros(self, shape, dtype, device=None):
        return np.zeros(shape, dtype)

    def ones(self, shape, dtype, device=None):
        return np.ones(shape, dtype)

    def arange(self, n: int, dtype=None, device=None):
        return np.arange(n, dtype=dtype or np.int64)

    def astype(self, a, dtype):
        return np.asarray(a).astype(dtype)

    def clip(self, a, lo=None, hi=None):
        return np.clip(a, lo, hi)

    def bincount(self, a, minlength: int, weights=None):  # int64 (exact integer weights)
        return np.bincount(a, weights, minlength).astype(np.int64, copy=False)

    # flatnonzero: int64 indices; take: of `a` flattened; select: `branch_free_where`
    amin, amax, flatnonzero, take, numel, contiguous, to_numpy, select = (
        staticmethod(np.amin), staticmethod(np.amax), staticmethod(np.flatnonzero),
        staticmethod(np.take), staticmethod(np.size), staticmethod(np.ascontiguousarray),
        staticmethod(np.asarray), staticmethod(branch_free_where))
    isin, where, stack, log2, concatenate, tile = (
        staticmethod(np.isin), staticmethod(np.where), staticmethod(np.stack),
        staticmethod(np.log2), staticmethod(np.concatenate), staticmethod(np.tile))
    # the True count of a bool array: several times as fast as `sum`, which adds int64s
    count_nonzero = staticmethod(np.count_nonzero)

    def lookup(self, table, indices):
        """`table[clip(indices, 0, len(table) - 1)]`, in one call."""
        return table.take(indices, mode="clip")

    def cumsum_rows(self, a):
        """`cumsum(a, 0)` of an int32 `[rows, columns]` array, row by row (~1 us a row): along
        axis 0, NumPy's cumsum goes one element at a time (~6 ns)."""
        out = a.copy()
        for i in range(1, a.shape[0]):
            np.add(out[i - 1], a[i], out=out[i])
        return out


class TorchOps:
    """The operations on torch tensors (the token gate's counting on a GPU)."""

    name = "torch"

    def __init__(self):
        import torch
        self.torch = torch
        self.int16, self.int32, self.int64, self.float64, self.bool = (
            torch.int16, torch.int32, torch.int64, torch.float64, torch.bool)
        self.isin, self.where, self.stack, self.log2, self.count_nonzero, self.concatenate = (
            torch.isin, torch.where, torch.stack, torch.log2, torch.count_nonzero, torch.cat)
        T = torch.Tensor  # astype(a, dtype), amin(a, axis), tile(a, reps): tensor methods
        self.astype, self.amin, self.amax, self.numel, self.contiguous, self.tile = (
            T.to, T.amin, T.amax, T.numel, T.contiguous, T.repeat)

    def asarray(self, a, dtype=None, device=None):
        """`a` (a list, an array, a tensor) as a tensor of `dtype` on `device`."""
        if isinstance(a, self.torch.Tensor):
            return a.to(device if device is not None else a.device, dtype or a.dtype)
        return self.torch.tensor(a, dtype=dtype, device=device)

    def zeros(self, shape, dtype, device=None):
        return self.torch.zeros(shape, dtype=dtype, device=device)

    def ones(self, shape, dtype, device=None):
        return self.torch.ones(shape, dtype=dtype, device=device)

    def arange(self, n: int, dtype=None, device=None):
        return self.torch.arange(n, dtype=dtype, device=device)

    def clip(self, a, lo=None, hi=None):
        return a.clamp(lo, hi)

    def bincount(self, a, minlength: int, weights=None):  # int64 (exact integer weights)
        return self.torch.bincount(a, weights, minlength).to(self.int64)

    def flatnonzero(self, a):
        if a.device.type == "cpu":  # NumPy's is branch-free: about 4x torch's on random masks
            return self.torch.from_numpy(np.flatnonzero(a.numpy()))
        return self.torch.nonzero(a.reshape(-1)).squeeze(1)

    def cumsum_rows(self, a):
        """`cumsum(a, 0)` of an int32 tensor, along the contiguous axis of its transpose."""
        return self.torch.cumsum(a.T.contiguous(), 1, dtype=self.int32).T.contiguous()

    def lookup(self, table, indices):
        """`table[clip(indices, 0, len(table) - 1)]`."""
        return self.take(table, indices.clamp(0, table.shape[0] - 1))

    def take(self, a, indices):  # about 4x as fast as `a.reshape(-1)[indices]`
        return a.reshape(-1).index_select(0, indices.reshape(-1)).reshape(indices.shape)

    def select(self, cond, a, b):
        """`branch_free_where` on a CPU; `torch.where` (one kernel) elsewhere."""
        if cond.device.type == "cpu":
            return branch_free_where(cond, a, b)
        return self.torch.where(cond, a, b)

    def to_numpy(self, a):
        return a.cpu().numpy()



def array_namespace(name: str):
    """The operations of `name` (`"torch"` or `"numpy"`).

    Raises:
        ImportError: `"torch"` and PyTorch is not installed.
        ValueError: another name.
    """
    if name == "numpy":
        return NumPyOps()
    if name == "torch":
        return TorchOps()
    raise ValueError(f"no array namespace {name!r} (torch or numpy)")


@contextlib.contextmanager
def torch_on_one_core():
    """Torch's operations on this thread use one core until the block ends (the setting is
    restored; nothing happens where torch is not loaded). A gate runs its streams side by side
    on single-core operations: multi-threaded ones wait at barriers for a thread that another
    process has descheduled, and ran 3-20x slower whenever the machine was busy."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
