"""Exact mode in PyTorch: JAX's threefry draws computed with torch integer ops.

Bit-identical to `mlm_ref.exact` and to the JAX backend on CPU and CUDA; the draws stay on
`x`'s device, so the CUDA path never copies the batch to the host. On CUDA with Triton the
same draws are computed in one fused kernel (`mlm_torch.fused`).

A position's draws depend only on the key and its flat index, so the torch formulation works a
slice of positions at a time: the same bits as one pass, in memory bounded by the slice (the
bound is in docs/exact-mode.md).
"""

from __future__ import annotations

import torch

from mlm_ref.config import MaskingConfig

from . import fused, threefry
from .tensors import (as_signed_bits, check_input, eligible_mask, ids_in_view,
                      shift_past_excluded, signed_view)

__all__ = ["mask_tokens_exact", "mask_tokens_exact_torch", "mask_from_bits", "chunk_size"]


def chunk_size(device: torch.device) -> int:
    """Positions per slice: about 40 bytes of draws each. On a GPU a slice must also be large
    enough to fill the device, so it is larger there."""
    return 2**18 if device.type == "cpu" else 2**22


def mask_tokens_exact(x: torch.Tensor, config: MaskingConfig, *, key,
                      check_ids: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask `x` in exact mode: the same key gives the same outputs in every backend.

    Args:
        x: integer tensor of token ids, rank >= 1, on any device.
        config: the masking parameters.
        key: an int seed (meaning `jax.random.key(seed)`) or raw threefry key data `uint32[2]`
            (a sequence, NumPy array or tensor; the rule of `mlm_ref.keys`).
        check_ids: raise on negative ids (reads one boolean back from the device).

    Returns:
        `(x_masked, y)` with the dtype, shape and device of `x`.
    """
    check_input(x, config, check_ids=check_ids)
    if fused.use_fused(x):  # on CUDA with Triton: one kernel that hashes in registers
        return fused.mask_tokens_exact(x, config, key=key)
    return mask_tokens_exact_torch(x, config, key=key)


def mask_tokens_exact_torch(x: torch.Tensor, config: MaskingConfig, *, key):
    """The elementwise torch formulation of exact mode (no input checks).

    The draws are JAX's `uniform(k_sel)`, `uniform(k_cat)` and `randint(k_tok)`; their three
    (or four) hashes run side by side in one pass of the rounds, a slice at a time.
    """
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key, device=x.device), 3)
    k_hi, k_lo = threefry.split(k_tok, 2)              # randint's two keys, as JAX splits them
    _, multiplier = threefry.randint_span(0, config.n_random)
    keys = torch.stack([k_sel, k_cat, k_lo, k_hi] if multiplier else [k_sel, k_cat, k_lo])

    flat = x.reshape(-1)                               # row-major (a copy if x is strided)
    x_masked, y = torch.empty_like(flat), torch.empty_like(flat)
    step = chunk_size(x.device)
    for start in range(0, flat.numel(), step):
        s = slice(start, min(flat.numel(), start + step))
        signed_view(x_masked)[s], signed_view(y)[s] = _mask_slice(flat[s], s, keys, config)
    return x_masked.view(x.shape), y.view(x.shape)


def _mask_slice(x: torch.Tensor, s: slice, keys: torch.Tensor, config: MaskingConfig):
    """Exact mode on the positions `s` of the flattened batch, which hold `x`; the outputs in
    `signed_view`'s dtype."""
    bits = threefry.counter_bits(keys, s.stop - s.start, start=s.start)  # int32 [3 or 4, n]
    return mask_from_bits(x, bits, config)


def mask_from_bits(x: torch.Tensor, bits: torch.Tensor, config: MaskingConfig):
    """Exact mode's outcomes from the draws' int32 bits `[3 or 4, *x.shape]` (overwritten):
    `k_sel`, `k_cat`, randint's `k_lo` and, when its multiplier is not 0, `k_hi`.

    Returns:
        `(x_masked, y)` like `x`, in `signed_view`'s dtype.
    """
    p_select, p_random, p_random_or_keep = (float(t) for t in config.exact_thresholds())
    u = threefry.uniform_from_bits(bits[0])                              # float32, like x
    c = threefry.uniform_from_bits(bits[1])                              # float32, like x
    t = threefry.randint_from_bits(bits[2], bits[3] if len(bits) == 4 else None, 0,
                                   config.n_random).to(torch.int64)
    t = ids_in_view(shift_past_excluded(t, config), x.dtype)

    selected = eligible_mask(x, config) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    v = signed_view(x)
    mask_token = torch.tensor(as_signed_bits(config.mask_token, x.dtype), dtype=v.dtype,
                              device=x.device)
    padding = torch.tensor(as_signed_bits(config.padding_token, x.dtype), dtype=v.dtype,
                           device=x.device)
    x_masked = torch.where(to_random, t, torch.where(to_mask, mask_token, v))
    y = torch.where(selected, v, padding)
    return x_masked, y
