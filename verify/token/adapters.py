"""Every masker, whatever its framework, seen by the harness as `torch [seq_len, batch] -> torch`.

The harness counts with torch on one device. An `Adapter` hands a batch to a masker and takes
its outputs back as torch tensors, reporting as strings any breach of the type, shape, dtype or
device contract that the conversion would otherwise hide.

* Our backends (`numpy`, `torch`, `jax`) go through `verify.engine.frameworks.Backend`: zero-copy
  conversion, an explicit seed per call (`rng=`, a `torch.Generator`, `key=`).
* Any other masker (`MODULE:ATTR`, a published one from `verify.registry`, or a callable) has
  the module description's contract: a torch long tensor in, `(x_masked, y)` out. It is seeded
  by `torch.manual_seed(seed)` just before the call.
"""

from __future__ import annotations

import torch

from mlm_ref.config import MaskingConfig

from .. import registry
from ..engine.frameworks import BACKENDS, Backend
from ..engine.resolve import (Unavailable, build, callable_name, distinct_names, factory_kwargs,
                             load)

__all__ = ["Adapter", "Unavailable", "resolve", "factory_kwargs", "distinct_names",
           "callable_name"]


class Adapter:
    """One masker behind the harness's interface.

    Args:
        name: how the report names it.
        masker: our `MLM` (with `backend`) or any callable with the module description's
            contract (`backend=None`).
        config: the parameters the harness checks it against.
        backend: the framework adapter of our `MLM`, None for a third-party callable.

    Calling `adapter(x, seed)` returns `(x_after, out, y, problems)`: torch tensors on `x`'s
    device (`x_after` is the caller's input as the masker left it) and a list of breaches.
    """

    def __init__(self, name: str, masker, config: MaskingConfig, backend: Backend | None = None):
        self.name, self.masker, self.config, self.backend = name, masker, config, backend
        self.layout = "seq-batch"  # or "batch-seq": the masker is fed x.T and returns that shape
        self.dtype = backend.harness_dtype() if backend is not None else torch.int64

    def __repr__(self) -> str:
        return f"Adapter({self.name!r}, {self.backend.name if self.backend else 'external'})"

    def __call__(self, x: torch.Tensor, seed: int):
        if self.layout == "batch-seq":
            x_in = x.T.contiguous()                                    # [batch, seq_len]
            x_after, out, y, problems = self._call(x_in, seed)
            t = lambda a: a.T if isinstance(a, torch.Tensor) and a.dim() == 2 else a  # noqa: E731
            return t(x_after), t(out), t(y), problems
        return self._call(x, seed)

    def _call(self, x: torch.Tensor, seed: int):
        if self.backend is None:
            return self._call_external(x, seed)
        b = self.backend
        native = b.from_torch(x)  # a view of x where the framework allows
        out, y = b.call(self.masker, native, seed=seed)
        problems = b.problems(out, y, native)
        if problems:
            return x, out, y, problems
        return b.to_torch(native, x.device), b.to_torch(out, x.device), \
            b.to_torch(y, x.device), []

    def _call_external(self, x, seed):
        torch.manual_seed(seed)  # seeds every device's default generator
        result = self.masker(x)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{self.name} must return (x_masked, y), got {type(result).__name__}")
        out, y = result
        return x, out, y, BACKENDS["torch"].problems(out, y, x)


def _ours(name: str, config: MaskingConfig) -> Adapter:
    backend = BACKENDS[name]
    if not backend.available():
        raise Unavailable(f"masker {name!r} needs {backend.framework}, which is not installed")
    mlm = backend.mlm(**factory_kwargs(config), random_exclude=config.random_exclude)
    return Adapter(name, mlm, config, backend)


def _external(spec: str, config: MaskingConfig, name: str | None = None,
              timeout: float | None = None) -> Adapter:
    factory = load(spec, what="masker", choices=", ".join(registry.REGISTRY), timeout=timeout)
    if config.random_exclude:
        raise ValueError("random_exclude is not part of the module description's constructor, "
                         f"so it cannot be passed to {spec!r}")
    masker = build(factory, factory_kwargs(config), name=name or spec, timeout=timeout)
    return Adapter(name or spec, masker, config)


def resolve(masker, config: MaskingConfig | None, *, timeout: float | None = None) -> Adapter:
    """An adapter for a registry name (`numpy`, `torch`, `jax`, `labml`, `hf-torch`,
    `hf-numpy`), `MODULE:ATTR`, one of our `MLM` instances, or any callable with the module
    description's contract (`config` required). A module whose import, or a factory whose
    call, raises, exits or overruns `timeout` gives an adapter whose every call fails
    (`verify.engine.resolve.Failed`): the run records it as "masker runs without error".

    Raises:
        Unavailable: the framework or module is missing.
        ValueError, TypeError: a bad specification or configuration.
    """
    if isinstance(masker, Adapter):
        return masker
    if isinstance(masker, str):
        if config is None:
            raise ValueError(f"masker {masker!r} needs a MaskingConfig")
        info = registry.REGISTRY.get(masker)
        if info is None:
            return _external(masker, config, timeout=timeout)
        if info.ours:
            return _ours(masker, config)
        missing = info.missing()
        if missing:
            raise Unavailable(f"masker {masker!r} needs {', '.join(missing)}, which is not "
                              f"installed")
        return _external(info.factory, config, name=masker, timeout=timeout)
    backend = BACKENDS.get({"mlm_ref": "numpy", "mlm_torch": "torch", "mlm_jax": "jax"}.get(
        type(masker).__module__.split(".")[0], ""))
    if backend is not None and isinstance(getattr(masker, "config", None), MaskingConfig):
        if config is not None and config != masker.config:
            raise ValueError(f"config {config} differs from the masker's own {masker.config}")
        return Adapter(f"{backend.name} ({type(masker).__name__})", masker, masker.config,
                       backend)
    if not callable(masker):
        raise TypeError(f"a masker must be a name or a callable, got {type(masker).__name__}")
    if config is None:
        config = getattr(masker, "config", None)
        if not isinstance(config, MaskingConfig):
            raise ValueError("a third-party masker needs config=MaskingConfig(...)")
    return Adapter(callable_name(masker), masker, config)
