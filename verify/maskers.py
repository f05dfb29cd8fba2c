"""Adapters: every masker, whatever its framework, seen as `torch [seq_len, batch] -> torch`.

The harness counts with torch on one device. An adapter converts the batch to the masker's
own array type (zero-copy where it can: `Tensor.numpy()` on the CPU, DLPack for JAX), calls it
with an explicit seed, and converts the outputs back. It also reports, as strings, any breach
of the type/shape/dtype/device contract that the conversion would otherwise hide.

Seeding, per kind of masker:
* `numpy`: `rng=seed`; `torch`: a `torch.Generator` on the device seeded with `seed`;
  `jax`: `key=seed` (meaning `jax.random.key(seed)`);
* a third-party callable (`MODULE:ATTR`, the module description's contract: a torch long tensor
  in, `(x_masked, y)` out): `torch.manual_seed(seed)` just before `masker(x)`.

Frameworks are imported lazily; `Unavailable` says which one is missing.
"""

from __future__ import annotations

import importlib
import importlib.util

import torch

from mlm_ref.config import MaskingConfig

__all__ = ["Adapter", "Unavailable", "BUILTIN", "resolve"]

BUILTIN = {"numpy": ("mlm_ref", "numpy"), "torch": ("mlm_torch", "torch"),
           "jax": ("mlm_jax", "jax")}


class Unavailable(RuntimeError):
    """A masker's framework (or module) cannot be imported."""


class Adapter:
    """One masker behind the harness's interface.

    Args:
        name: how the report names it.
        kind: `numpy`, `torch`, `jax` or `external`.
        masker: the masker object (an `MLM` or any callable for `external`).
        config: the parameters the harness checks it against.

    Calling `adapter(x, seed)` returns `(x_after, out, y, problems)`: torch tensors on `x`'s
    device (`x_after` is the caller's input as the masker left it) and a list of breaches.
    """

    def __init__(self, name: str, kind: str, masker, config: MaskingConfig):
        self.name, self.kind, self.masker, self.config = name, kind, masker, config
        self.dtype = torch.int64
        if kind == "jax":
            import jax
            self.dtype = torch.int64 if jax.config.jax_enable_x64 else torch.int32

    def __repr__(self) -> str:
        return f"Adapter({self.name!r}, {self.kind})"

    def __call__(self, x: torch.Tensor, seed: int):
        return getattr(self, f"_call_{self.kind}")(x, seed)

    def _call_numpy(self, x, seed):
        import numpy as np
        x_np = x.numpy() if x.device.type == "cpu" else x.cpu().numpy()  # a view on the CPU
        out, y = self.masker(x_np, rng=seed)
        problems = _expect(out, y, np.ndarray, x_np.shape, x_np.dtype)
        back = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(x.device)  # noqa: E731
        return back(x_np), back(out), back(y), problems

    def _call_torch(self, x, seed):
        g = torch.Generator(device=x.device)
        g.manual_seed(seed)
        out, y = self.masker(x, generator=g)
        return x, out, y, _expect_torch(out, y, x)

    def _call_jax(self, x, seed):
        import jax
        import numpy as np
        try:
            xj = jax.dlpack.from_dlpack(x)  # zero-copy when JAX has the device
        except Exception:  # noqa: BLE001 (e.g. a CUDA tensor and a CPU-only jax)
            xj = jax.numpy.asarray(x.cpu().numpy())
        out, y = self.masker(xj, key=seed)
        problems = _expect(out, y, jax.Array, tuple(xj.shape), np.dtype(xj.dtype))
        back = lambda a: _from_jax(a).to(x.device)  # noqa: E731
        return x, back(out), back(y), problems

    def _call_external(self, x, seed):
        torch.manual_seed(seed)  # seeds every device's default generator
        result = self.masker(x)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{self.name} must return (x_masked, y), got {type(result).__name__}")
        out, y = result
        return x, out, y, _expect_torch(out, y, x)


def _from_jax(a) -> torch.Tensor:
    try:
        return torch.from_dlpack(a)
    except Exception:  # noqa: BLE001 (a device torch cannot import)
        import numpy as np
        return torch.from_numpy(np.asarray(a))


def _expect(out, y, kind, shape, dtype) -> list[str]:
    problems = []
    for name, a in (("x_masked", out), ("y", y)):
        if not isinstance(a, kind):
            problems.append(f"{name} is a {type(a).__name__}, expected {kind.__name__}")
        elif tuple(a.shape) != tuple(shape) or a.dtype != dtype:
            problems.append(f"{name} is {a.dtype}{list(a.shape)}, expected {dtype}{list(shape)}")
    return problems


def _expect_torch(out, y, x) -> list[str]:
    problems = _expect(out, y, torch.Tensor, tuple(x.shape), x.dtype)
    for name, a in (("x_masked", out), ("y", y)):
        if isinstance(a, torch.Tensor) and a.device != x.device:
            problems.append(f"{name} is on {a.device}, expected {x.device}")
    return problems


def _builtin(name: str, config: MaskingConfig) -> Adapter:
    module, framework = BUILTIN[name]
    if importlib.util.find_spec(framework) is None:
        raise Unavailable(f"masker {name!r} needs {framework}, which is not installed")
    mlm = importlib.import_module(module).MLM(**_kwargs(config),
                                              random_exclude=config.random_exclude)
    return Adapter(name, name, mlm, config)


def _kwargs(config: MaskingConfig) -> dict:
    """The module description's constructor keywords (a third-party factory's interface)."""
    return dict(padding_token=config.padding_token, mask_token=config.mask_token,
                no_mask_tokens=list(config.no_mask_tokens), n_tokens=config.n_tokens,
                masking_prob=config.masking_prob, randomize_prob=config.randomize_prob,
                no_change_prob=config.no_change_prob)


def _external(spec: str, config: MaskingConfig, name: str | None = None) -> Adapter:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"a masker must be numpy, torch, jax, labml, hf, hf-torch, hf-numpy "
                         f"or MODULE:ATTR, got {spec!r}")
    try:
        factory = importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"cannot import {module!r} for masker {spec!r}: {e}") from None
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"{module!r} has no attribute {attr!r} (masker {spec!r})")
        factory = getattr(factory, part)
    if config.random_exclude:
        raise ValueError("random_exclude is not part of the module description's constructor, "
                         f"so it cannot be passed to {spec!r}")
    if not callable(factory):
        raise TypeError(f"masker {spec!r} names a {type(factory).__name__}, not a factory that "
                        f"takes the module description's keywords")
    return Adapter(name or spec, "external", factory(**_kwargs(config)), config)


def resolve(masker, config: MaskingConfig | None) -> Adapter:
    """An adapter for a name (`numpy`, `torch`, `jax`, a published masker of
    `verify.thirdparty.PUBLISHED` such as `labml` or `hf`, `MODULE:ATTR`), one of our `MLM`
    instances, or any callable with the module description's contract (`config` required).

    Raises:
        Unavailable: the framework or module is missing.
        ValueError, TypeError: a bad specification or configuration.
    """
    if isinstance(masker, Adapter):
        return masker
    if isinstance(masker, str):
        if config is None:
            raise ValueError(f"masker {masker!r} needs a MaskingConfig")
        if masker in BUILTIN:
            return _builtin(masker, config)
        from .thirdparty import PUBLISHED  # labml, hf, hf-torch, hf-numpy: published maskers
        if masker in PUBLISHED:
            return _external(PUBLISHED[masker], config, name=masker)
        return _external(masker, config)
    kind = {"mlm_ref": "numpy", "mlm_torch": "torch", "mlm_jax": "jax"}.get(
        type(masker).__module__.split(".")[0])
    if kind is not None and hasattr(masker, "config"):
        if config is not None and config != masker.config:
            raise ValueError(f"config {config} differs from the masker's own {masker.config}")
        return Adapter(f"{kind} ({type(masker).__name__})", kind, masker, masker.config)
    if not callable(masker):
        raise TypeError(f"a masker must be a name or a callable, got {type(masker).__name__}")
    if config is None:
        config = getattr(masker, "config", None)
        if not isinstance(config, MaskingConfig):
            raise ValueError("a third-party masker needs config=MaskingConfig(...)")
    return Adapter(getattr(masker, "__name__", type(masker).__name__), "external", masker, config)
