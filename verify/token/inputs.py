"""The inputs the harness feeds: batches that look like tokenized text and like nothing at all.

A masker that is only ever fed one kind of batch can hide a defect there. Each call's batch
`[seq_len, batch]` mixes two kinds of column, half each:

* **uniform** columns: ids uniform over `0 .. n_tokens-1`, so every id (special ones too, in
  mid-text) turns up anywhere, and every position is eligible in some column;
* **text** columns, like tokenized text: Zipfian ids (the id of rank r has weight
  `1 / (r + 2) ** ZIPF_EXPONENT`, ranks spread over the vocabulary by a fixed permutation), so
  frequent ids repeat many times in one call, as words do; `[CLS]` (the first no-mask id) at
  position 0 and two or three segments, each closed by `[SEP]` (the last no-mask id).

Every column draws a length: full (no padding) with probability 1/2, else uniform in
`0 .. seq_len` (a padding tail of any length, all-padding columns included); 2% of positions
hold `mask_token` (already masked input must stay untouched).

**Replay.** Calls come in pairs: call `2k + 1` feeds exactly the batch of call `2k` again, under
the masker's next seed (a new epoch of the same examples). A correct masker's masks of the two
calls are independent; one that ignores its seed, or derives its draws from the input, repeats
itself. Batches are a pure function of `(seed, call // 2)` and are generated on the device: on a
CPU from position-addressed SplitMix64 (`tally.batches`: one C pass, or NumPy where it is not
built, the same ids), elsewhere from the device's generator.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

from ..engine.arguments import derive_seed
from ..engine.frameworks import array_namespace
from .host_counts import is_replay
from .tally.batches import make_batch as make_cpu_batch

__all__ = ["SyntheticBatches", "derive_seed", "is_replay"]

_TORCH = array_namespace("torch")  # `take`: a gather several times as fast as indexing on a CPU
MASK_FRACTION = 0.02
ZIPF_EXPONENT = 1.1


@functools.lru_cache(maxsize=8)
def _zipf_rank_table(n_tokens: int, device: torch.device) -> torch.Tensor:
    """The Zipf rank of each point of a 2^16 grid of (0, 1): the inverse CDF tabulated, a
    lookup per position instead of a search. Shared by every `SyntheticBatches` of one
    vocabulary size in the process (the gate makes one per call shape); never written."""
    rank_weight = 1.0 / np.arange(2, n_tokens + 2, dtype=np.float64) ** ZIPF_EXPONENT
    cdf = np.cumsum(rank_weight) / rank_weight.sum()
    grid = (np.arange(1 << 16) + 0.5) / (1 << 16)
    return torch.tensor(np.minimum(np.searchsorted(cdf, grid), n_tokens - 1),
                        dtype=torch.int64, device=device)


class SyntheticBatches:
    """Batches `[seq_len, batch]` of int64 token ids on `device`.

    Args:
        config: the masking parameters (vocabulary size and special ids).
        seq_len: sequence length (dimension 0, the documented layout).
        batch: sequences per call (dimension 1).
        device: where to generate.
        seed: the run's seed; calls `2k` and `2k + 1` use a batch derived from `(seed, k)`.
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, device, seed: int):
        self.config, self.seq_len, self.batch = config, seq_len, batch
        self.device, self.seed = torch.device(device), seed
        self.generator = torch.Generator(device=self.device)
        v = config.n_tokens
        perm = np.random.default_rng(derive_seed(seed, "zipf ranks", 0)).permutation(v)
        rank_to_id = torch.tensor(perm, dtype=torch.int64, device=self.device)
        # [65536] the id of each grid point (its Zipf rank's id): one gather a batch
        self._id_of = _TORCH.take(rank_to_id, _zipf_rank_table(v, self.device))
        self._last = None  # (pair index, batch) of the last batch made

    def __call__(self, call: int) -> torch.Tensor:
        """The batch of call `call`, a new tensor the caller may hand to a masker."""
        return self.reference(call).clone()

    def reference(self, call: int) -> torch.Tensor:
        """The batch of call `call` as the harness keeps it: made once per pair of calls, the
        very same tensor for a call and its replay; never to be handed to a masker."""
        if self._last is None or self._last[0] != call // 2:
            self._last = (call // 2, self.make(call // 2))
        return self._last[1]

    def make(self, pair: int) -> torch.Tensor:
        """A new batch of calls `2 pair` and `2 pair + 1` (one thread at a time): on a CPU from
        position-addressed SplitMix64 (`tally.batches`), elsewhere from the device's
        generator; the same layout either way."""
        cfg, (n, b), dev = self.config, (self.seq_len, self.batch), self.device
        seed = derive_seed(self.seed, "inputs", pair)
        if dev.type == "cpu":
            return torch.from_numpy(make_cpu_batch(cfg, n, b, seed, id_of=self._id_of.numpy(),
                                                   mask_fraction=MASK_FRACTION))
        g = self.generator
        g.manual_seed(seed)
        pos = torch.arange(n, device=dev)[:, None]                                  # [seq_len, 1]
        full = torch.rand(b, generator=g, device=dev) < 0.5                         # [batch]
        length = torch.where(full, n, torch.randint(0, n + 1, (b,), generator=g, device=dev))
        text = torch.rand(b, generator=g, device=dev) < 0.5                         # [batch]
        uniform = torch.randint(0, cfg.n_tokens, (n, b), generator=g, device=dev)  # [seq, batch]
        zipf = _TORCH.take(self._id_of, torch.randint(0, 1 << 16, (n, b), generator=g,
                                                      device=dev))
        x = torch.where(text, zipf, uniform)                                       # [seq, batch]
        x.masked_fill_(torch.rand((n, b), generator=g, device=dev) < MASK_FRACTION,
                       cfg.mask_token)
        if cfg.no_mask_tokens:
            # text columns: [CLS] at 0, then segments closed by [SEP] at 1/3, 2/3 (some), the end
            cls, sep = cfg.no_mask_tokens[0], cfg.no_mask_tokens[-1]
            cut = torch.randint(2, 4, (b,), generator=g, device=dev)               # [batch]
            ends = torch.stack([length * k // cut for k in (1, 2, 3)])             # [3, batch]
            ends = torch.where(torch.arange(1, 4, device=dev)[:, None] <= cut, ends, -1)
            x[0] = torch.where(text, cls, x[0])
            # [SEP] just before each end, past position 0, in text columns of length >= 2
            at = (ends > 1) & text & (length >= 2)                                 # [3, batch]
            x[ends[at] - 1, torch.arange(b, device=dev).expand(3, b)[at]] = sep
        return x.masked_fill_(pos >= length, cfg.padding_token)
