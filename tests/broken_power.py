"""Maskers with one planted defect each, of the four classes the token-level gate's newer checks
look for: draws too regular, a masker that is only right when seeded before every call, a
category tied to how its position was selected, behaviour that depends on the call's shape,
and an input written into only in the calls of those runs.

Each is a one-method override of `tests.broken_maskers.Correct` (the third-party contract, a
factory with the module description's keywords returning a callable on a torch long tensor,
seeded by `torch.manual_seed`), so a failure can only come from the defect.
"""

from __future__ import annotations

import torch

from tests.broken_maskers import Correct


# -- too regular -------------------------------------------------------------------------------


class BalancedRandomIds(Correct):
    """The random ids of a call dealt like cards from a shuffled deck of the whole vocabulary,
    reshuffled when it runs out (without replacement, meant to "cover the vocabulary
    evenly")."""

    def __call__(self, x):
        selected = self.select(x, self.eligible(x))
        to_random, to_mask = self.categories(selected)
        k = int(to_random.sum())
        decks = torch.cat([torch.randperm(self.n_tokens) for _ in range(k // self.n_tokens + 1)])
        out = torch.where(to_mask, self.mask, x)
        out[to_random] = decks[:k]
        return out, self.labels(x, out, selected)


class BalancedCategories(Correct):
    """Exactly 80% / 10% / 10% of a call's selected positions per category, in shuffled order
    (a quota instead of a draw)."""

    def categories(self, selected):
        k = int(selected.sum())
        n_random, n_keep = round(k * self.r), round(k * self.n)
        cat = torch.zeros(k, dtype=torch.long)
        cat[:n_random], cat[n_random:n_random + n_keep] = 1, 2
        cat = cat[torch.randperm(k)]
        full = torch.full(selected.shape, -1, dtype=torch.long)
        full[selected] = cat
        return full == 1, full == 0


# -- only right when seeded before every call -------------------------------------------------


class ReseedsFromInitialSeed(Correct):
    """Draws from a generator seeded with `torch.initial_seed()` in every call: reproducible
    per seed, but a masker seeded once repeats its first mask on every later call."""

    def __call__(self, x):
        g = torch.Generator().manual_seed(torch.initial_seed())
        u = torch.rand((3,) + tuple(x.shape), generator=g)
        selected = self.eligible(x) & (u[0] < self.p)
        to_random, to_mask = selected & (u[1] < self.r), selected & (u[1] >= self.r + self.n)
        ids = (u[2] * self.n_tokens).long().clamp(max=self.n_tokens - 1)
        out = torch.where(to_random, ids, torch.where(to_mask, self.mask, x))
        return out, self.labels(x, out, selected)


class SeedAsCounterOffset(Correct):
    """A counter-based stream with a fixed key, the seed as the counter's start and the counter
    advanced by each call's draws (restarted whenever torch's generator is freshly seeded): the
    same seed gives the same masks and a seeding called many times draws afresh, but seed
    s + 1 reads seed s's stream one position later."""

    stream = torch.rand(1 << 22, generator=torch.Generator().manual_seed(2024))
    used = 0

    def __call__(self, x):
        seed = torch.initial_seed()
        if torch.equal(torch.get_rng_state(), torch.Generator().manual_seed(seed).get_state()):
            self.used = 0                     # freshly seeded: the counter restarts
        torch.rand(1)                         # the global generator is no longer fresh
        n = x.numel()
        at = (seed + self.used + torch.arange(3 * n)) % self.stream.numel()
        self.used += 3 * n
        u = self.stream[at].view((3,) + tuple(x.shape))
        selected = self.eligible(x) & (u[0] < self.p)
        to_random, to_mask = selected & (u[1] < self.r), selected & (u[1] >= self.r + self.n)
        ids = (u[2] * self.n_tokens).long().clamp(max=self.n_tokens - 1)
        out = torch.where(to_random, ids, torch.where(to_mask, self.mask, x))
        return out, self.labels(x, out, selected)


# -- a category tied to how its position was selected -------------------------------------------


class RunsMaskedWhole(Correct):
    """A selected position whose left neighbour (in the sequence) is selected too becomes
    [MASK]: runs of selections are masked whole, as a span masker would."""

    def categories(self, selected):
        to_random, to_mask = super().categories(selected)
        left = torch.zeros_like(selected)
        left[1:] = selected[:-1]
        run = selected & left
        return to_random & ~run, to_mask | run


class AtLeastOneMaskPerSequence(Correct):
    """A sequence whose selected positions drew no [MASK] gets its first selected position
    turned into [MASK] (so that every sequence "has something to predict")."""

    def categories(self, selected):
        to_random, to_mask = super().categories(selected)
        none = selected.any(0) & ~to_mask.any(0)
        first = selected.long().argmax(0)
        cols = torch.nonzero(none).squeeze(1)
        to_mask[first[cols], cols] = True
        to_random[first[cols], cols] = False
        return to_random, to_mask


class CapLeavesExcessUnchanged(Correct):
    """At most 24 predictions per sequence are replaced; selected positions beyond the 24th
    keep their label but are left unchanged (a cap applied to the replacements only)."""

    def categories(self, selected):
        to_random, to_mask = super().categories(selected)
        beyond = selected & (torch.cumsum(selected.long(), 0) > 24)
        return to_random & ~beyond, to_mask & ~beyond


# -- behaviour that depends on the call's shape --------------------------------------------------


class DropsPartialTile(Correct):
    """Selects in tiles of 64 positions of the flat array; the last, partial tile of a call
    whose size is not a multiple of 64 is skipped (never selected)."""

    def select(self, x, eligible):
        selected = super().select(x, eligible).flatten()
        tail = x.numel() % 64
        if tail:
            selected[-tail:] = False
        return selected.view(x.shape)


class SmallCallsNoRandom(Correct):
    """Calls under 4,096 positions take a slow path that never draws a random id (those
    positions become [MASK] instead)."""

    def categories(self, selected):
        to_random, to_mask = super().categories(selected)
        if selected.numel() < 4096:
            return torch.zeros_like(to_random), to_mask | to_random
        return to_random, to_mask


class SqueezesSingleSequence(Correct):
    """Squeezes its input, so a batch of one sequence comes back one-dimensional."""

    def __call__(self, x):
        out, y = super().__call__(x)
        return out.squeeze(), y.squeeze()


class LabelsTailOfOddCalls(Correct):
    """A call of an odd number of positions labels its last position with [MASK]'s id, selected
    or not (a remainder loop that writes the wrong buffer): the main run's calls are even."""

    def __call__(self, x):
        out, y = super().__call__(x)
        if x.numel() % 2:
            y.view(-1)[-1] = self.mask
        return out, y


# -- writes into its input only in calls the main run does not make -----------------------------


class WritesInputAfterFirstCall(Correct):
    """Writes its output into the caller's tensor from the second call after a seeding on (a
    buffer reused "once warmed up"): a masker seeded before every call never does it."""

    calls = 0

    def __call__(self, x):
        seed = torch.initial_seed()
        if torch.equal(torch.get_rng_state(), torch.Generator().manual_seed(seed).get_state()):
            self.calls = 0                    # freshly seeded
        self.calls += 1
        out, y = super().__call__(x)
        if self.calls > 1:
            x.copy_(out)
        return out, y


class WritesInputTail(Correct):
    """Masks the tail of a call whose size is not a multiple of 64 in place (a tiled kernel's
    remainder done on the input's buffer): the main run's calls have no tail."""

    def __call__(self, x):
        out, y = super().__call__(x)
        tail = x.numel() % 64
        if tail:
            x.view(-1)[-tail:] = out.reshape(-1)[-tail:]
        return out, y


POWER_BROKEN = {
    "balanced random ids": BalancedRandomIds,
    "balanced categories": BalancedCategories,
    "reseeds from the initial seed": ReseedsFromInitialSeed,
    "seed as counter offset": SeedAsCounterOffset,
    "runs masked whole": RunsMaskedWhole,
    "at least one [MASK] per sequence": AtLeastOneMaskPerSequence,
    "cap leaves the excess unchanged": CapLeavesExcessUnchanged,
    "drops the partial tile": DropsPartialTile,
    "small calls never random": SmallCallsNoRandom,
    "squeezes a single sequence": SqueezesSingleSequence,
    "labels the tail of odd calls": LabelsTailOfOddCalls,
    "writes into its input after the first call": WritesInputAfterFirstCall,
    "writes into its input's tail": WritesInputTail,
}

# The check named for each defect (others may fail as well).
POWER_CAUGHT_BY = {
    "balanced random ids": "random ids collide within a call as independent draws do",
    "balanced categories": "category homogeneous over calls",
    "reseeds from the initial seed": "calls on one seeding give independent masks (all shifts)",
    "seed as counter offset": "nearby seeds (s, s+1) give independent masks (all shifts)",
    "runs masked whole": "category independent of the neighbours' selection",
    "at least one [MASK] per sequence":
        "category independent of its order among the sequence's selected",
    "cap leaves the excess unchanged":
        "category independent of the number selected in its sequence",
    "drops the partial tile": "selection the same at the ends of a call (flat order)",
    "small calls never random": "selection and category the same on every call shape",
    "squeezes a single sequence":
        "masker runs as users call it (seeded once, nearby seeds, every shape)",
    "labels the tail of odd calls":
        "masker runs as users call it (seeded once, nearby seeds, every shape)",
    "writes into its input after the first call": "input not mutated",
    "writes into its input's tail": "input not mutated",
}
