"""Synthetic batches whose layout varies, so that every position is eligible in some sequences.

A real batch has `[CLS]` at position 0, `[SEP]` after the text and a padding tail; a masker
that is only ever fed such batches could mishandle position 0 or the last positions unseen. So
each column here draws its own layout:

* half of the columns are full length (no padding), the others stop at a uniform length in
  `0 .. seq_len` (a padding tail of any length, including all-padding columns);
* half of the columns are framed: the first no-mask token at position 0, the last one after
  the text (when `no_mask_tokens` is empty there is nothing to frame with);
* tokens are uniform over `0 .. n_tokens-1`, so special ids also turn up mid-text, and 2% of
  positions hold `mask_token` (already masked input must stay untouched).

Position 0 is eligible in unframed columns and the last position in full unframed ones.
Batches are a pure function of `(seed, call)` and are generated on the device.
"""

from __future__ import annotations

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

__all__ = ["SyntheticBatches", "derive_seed"]

MASK_FRACTION = 0.02


def derive_seed(seed: int, stream: str, index: int) -> int:
    """An independent 32-bit seed for call `index` of `stream` (inputs, or a masker's draws)."""
    entropy = [int(seed) & 0xFFFFFFFF, int(seed) >> 32, sum(map(ord, stream)), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])


class SyntheticBatches:
    """Batches `[seq_len, batch]` of int64 token ids on `device`.

    Args:
        config: the masking parameters (vocabulary size and special ids).
        seq_len: sequence length (dimension 0, the documented layout).
        batch: sequences per call (dimension 1).
        device: where to generate.
        seed: the run's seed; call `t` uses a seed derived from `(seed, t)`.
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, device, seed: int):
        self.config, self.seq_len, self.batch = config, seq_len, batch
        self.device, self.seed = torch.device(device), seed
        self.generator = torch.Generator(device=self.device)

    def __call__(self, call: int) -> torch.Tensor:
        cfg, (n, b), dev = self.config, (self.seq_len, self.batch), self.device
        g = self.generator
        g.manual_seed(derive_seed(self.seed, "inputs", call))
        pos = torch.arange(n, device=dev)[:, None]                                    # [seq_len, 1]
        full = torch.rand(b, generator=g, device=dev) < 0.5                           # [batch]
        length = torch.where(full, n, torch.randint(0, n + 1, (b,), generator=g, device=dev))
        x = torch.randint(0, cfg.n_tokens, (n, b), generator=g, device=dev)  # [seq_len, batch]
        x = torch.where(torch.rand((n, b), generator=g, device=dev) < MASK_FRACTION,
                        cfg.mask_token, x)
        if cfg.no_mask_tokens:
            framed = torch.rand(b, generator=g, device=dev) < 0.5                     # [batch]
            x = torch.where((pos == 0) & framed, cfg.no_mask_tokens[0], x)
            sep = (pos == length - 1) & framed & (length >= 2)
            x = torch.where(sep, cfg.no_mask_tokens[-1], x)
        return torch.where(pos >= length, cfg.padding_token, x)
