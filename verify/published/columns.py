"""What the audited maskers share: the gate's `[seq_len, batch]` batch as the unpadded
sequences a per-example library masks, and a per-call seed taken from the gate's seeding.

The libraries audited here mask one example at a time, before padding: the padding a batch
carries never reaches them. `mask_columns` hands each column's non-padding tokens to a
per-sequence masker and writes its result back, so the gate sees what the library does to the
tokens it is given, and padding stays unselected, as it is in their pipelines.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

__all__ = ["call_seed", "mask_columns", "to_numpy", "like"]


def call_seed() -> int:
    """A 31-bit seed drawn from torch's global generator: the gate seeds each call of a
    published masker with `torch.manual_seed`, and a NumPy- or Python-seeded library takes its
    seed from there."""
    import torch
    return int(torch.randint(0, 2**31 - 1, (1,)))


def to_numpy(x) -> np.ndarray:
    """A torch tensor or array as an int64 NumPy copy (the caller's input is never written)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.array(x, dtype=np.int64)


def like(a: np.ndarray, x):
    """`a` in the type, dtype and device of `x` (torch in, torch out)."""
    if hasattr(x, "detach"):
        import torch
        return torch.from_numpy(np.ascontiguousarray(a)).to(dtype=x.dtype, device=x.device)
    return np.ascontiguousarray(a).astype(np.asarray(x).dtype)


def mask_columns(x: np.ndarray, config: MaskingConfig, mask_one, *, word_ids=None):
    """Mask every column of `x` `[seq_len, batch]` with `mask_one`, padding left out.

    Args:
        x: int64 token ids `[seq_len, batch]`.
        config: the gate's parameters (its `padding_token` marks what is left out).
        mask_one: `mask_one(column, tokens, words, seq_len) -> (masked, labels)`: the column's
            index, its non-padding tokens (int64 `[n]`), their word ids (or None) and the full
            column length; returns the masked tokens and the labels (the original where
            selected, `config.padding_token` elsewhere), both `[n]`.
        word_ids: optional int64 `[seq_len, batch]` word ids (-1 outside words).

    Returns:
        `(x_masked, y)`, int64 `[seq_len, batch]`, padding unchanged and unselected.
    """
    out, y = x.copy(), np.full_like(x, config.padding_token)
    seq_len = x.shape[0]
    for c in range(x.shape[1]):
        keep = x[:, c] != config.padding_token
        words = None if word_ids is None else word_ids[keep, c]
        masked, labels = mask_one(c, x[keep, c], words, seq_len)
        out[keep, c], y[keep, c] = masked, labels
    return out, y
