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


# -- defects the stratified, dispersion and replay checks are built for --------------------


class ExactCountPerCall(Correct):
    """Selects exactly round(p * eligible) positions per call, spread at random."""

    def select(self, x, eligible):
        scores = torch.where(eligible, torch.rand(x.shape), 2.0).flatten()
        quota = int(round(float(eligible.sum()) * self.p))
        chosen = torch.zeros(x.numel(), dtype=torch.bool)
        chosen[scores.argsort()[:quota]] = True
        return eligible & chosen.reshape(x.shape)


class QuotaPerPosition(Correct):
    """At each position, selects exactly round(p * eligible) of the call's columns."""

    def select(self, x, eligible):
        scores = torch.where(eligible, torch.rand(x.shape), 2.0)           # [seq_len, batch]
        rank = scores.argsort(1).argsort(1)
        return eligible & (rank < torch.round(eligible.sum(1, keepdim=True) * self.p))


class MasksTokenTypes(Correct):
    """Draws once per token id per call and masks every occurrence of a drawn id."""

    def select(self, x, eligible):
        u = torch.rand(int(x.max()) + 1)
        return eligible & (u[x] < self.p)


class NeverMasksOneId(Correct):
    """An eligibility slip on one ordinary id (id 50 is never selected)."""

    def select(self, x, eligible):
        return super().select(x, eligible) & (x != 50)


class CategoryByIdRange(Correct):
    """Originals below 30 are left unchanged where they should become [MASK] (1 in 4 times)."""

    def categories(self, selected):
        to_random, to_mask = super().categories(selected)
        keep = self._x < 30
        return to_random, to_mask & ~(keep & (torch.rand(selected.shape) < 0.25))

    def __call__(self, x):
        self._x = x
        return super().__call__(x)


class RandomNearOriginal(Correct):
    """Random replacements drawn near the original id instead of from the whole vocabulary."""

    def __call__(self, x):
        self._x = x
        return super().__call__(x)

    def random_ids(self, x):
        return (self._x + torch.randint(1, self.n_tokens // 2, x.shape)) % self.n_tokens


class RandomIdsIgnoreSeed(Correct):
    """Random ids from a generator seeded from the input: the same input, the same ids."""

    def random_ids(self, x):
        g = torch.Generator().manual_seed(int(x.sum()) % (2**31))
        return torch.randint(0, self.n_tokens, x.shape, generator=g)


class CategoryByPosition(Correct):
    """Never draws a random id in the second half of the sequence (masks instead)."""

    def categories(self, selected):
        to_random, to_mask = super().categories(selected)
        late = torch.arange(selected.shape[0])[:, None] >= selected.shape[0] // 2
        return to_random & ~late, to_mask | (to_random & late)


class CategoryCopiesNeighbour(Correct):
    """A position reuses its left neighbour's category draw half of the time."""

    def categories(self, selected):
        c = torch.rand(selected.shape)
        copy = torch.rand(selected.shape) < 0.5
        c[1:] = torch.where(copy[1:], c[:-1], c[1:])
        return selected & (c < self.r), selected & (c >= self.r + self.n)


class ExactMaskShare(Correct):
    """Exactly round(0.8 k) of a sequence's k selected positions become [MASK]."""

    def categories(self, selected):
        u = torch.where(selected, torch.rand(selected.shape), 2.0)
        rank = u.argsort(0).argsort(0).float()
        k = selected.sum(0).float()
        n_mask = torch.round(k * (1 - self.r - self.n))
        to_mask = selected & (rank < n_mask)
        rest = selected & ~to_mask
        return rest & (torch.rand(selected.shape) < self.r / (self.r + self.n)), to_mask


class QuieterSecondSegment(Correct):
    """After the first [SEP] of a sequence, selects at 80% of the rate."""

    def select(self, x, eligible):
        after = torch.cumsum((x == self.no_mask[-1]).long(), 0) > 0
        p = torch.where(after, self.p * 0.8, self.p)
        return eligible & (torch.rand(x.shape) < p)


class AtLeastOnePerSequence(Correct):
    """A sequence that drew no selection gets its first eligible position selected."""

    def select(self, x, eligible):
        selected = super().select(x, eligible)
        none = ~selected.any(0) & eligible.any(0)
        first = eligible.long().argmax(0)
        selected[first[none], torch.nonzero(none).squeeze(1)] = True
        return selected


class FrequentIdsLessOften(Correct):
    """Ids that occur over twice as often as a uniform id in the call are selected at 85% of
    the rate (a frequency down-weighting nobody asked for)."""

    def select(self, x, eligible):
        counts = torch.bincount(x.flatten(), minlength=int(x.max()) + 1)[x]
        p = torch.where(counts * self.n_tokens > 2 * x.numel(), self.p * 0.85, self.p)
        return eligible & (torch.rand(x.shape) < p)


class DriftingRate(Correct):
    """Its rate creeps up by 1% of p with every call (a schedule applied by mistake)."""

    calls = 0

    def select(self, x, eligible):
        self.calls += 1
        return eligible & (torch.rand(x.shape) < self.p * (1 + 0.01 * self.calls))


class PoolOfMasks(Correct):
    """Draws eight selection masks per shape once and cycles through them (a cache that was
    meant to save time)."""

    pool: dict = {}

    def select(self, x, eligible):
        masks = self.pool.setdefault(tuple(x.shape), [torch.rand(x.shape) < self.p
                                                      for _ in range(8)])
        self.calls = getattr(self, "calls", -1) + 1
        return eligible & masks[self.calls % 8]


class SkipsTheLastToken(Correct):
    """Never selects the last position before padding (or the end): an off-by-one that treats
    it as [SEP]."""

    def select(self, x, eligible):
        selected = super().select(x, eligible)
        not_pad = x != self.pad
        last = not_pad & ~torch.cat([not_pad[1:], torch.zeros_like(not_pad[:1])])
        return selected & ~last


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
    "exact count per call": ExactCountPerCall,
    "quota per position": QuotaPerPosition,
    "masks token types": MasksTokenTypes,
    "one id never masked": NeverMasksOneId,
    "category depends on the id": CategoryByIdRange,
    "random ids near the original": RandomNearOriginal,
    "random ids ignore the seed": RandomIdsIgnoreSeed,
    "category depends on position": CategoryByPosition,
    "categories copy the neighbour": CategoryCopiesNeighbour,
    "exact [MASK] share per sequence": ExactMaskShare,
    "quieter second segment": QuieterSecondSegment,
    "at least one per sequence": AtLeastOnePerSequence,
    "frequent ids less often": FrequentIdsLessOften,
    "drifting rate": DriftingRate,
    "pool of masks": PoolOfMasks,
    "skips the last token": SkipsTheLastToken,
}
