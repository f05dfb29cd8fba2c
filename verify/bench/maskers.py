"""The maskers that `python -m verify.bench` times: ours, per backend and mode, and the published.

Each registry masker (`verify.registry`) has a timer factory here, under the registry's name;
`mode` is `native` or `exact` for ours (`native-eager`, `exact-eager`: our unfused torch
formulation on a GPU), `published` for the others.

Each masker is three functions with a clear line between set-up and the timed call:

* `setup(xs)` (untimed) turns the rotation of NumPy batches `[seq_len, batch]` into the
  masker's own inputs (device tensors, transposed `[batch, seq]` copies for Hugging Face...);
* `fresh(inp)` (untimed, before every call) hands over the input for one call: the input
  itself for maskers that leave it alone, a clone for those that write into it (labml's `MLM`
  and Hugging Face's `*_mask_tokens` modify their argument in place);
* `call(inp)` (timed) masks, and `sync(out)` (timed) waits for the result on the device.

A masker whose framework or package is missing is not built; `build` returns why instead.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any, Callable

import numpy as np

from mlm_ref.config import MaskingConfig

from .. import registry
from ..registry import BERT

__all__ = ["Masker", "build", "make_batch"]

_CLS, _SEP, _PAD = 101, 102, 0


@dataclasses.dataclass
class Masker:
    """One timed masker: `name` is its registry name, `mode` native/exact (ours) or published."""

    name: str
    mode: str
    setup: Callable[[list[np.ndarray]], list[Any]]
    call: Callable[[Any], Any]
    fresh: Callable[[Any], Any] = lambda inp: inp
    sync: Callable[[Any], None] = lambda out: None
    cuda_events: bool = False        # time with CUDA events (torch on a GPU)
    note: str = ""


def make_batch(seq_len: int, batch: int, seed: int) -> np.ndarray:
    """A BERT-like int64 batch `[seq_len, batch]`: [CLS] text [SEP] then padding.

    Column lengths are uniform in `[seq_len // 2, seq_len]`, so about a quarter of the
    positions are padding and eligibility matters as it does in real batches.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(999, BERT["n_tokens"], size=(seq_len, batch), dtype=np.int64)
    lengths = rng.integers(max(2, seq_len // 2), seq_len + 1, size=batch)  # [batch]
    pos = np.arange(seq_len)[:, None]                                       # [seq_len, 1]
    x[0] = _CLS
    x = np.where(pos == lengths - 1, _SEP, x)
    return np.where(pos >= lengths, _PAD, x)


def _torch_device(device: str):
    import torch
    return torch.device("cuda" if device == "cuda" else "cpu")


def _torch_sync(device: str):
    import torch
    return (lambda out: torch.cuda.synchronize()) if device == "cuda" else (lambda out: None)


def _ours_numpy(config: MaskingConfig, device: str) -> list[Masker]:
    import mlm_ref
    rng = np.random.default_rng(0)
    seeds = iter(range(1 << 62))
    return [Masker("numpy", "native", list, lambda x: mlm_ref.mask_tokens(x, config, rng=rng)),
            Masker("numpy", "exact", list,
                   lambda x: mlm_ref.mask_tokens_exact(x, config, key=next(seeds)))]


def _ours_torch(config: MaskingConfig, device: str) -> list[Masker]:
    import torch
    import mlm_torch
    from mlm_torch import exact, fused
    from mlm_torch.mlm import mask_tokens_torch
    dev, sync = _torch_device(device), _torch_sync(device)
    g = torch.Generator(device=dev).manual_seed(0)
    seeds = iter(range(1 << 62))
    setup = lambda xs: [torch.from_numpy(x).to(dev) for x in xs]  # noqa: E731
    common = dict(setup=setup, sync=sync, cuda_events=device == "cuda")
    # check_ids=False: the published maskers do not check either, and it reads back on CUDA
    maskers = [
        Masker("torch", "native", call=lambda x: mlm_torch.mask_tokens(
            x, config, generator=g, check_ids=False), **common),
        Masker("torch", "exact", call=lambda x: mlm_torch.mask_tokens_exact(
            x, config, key=next(seeds), check_ids=False), **common)]
    if device == "cuda":  # the unfused torch formulation, to show what fusing buys
        maskers[0].note = maskers[1].note = "fused Triton kernel" if fused.triton_available() \
            else "Triton missing: torch ops"
        maskers += [
            Masker("torch", "native-eager", call=lambda x: mask_tokens_torch(
                x, config, generator=g), **common),
            Masker("torch", "exact-eager", call=lambda x: exact.mask_tokens_exact_torch(
                x, config, key=next(seeds)), **common)]
    return maskers


def _ours_jax(config: MaskingConfig, device: str) -> list[Masker]:
    import jax
    from mlm_jax import mask_tokens_jit
    platform = "gpu" if device == "cuda" else "cpu"
    target = jax.devices(platform)[0]           # raises when JAX has no such device
    keys = itertools.cycle(list(jax.random.split(jax.random.key(0, impl="threefry2x32"), 64)))
    # int64 ids, as for every other masker: JAX's 64-bit mode, switched on around our own
    # work only, so that importing the bench does not change JAX for the rest of a process
    x64 = functools.partial(jax.enable_x64, True)

    def setup(xs):
        with x64():
            return [jax.device_put(x, target) for x in xs]

    def call(a):  # the jit'd core: input checks (one read-back of min(x)) stay outside
        with x64():
            return mask_tokens_jit(a[0], a[1], config)

    return [Masker("jax", "exact", setup, call, fresh=lambda x: (x, next(keys)),
                   sync=lambda out: jax.block_until_ready(out), note="jax.jit")]


def _labml(config: MaskingConfig, device: str) -> list[Masker]:
    import torch
    from labml_nn.transformers.mlm import MLM
    mlm = MLM(padding_token=config.padding_token, mask_token=config.mask_token,
              no_mask_tokens=list(config.no_mask_tokens), n_tokens=config.n_tokens)
    dev = _torch_device(device)
    return [Masker("labml", "published", lambda xs: [torch.from_numpy(x).to(dev) for x in xs],
                   call=mlm, fresh=lambda x: x.clone(), sync=_torch_sync(device),
                   cuda_events=device == "cuda", note="modifies its input: cloned untimed")]


def _huggingface(config: MaskingConfig, device: str) -> list[Masker]:
    if device != "cpu":
        raise RuntimeError("its collator builds masks on the CPU (DataLoader workers)")
    import torch
    from ..published import collator
    pt, npc = collator("pt", config), collator("np", config)
    special = list(pt.tokenizer.all_special_ids)

    # [batch, seq] as the collator expects; special_tokens_mask precomputed (as a tokenizer
    # called with return_special_tokens_mask=True provides it), which spares HF the
    # eligibility pass that our maskers do inside the timed call
    def setup_pt(xs):
        return [(torch.from_numpy(np.ascontiguousarray(x.T)),
                 torch.from_numpy(np.isin(x.T, special))) for x in xs]

    def setup_np(xs):
        return [(np.ascontiguousarray(x.T), np.isin(x.T, special)) for x in xs]

    note = "in place: cloned untimed; special_tokens_mask precomputed"
    return [Masker("hf-torch", "published", setup_pt, note=note,
                   call=lambda a: pt.torch_mask_tokens(a[0], special_tokens_mask=a[1]),
                   fresh=lambda a: (a[0].clone(), a[1])),
            Masker("hf-numpy", "published", setup_np, note=note,
                   call=lambda a: npc.numpy_mask_tokens(a[0], special_tokens_mask=a[1]),
                   fresh=lambda a: (a[0].copy(), a[1]))]


# the timer factory of each registry masker (hf-torch and hf-numpy share one)
_TIMERS = {"numpy": _ours_numpy, "torch": _ours_torch, "jax": _ours_jax, "labml": _labml,
           "hf-torch": _huggingface, "hf-numpy": _huggingface}


def build(config: MaskingConfig, device: str) -> tuple[list[Masker], list[tuple[str, str]]]:
    """Every masker that can run on `device`, and `(name, reason)` for those that cannot."""
    maskers, skipped, done = [], [], set()
    for name, info in registry.REGISTRY.items():
        factory = _TIMERS.get(name)
        if factory is None:     # the audited maskers (docs/conformance.md) are not timed
            continue
        if factory in done:
            continue
        missing = info.missing()
        if missing:
            skipped.append((name, f"not installed: {', '.join(missing)}"))
            continue
        if device == "cuda" and info.framework == "numpy" and info.ours:
            skipped.append((name, "NumPy runs on the CPU only"))
            continue
        done.add(factory)
        try:
            maskers += factory(config, device)
        except Exception as e:  # an unusable device or an incompatible release: say which
            skipped.append((name, f"{type(e).__name__}: {e}"))
    return maskers, skipped
