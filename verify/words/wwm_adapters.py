"""Whole-word maskers behind one interface: NumPy `(x, word_ids)` in, NumPy outputs back.

The WWM gate feeds `x` and `word_ids`, int `[seq_len, batch]`, and reads `(x_masked, y)`.

* Our backends (`numpy`, `torch`, `jax`) are called as they are for token-level masking
  (`verify.engine.frameworks.Backend.call_words`): `MLM(...)(x, word_ids=w, rng=seed)`, with a
  seeded `torch.Generator`, or `key=seed`.
* Any other masker (`MODULE:ATTR`, or `hf-wwm` from `verify.registry.WWM_REGISTRY`) is a
  factory taking the module description's keywords and returning a callable
  `fn(x, word_ids=w, seed=s)` on NumPy int64 arrays `[seq_len, batch]` that returns
  `(x_masked, y)` as NumPy arrays of `x`'s shape and dtype. A callable with a true
  `wants_offsets` attribute also gets `offsets=`, int64 `[seq_len, batch, 2]`, the character
  span of each piece (Hugging Face finds words from offset gaps); `wants_pieces`, `pieces=`
  (the pieces' WordPiece spellings); `derives_words`, `word_ids=None` (the masker finds the
  words itself). `verify.words.wwm_protocol` has the details and the `batch-seq` layout.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from .. import registry
from ..engine.frameworks import BACKENDS
from ..engine.resolve import Unavailable, build, callable_name, factory_kwargs, load
from .wwm_protocol import call_external

__all__ = ["WordAdapter", "resolve_wwm"]


class WordAdapter:
    """One whole-word masker. `adapter(batch, seed)` returns `(x_after, w_after, out, y,
    problems)`: NumPy int64 arrays (the caller's `x` and `word_ids` as the masker left them,
    its outputs) and a list of breaches of the type/shape contract.

    Args:
        name: how the report names it.
        masker: our `MLM` (`backend` set) or a callable with the protocol above.
        config: the parameters it is checked against.
        backend: `verify.engine.frameworks.Backend` of our `MLM`, None for any other callable.
    """

    def __init__(self, name: str, masker, config: MaskingConfig, backend=None):
        self.name, self.masker, self.config, self.backend = name, masker, config, backend
        self.layout = "seq-batch"   # or "batch-seq" (wwm_protocol), for outside maskers

    def __repr__(self) -> str:
        return f"WordAdapter({self.name!r})"

    def __call__(self, batch, seed: int):
        x, w = batch.x.copy(), batch.word_ids.copy()
        if self.backend is not None:
            b = self.backend
            dtype = np.int32 if b.name == "jax" and not _jax_x64() else np.int64
            xn, wn = b.asarray(x.astype(dtype)), b.asarray(w.astype(dtype))
            out, y = b.call_words(self.masker, xn, wn, seed=seed)
            problems = b.problems(out, y, xn)
            if problems:
                return x, w, x, x, problems
            get = lambda a: b.to_numpy(a).astype(np.int64)  # noqa: E731
            return get(xn), get(wn), get(out), get(y), []
        result = call_external(self.masker, batch, x, w, seed, self.layout, self.config)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{self.name} must return (x_masked, y), got {type(result).__name__}")
        out, y = result
        problems = [f"{n} is {type(a).__name__}{list(getattr(a, 'shape', []))} "
                    f"{getattr(a, 'dtype', '')}, expected ndarray{list(x.shape)} int64"
                    for n, a in (("x_masked", out), ("y", y))
                    if not isinstance(a, np.ndarray) or a.shape != x.shape
                    or a.dtype != x.dtype]
        if problems:
            return x, w, x, x, problems
        return x, w, out, y, []


def _jax_x64() -> bool:
    import jax
    return bool(jax.config.jax_enable_x64)


def resolve_wwm(masker, config: MaskingConfig, *, timeout: float | None = None) -> WordAdapter:
    """A `WordAdapter` for `numpy`, `torch`, `jax`, a `WWM_REGISTRY` name (`hf-wwm`),
    `MODULE:ATTR` (a factory) or a callable with the protocol above. A module whose import,
    or a factory whose call, raises, exits or overruns `timeout` gives an adapter whose every
    call fails (`verify.engine.resolve.Failed`): "masker runs without error" fails.

    Raises:
        Unavailable: the framework or module is missing.
        ValueError, TypeError: a bad specification.
    """
    if isinstance(masker, WordAdapter):
        return masker
    if not isinstance(masker, str):
        if not callable(masker):
            raise TypeError(f"a masker must be a name or a callable, got "
                            f"{type(masker).__name__}")
        return WordAdapter(callable_name(masker), masker, config)
    info = registry.WWM_REGISTRY.get(masker)
    if info is not None and info.ours:
        backend = BACKENDS[masker]
        if not backend.available():
            raise Unavailable(f"masker {masker!r} needs {backend.framework}, which is not "
                              f"installed")
        mlm = backend.mlm(**factory_kwargs(config), random_exclude=config.random_exclude)
        return WordAdapter(masker, mlm, config, backend)
    if info is not None and info.missing():
        raise Unavailable(f"masker {masker!r} needs {', '.join(info.missing())}, which is "
                          f"not installed")
    spec = info.factory if info is not None else masker
    factory = load(spec, what="whole-word masker", choices=", ".join(registry.WWM_REGISTRY),
                   timeout=timeout)
    if config.random_exclude:
        raise ValueError(f"random_exclude cannot be passed to {spec!r} (not a constructor "
                         f"keyword of the module description)")
    fn = build(factory, factory_kwargs(config), name=masker, timeout=timeout)
    return WordAdapter(masker, fn, config)
