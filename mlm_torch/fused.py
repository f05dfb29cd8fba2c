"""Dispatch to the fused Triton kernels (`mlm_torch.triton_kernels`) for CUDA tensors.

The elementwise torch code in `mlm_torch.mlm` and `mlm_torch.exact` launches a dozen kernels
and materialises every draw as a full-size tensor. On the GPU the floor is memory traffic: read
`x` once, write `x_masked` and `y` once. The kernels here reach for that floor, and this module
prepares their arguments without reading anything back from the device:

* the native seed is drawn by the caller's `torch.Generator` into a one-element device tensor;
* the exact key, when it is host data (an int seed or key words), is split on the host with
  `mlm_ref.threefry` and passed as kernel arguments; when it is a device tensor the kernel
  splits it itself;
* the short lists of ineligible and excluded ids are cached per config and device.

Triton is optional: `use_fused` is False when it is missing (or `x` is not on CUDA), and the
callers fall back to torch. Tests call `mask_tokens_native`/`mask_tokens_exact` directly on CPU
tensors under `TRITON_INTERPRET=1`.
"""

from __future__ import annotations

import functools
import math

import torch

from mlm_ref import threefry as np_threefry
from mlm_ref.config import MaskingConfig

from . import threefry

__all__ = ["triton_available", "use_fused", "mask_tokens_native", "mask_tokens_exact"]

# dtypes the kernels are compiled for; others fall back to the torch path
FUSED_DTYPES = (torch.int32, torch.int64)
# positions per program: the native kernel is memory-bound, the exact one does 4 hashes each
NATIVE_BLOCK, NATIVE_WARPS = 2048, 8
EXACT_BLOCK, EXACT_WARPS = 1024, 4


@functools.cache
def triton_available() -> bool:
    """Whether Triton and its kernels import (checked once)."""
    try:
        from . import triton_kernels  # noqa: F401
    except ImportError:  # Triton missing, or a build without a usable backend
        return False
    return True


def use_fused(x: torch.Tensor) -> bool:
    """Whether `x` goes to a fused kernel: a CUDA tensor of a supported dtype, Triton present."""
    return x.device.type == "cuda" and x.dtype in FUSED_DTYPES and triton_available()


@functools.lru_cache(maxsize=64)
def _id_tables(config: MaskingConfig, device: torch.device, dtype: torch.dtype):
    """The ineligible ids (in `dtype`, those it can hold) and the excluded ids, on `device`.

    Never empty (a dummy element pads them) so the kernels always get a valid pointer; the
    counts travel separately. Cached: built once per config, device and dtype.
    """
    fits = [t for t in config.ineligible_tokens if t <= torch.iinfo(dtype).max]
    ineligible = torch.tensor(fits or [0], dtype=dtype, device=device)
    exclude = torch.tensor(list(config.random_exclude) or [0], dtype=torch.int64, device=device)
    return ineligible, len(fits), exclude, len(config.random_exclude)


def _outputs(x: torch.Tensor):
    x = x.contiguous()                         # the kernels index the flat, row-major batch
    return x, torch.empty_like(x), torch.empty_like(x)


def _grid(n: int, block: int) -> tuple[int]:
    return (-(-n // block),)                   # one program per block, the last one partial


def mask_tokens_native(x: torch.Tensor, config: MaskingConfig, *, generator=None):
    """Native mode in one kernel: Philox keyed by a seed `generator` draws on `x`'s device.

    Args:
        x: int32 or int64 tensor of token ids (checked by the caller).
        config: the masking parameters.
        generator: a `torch.Generator` on `x`'s device, or None for the default one.

    Returns:
        `(x_masked, y)`, new contiguous tensors shaped like `x`.
    """
    from .triton_kernels import native_kernel
    x, x_masked, y = _outputs(x)
    if x.numel() == 0:
        return x_masked, y
    # The seed stays on the device: no host sync, and the generator advances on every call.
    seed = torch.randint(0, 2**63 - 1, (1,), generator=generator, device=x.device,
                         dtype=torch.int64)
    ineligible, n_ineligible, exclude, n_exclude = _id_tables(config, x.device, x.dtype)
    p, r, k = config.masking_prob, config.randomize_prob, config.no_change_prob
    scale = 2.0**24                             # the kernel's uniforms are m / 2**24
    native_kernel[_grid(x.numel(), NATIVE_BLOCK)](
        x, x_masked, y, seed, ineligible, n_ineligible, exclude, n_exclude, x.numel(),
        math.ceil(p * scale), math.ceil(p * r * scale), math.ceil(p * (r + k) * scale),
        config.n_random, config.mask_token, config.padding_token,
        BLOCK=NATIVE_BLOCK, num_warps=NATIVE_WARPS)
    return x_masked, y


def _as_int32(words) -> list[int]:
    """uint32 words as the int32 values with the same bits (Triton's scalar argument type)."""
    return [int(w) - 2**32 if int(w) >= 2**31 else int(w) for w in words]


def _exact_keys(key, device: torch.device, split_in_kernel: bool | None):
    """Kernel key arguments: `(keys_tensor, eight scalar words, split_in_kernel)`.

    Keys are read exactly as `mlm_torch.threefry.key_data` reads them (same checks, same bit
    patterns), so the fused and the torch exact paths accept the same keys.
    """
    if split_in_kernel is None:
        split_in_kernel = isinstance(key, torch.Tensor) and key.device.type != "cpu"
    if split_in_kernel:
        # int64 uint32 values -> int32 bit patterns, on the device; nothing is read back
        return threefry.key_data(key, device=device).to(torch.int32), [0] * 8, True
    raw = threefry.key_data(key, device="cpu").tolist()             # host data: no device sync
    k_sel, k_cat, k_tok = np_threefry.split(raw, 3)
    k_hi, k_lo = np_threefry.split(k_tok, 2)
    return _dummy(device), _as_int32([*k_sel, *k_cat, *k_hi, *k_lo]), False


@functools.lru_cache(maxsize=16)
def _dummy(device: torch.device) -> torch.Tensor:
    return torch.zeros(2, dtype=torch.int32, device=device)


def mask_tokens_exact(x: torch.Tensor, config: MaskingConfig, *, key,
                      split_in_kernel: bool | None = None):
    """Exact mode in one kernel: bit-identical to `mlm_ref.exact` and JAX.

    Args:
        x: int32 or int64 tensor of token ids (checked by the caller).
        config: the masking parameters.
        key: an int seed, raw key data `uint32[2]` (sequence, array or CPU tensor; split on the
            host), or a `[2]` key tensor on `x`'s device (split inside the kernel).
        split_in_kernel: force (True) or forbid (False) splitting a key tensor in the kernel;
            None decides by where the key lives. Tests force it on CPU.

    Returns:
        `(x_masked, y)`, new contiguous tensors shaped like `x`.
    """
    from .triton_kernels import exact_kernel
    keys, words, derive = _exact_keys(key, x.device, split_in_kernel)
    x, x_masked, y = _outputs(x)
    if x.numel() == 0:
        return x_masked, y
    ineligible, n_ineligible, exclude, n_exclude = _id_tables(config, x.device, x.dtype)
    scale = 2.0**23                             # JAX's float32 uniforms are m / 2**23
    t_select, t_random, t_mask = (math.ceil(float(t) * scale) for t in config.exact_thresholds())
    span = config.n_random
    exact_kernel[_grid(x.numel(), EXACT_BLOCK)](
        x, x_masked, y, keys, *words, ineligible, n_ineligible, exclude, n_exclude,
        x.numel(), t_select, t_random, t_mask, span, (2**16 % span) ** 2 % span,
        config.mask_token, config.padding_token,
        DERIVE=derive, BLOCK=EXACT_BLOCK, num_warps=EXACT_WARPS)
    return x_masked, y
