"""Maskers with one planted defect each, for proving that the harness catches them.

Each is a factory with the module description's constructor keywords returning a callable on a
torch long tensor `[seq_len, batch]` (the third-party contract, seeded by `torch.manual_seed`),
so the harness sees them exactly as it sees any outside masker. `Correct` is a plain, correct
masker; every defect is a one-method override of it, so a failure can only come from the
defect.
"""

from __future__ import annotations

import torch


class Correct:
    """A correct masker: Bernoulli selection, exclusive categories, uniform random ids."""

    def __init__(self, *, padding_token, mask_token, no_mask_tokens=(), n_tokens,
                 masking_prob=0.15, randomize_prob=0.1, no_change_prob=0.1):
        self.pad, self.mask, self.n_tokens = padding_token, mask_token, n_tokens
        self.no_mask = list(no_mask_tokens)
        self.p, self.r, self.n = masking_prob, randomize_prob, no_change_prob

    def eligible(self, x):
        return ~torch.isin(x, torch.tensor(self.no_mask + [self.pad, self.mask], device=x.device))

    def select(self, x, eligible):
        return eligible & (torch.rand(x.shape, device=x.device) < self.p)

    def categories(self, selected):
        """(to_random, to_mask): one uniform per position, so the categories are exclusive."""
        c = torch.rand(selected.shape, device=selected.device)
        return selected & (c < self.r), selected & (c >= self.r + self.n)

    def random_ids(self, x):
        return torch.randint(0, self.n_tokens, x.shape, device=x.device)

    def labels(self, x, out, selected):
        return torch.where(selected, x, self.pad)

    def __call__(self, x):
        selected = self.select(x, self.eligible(x))
        to_random, to_mask = self.categories(selected)
        out = torch.where(to_random, self.random_ids(x), torch.where(to_mask, self.mask, x))
        return out, self.labels(x, out, selected)


class OverlappingCategories(Correct):
    """labml's defect: 'unchanged' and 'random' drawn independently -> 0.81 / 0.09 / 0.10."""

    def categories(self, selected):
        unchanged = selected & (torch.rand(selected.shape) < self.n)
        to_random = selected & (torch.rand(selected.shape) < self.r) & ~unchanged
        return to_random, selected & ~unchanged & ~to_random


class SkewedRate(Correct):
    """Selects 3% too often (0.1545 instead of 0.15)."""

    def select(self, x, eligible):
        return eligible & (torch.rand(x.shape) < self.p * 1.03)


class RandomRangeOffByOne(Correct):
    """Draws random ids from 0 .. n_tokens-2: the last id is never drawn."""

    def random_ids(self, x):
        return torch.randint(0, self.n_tokens - 1, x.shape)


class ModuloBiasedDraw(Correct):
    """A random byte modulo n_tokens: the low ids are drawn more often."""

    def random_ids(self, x):
        return torch.randint(0, 256, x.shape) % self.n_tokens


class RepeatedAcrossCalls(Correct):
    """Re-seeds its own generator identically on every call: the same mask every time."""

    def select(self, x, eligible):
        g = torch.Generator().manual_seed(1234)
        return eligible & (torch.rand(x.shape, generator=g) < self.p)


class SharedAcrossBatch(Correct):
    """One uniform per position, broadcast over the batch: every column has the same mask."""

    def select(self, x, eligible):
        return eligible & (torch.rand(x.shape[0], 1) < self.p)


class NeverSelectedPosition(Correct):
    """Position 5 of every sequence is never selected."""

    def select(self, x, eligible):
        selected = super().select(x, eligible)
        selected[5] = False
        return selected


class ExactCount(Correct):
    """Selects exactly round(p * n_eligible) positions per sequence (not a Bernoulli count)."""

    def select(self, x, eligible):
        scores = torch.where(eligible, torch.rand(x.shape), 2.0)          # [seq_len, batch]
        rank = scores.argsort(0).argsort(0)                               # [seq_len, batch]
        quota = torch.round(eligible.sum(0) * self.p)                     # [batch]
        return eligible & (rank < quota)


class CorrelatedNeighbours(Correct):
    """Each position copies its left neighbour's draw 30% of the time."""

    def select(self, x, eligible):
        u = torch.rand(x.shape)
        copy = torch.rand(x.shape) < 0.3
        u[1:] = torch.where(copy[1:], u[:-1], u[1:])
        return eligible & (u < self.p)


class MutatesInput(Correct):
    """Writes the masked ids into the caller's tensor (and returns it)."""

    def __call__(self, x):
        out, y = super().__call__(x)
        x.copy_(out)
        return x, y


class MasksSpecialTokens(Correct):
    """Forgets `no_mask_tokens`: [CLS]/[SEP] are selected like any other token."""

    def eligible(self, x):
        return ~torch.isin(x, torch.tensor([self.pad, self.mask]))


class WrongLabels(Correct):
    """Labels the selected positions with what the model sees instead of the original."""

    def labels(self, x, out, selected):
        return torch.where(selected, out, self.pad)


BROKEN = {
    "overlapping categories": OverlappingCategories,
    "skewed selection rate": SkewedRate,
    "random-id range off by one": RandomRangeOffByOne,
    "biased random-id draw": ModuloBiasedDraw,
    "masks repeated across calls": RepeatedAcrossCalls,
    "masks shared across the batch": SharedAcrossBatch,
    "never-selected position": NeverSelectedPosition,
    "exact-count selection": ExactCount,
    "correlated neighbours": CorrelatedNeighbours,
    "input mutation": MutatesInput,
    "masked special tokens": MasksSpecialTokens,
    "wrong labels": WrongLabels,
}
