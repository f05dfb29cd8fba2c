"""Exact mode in PyTorch: JAX's threefry draws computed with torch integer ops.

Bit-identical to `mlm_ref.exact` and to the JAX backend on CPU and CUDA; the draws stay on
`x`'s device, so the CUDA path never copies the batch to the host. On CUDA with Triton the
same draws are computed in one fused kernel (`mlm_torch.fused`).
"""

from __future__ import annotations

import torch

from mlm_ref.config import MaskingConfig

from . import threefry
from .mlm import check_input, eligible_mask, shift_past_excluded

__all__ = ["mask_tokens_exact"]


def mask_tokens_exact(x: torch.Tensor, config: MaskingConfig, *, key,
                      check_ids: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask `x` in exact mode: the same key gives the same outputs in every backend.

    Args:
        x: integer tensor of token ids, rank >= 1, on any device.
        config: the masking parameters.
        key: an int seed (meaning `jax.random.key(seed)`) or raw threefry key data `uint32[2]`
            (a sequence, NumPy array or tensor).
        check_ids: raise on negative ids (reads one boolean back from the device).

    Returns:
        `(x_masked, y)` with the dtype, shape and device of `x`.
    """
    check_input(x, config, check_ids=check_ids)
    from . import fused  # on CUDA with Triton: one kernel that hashes in registers
    if fused.use_fused(x):
        return fused.mask_tokens_exact(x, config, key=key)
    return mask_tokens_exact_torch(x, config, key=key)


def mask_tokens_exact_torch(x: torch.Tensor, config: MaskingConfig, *, key):
    """The elementwise torch formulation of exact mode (no input checks).

    The draws are JAX's `uniform(k_sel)`, `uniform(k_cat)` and `randint(k_tok)`; their three
    (or four) full-size hashes run side by side in one pass of the rounds.
    """
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key, device=x.device), 3)
    k_hi, k_lo = threefry.split(k_tok, 2)              # randint's two keys, as JAX splits them
    p_select, p_random, p_random_or_keep = (float(t) for t in config.exact_thresholds())
    _, multiplier = threefry.randint_span(0, config.n_random)

    keys = torch.stack([k_sel, k_cat, k_lo, k_hi] if multiplier else [k_sel, k_cat, k_lo])
    bits = threefry.counter_bits(keys, x.numel())                      # int32 [3 or 4, N]
    u = threefry.uniform_from_bits(bits[0]).view(x.shape)              # float32, like x
    c = threefry.uniform_from_bits(bits[1]).view(x.shape)              # float32, like x
    t = threefry.randint_from_bits(bits[2], bits[3] if multiplier else None, 0,
                                   config.n_random).to(torch.int64)
    t = shift_past_excluded(t, config).to(x.dtype).view(x.shape)

    selected = eligible_mask(x, config) & (u < p_select)
    to_random = selected & (c < p_random)
    to_mask = selected & (c >= p_random_or_keep)

    mask_token = torch.tensor(config.mask_token, dtype=x.dtype, device=x.device)
    padding = torch.tensor(config.padding_token, dtype=x.dtype, device=x.device)
    x_masked = torch.where(to_random, t, torch.where(to_mask, mask_token, x))
    y = torch.where(selected, x, padding)
    return x_masked, y
