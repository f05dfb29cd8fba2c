"""The one masking configuration shared by every backend.

`MaskingConfig` is the only place where the parameters of the contract are validated and the
only place where the probabilities that follow from them are computed. The NumPy, PyTorch and
JAX maskers, and the statistical harness in `verify/`, all read from it; none of them re-derives
a probability on its own.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Iterable

import numpy as np

__all__ = ["MaskingConfig", "MaskerBase", "OutcomeProbs", "non_negative_int",
           "WWM_CATEGORIES", "WWM_SELECTIONS"]

# Whole-word masking's options: the default first, then Google's compatibility mode.
WWM_CATEGORIES = ("word", "piece")
WWM_SELECTIONS = ("bernoulli", "budget")


def non_negative_int(name: str, value, what: str = "token id") -> int:
    """A non-negative integer below 2**63 (it must fit the int64 arrays that carry ids), e.g. a
    token id (bools and floats are refused, even 3.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer {what}, got {value!r} "
                        f"of type {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer {what}, got {value!r}")
    if value >= 2**63:
        raise ValueError(f"{name} must be below 2**63 (an int64 {what}), got {value!r}")
    return int(value)


def _token_set(name: str, values) -> tuple[int, ...]:
    """A collection of token ids, returned sorted and without repeats."""
    if values is None:
        return ()
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a collection of token ids (list, tuple, set), "
                        f"got {values!r} of type {type(values).__name__}")
    ids = [non_negative_int(f"{name} element", v) for v in values]
    return tuple(sorted(set(ids)))


def _probability(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {value!r} "
                        f"of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a finite probability in [0, 1], got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class OutcomeProbs:
    """What an observer of the outputs alone sees at a selected position.

    `mask`: the output is `mask_token`; `original`: the output equals the input token;
    `other`: anything else. They sum to one. They differ from the category probabilities
    because a random draw can land on the original token or on `mask_token`.
    """

    mask: float
    original: float
    other: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.mask, self.original, self.other)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaskingConfig:
    """Validated, immutable parameters of one masker (docs/contract.md, "Parameters and errors").

    Args:
        padding_token: id of `[PAD]`; never masked, and the label of every unselected position.
        mask_token: id of `[MASK]`; never masked (it is already a mask).
        no_mask_tokens: ids that are never masked, e.g. `[CLS]`, `[SEP]`.
        n_tokens: vocabulary size; random replacements are drawn from `0 .. n_tokens-1`.
        masking_prob: probability that an eligible position is selected.
        randomize_prob: probability that a selected position gets a random token.
        no_change_prob: probability that a selected position keeps its token.
        random_exclude: ids never drawn as random replacements (empty by default).
        wwm_category: whole-word masking only: `"word"` (one category draw per word, the
            default) or `"piece"` (Google's: one draw per piece of a selected word).
        wwm_selection: whole-word masking only: `"bernoulli"` (each eligible word selected with
            probability `masking_prob`, the default) or `"budget"` (Google's fixed budget per
            sequence, `wwm_budget`).
        max_predictions: the budget's cap (Google's `max_predictions_per_seq`); None = no cap.
            Only with `wwm_selection="budget"`.

    Raises:
        TypeError: a parameter has the wrong type (the message names it).
        ValueError: a parameter has an invalid value (the message names it and the value).
    """

    padding_token: int
    mask_token: int
    n_tokens: int
    no_mask_tokens: tuple[int, ...] = ()
    masking_prob: float = 0.15
    randomize_prob: float = 0.1
    no_change_prob: float = 0.1
    random_exclude: tuple[int, ...] = ()
    wwm_category: str = "word"
    wwm_selection: str = "bernoulli"
    max_predictions: int | None = None

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        put("padding_token", non_negative_int("padding_token", self.padding_token))
        put("mask_token", non_negative_int("mask_token", self.mask_token))
        if self.padding_token == self.mask_token:
            raise ValueError(f"padding_token and mask_token must differ, both are "
                             f"{self.padding_token}")
        put("n_tokens", non_negative_int("n_tokens", self.n_tokens, "vocabulary size"))
        if self.n_tokens < 1:
            raise ValueError(f"n_tokens must be >= 1, got {self.n_tokens}")
        if self.n_tokens > 2**31 - 1:
            raise ValueError(f"n_tokens must be < 2**31 (random ids are drawn as int32), "
                             f"got {self.n_tokens}")
        put("no_mask_tokens", _token_set("no_mask_tokens", self.no_mask_tokens))
        for name in ("masking_prob", "randomize_prob", "no_change_prob"):
            put(name, _probability(name, getattr(self, name)))
        if self.randomize_prob + self.no_change_prob > 1.0 + 1e-12:
            raise ValueError(f"randomize_prob + no_change_prob must be <= 1, got "
                             f"{self.randomize_prob} + {self.no_change_prob} = "
                             f"{self.randomize_prob + self.no_change_prob}")
        put("random_exclude", _token_set("random_exclude", self.random_exclude))
        outside = [t for t in self.random_exclude if t >= self.n_tokens]
        if outside:
            raise ValueError(f"random_exclude ids must lie in [0, n_tokens={self.n_tokens}), "
                             f"got {outside}")
        if len(self.random_exclude) >= self.n_tokens:
            raise ValueError(f"random_exclude must leave at least one id of the "
                             f"{self.n_tokens} to draw, got {len(self.random_exclude)} ids")
        for name, allowed in (("wwm_category", WWM_CATEGORIES),
                              ("wwm_selection", WWM_SELECTIONS)):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be one of {allowed}, got {value!r} of type "
                                f"{type(value).__name__}")
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.max_predictions is not None:
            put("max_predictions", non_negative_int("max_predictions", self.max_predictions,
                                                    "count"))
            if self.max_predictions < 1:
                raise ValueError(f"max_predictions must be >= 1 or None, got "
                                 f"{self.max_predictions}")
            if self.wwm_selection != "budget":
                raise ValueError("max_predictions caps the budget: it needs "
                                 "wwm_selection='budget'")

    @property
    def wwm_compat(self) -> bool:
        """Whether a whole-word compatibility mode is set (these need `word_ids`)."""
        return self.wwm_category != "word" or self.wwm_selection != "bernoulli"

    def wwm_budget(self, n_tokens: int) -> int:
        """Google's `num_to_predict` for a sequence of `n_tokens` non-padding positions.

        `min(max_predictions, max(1, round(n_tokens * masking_prob)))`, with the product in
        float64 and Python 3's `round` (half to even: 2.5 -> 2, 3.5 -> 4). Two deviations, both
        so that nothing is masked where nothing can be: 0 when `n_tokens` is 0 or
        `masking_prob` is 0 (Google's `max(1, ...)` would ask for one prediction).
        """
        n = non_negative_int("n_tokens", n_tokens, "count")
        if n == 0 or self.masking_prob == 0.0:
            return 0
        budget = max(1, round(n * self.masking_prob))
        return budget if self.max_predictions is None else min(self.max_predictions, budget)

    def wwm_budget_table(self, seq_len: int) -> np.ndarray:
        """`wwm_budget(n)` for n = 0 .. seq_len, int64 `[seq_len + 1]`: every backend looks
        its budgets up here, so none rounds a float on its own."""
        return np.array([self.wwm_budget(n) for n in range(seq_len + 1)], dtype=np.int64)

    # -- derived quantities: the single source for every backend and for the harness --

    @property
    def ineligible_tokens(self) -> tuple[int, ...]:
        """Ids never selected: `no_mask_tokens`, `padding_token` and `mask_token`, sorted."""
        return tuple(sorted(set(self.no_mask_tokens) | {self.padding_token, self.mask_token}))

    @property
    def max_output_id(self) -> int:
        """The largest id either output can hold: a random id, `mask_token` or a label."""
        return max(self.n_tokens - 1, self.mask_token, self.padding_token)

    @property
    def mask_token_prob(self) -> float:
        """Probability that a selected position becomes `mask_token` (the remainder)."""
        return max(0.0, 1.0 - self.randomize_prob - self.no_change_prob)

    @property
    def n_random(self) -> int:
        """How many ids a random replacement is drawn from (V minus `random_exclude`)."""
        return self.n_tokens - len(self.random_exclude)

    def random_ids(self) -> np.ndarray:
        """The ids a random replacement is drawn from, ascending; int64 `[n_random]`."""
        ids = np.arange(self.n_tokens, dtype=np.int64)
        return np.delete(ids, np.asarray(self.random_exclude, dtype=np.int64))

    def is_random_id(self, token: int) -> bool:
        """Whether `token` can be drawn as a random replacement."""
        return 0 <= token < self.n_tokens and token not in self.random_exclude

    def category_probs(self) -> tuple[float, float, float]:
        """(mask, random, unchanged): the exclusive categories of a selected position."""
        return (self.mask_token_prob, self.randomize_prob, self.no_change_prob)

    def outcome_probs(self, original: int) -> OutcomeProbs:
        """Observed-outcome probabilities at a selected position holding `original`.

        A random draw hits `mask_token` with probability 1/V' if `mask_token` can be drawn,
        and hits the original with probability 1/V' if the original can be drawn, where V' is
        `n_random`. With the defaults and no exclusions: 0.8 + 0.1/V, 0.1 + 0.1/V and
        0.1 (V-2)/V.
        """
        if original == self.mask_token:
            raise ValueError("a position holding mask_token is never selected")
        per_id = self.randomize_prob / self.n_random
        hit_mask = per_id if self.is_random_id(self.mask_token) else 0.0
        hit_original = per_id if self.is_random_id(original) else 0.0
        mask = self.mask_token_prob + hit_mask
        same = self.no_change_prob + hit_original
        return OutcomeProbs(mask=mask, original=same, other=max(0.0, 1.0 - mask - same))

    def word_outcome_probs(self, originals) -> OutcomeProbs:
        """What an observer sees at a selected *word* (whole-word masking) holding `originals`.

        `mask`: every piece shows `mask_token`; `original`: every piece shows its input token;
        `other`: anything else. With `wwm_category="word"` one category covers the word, so
        `mask = (1-r-n) + r q_m^L` and `original = n + r prod(q_i)`, where `q_m`, `q_i` are the
        chances (1/V' or 0) that one random draw lands on `mask_token` or on piece i's token.
        With `"piece"` each piece is a token-level outcome on its own, and the two are products.
        Each piece alone shows `outcome_probs(original)` either way.
        """
        originals = [int(o) for o in originals]
        if not originals:
            raise ValueError("a word has at least one piece")
        hit_mask = 1 / self.n_random if self.is_random_id(self.mask_token) else 0.0
        hits = [1 / self.n_random if self.is_random_id(o) else 0.0 for o in originals]
        if self.wwm_category == "piece":
            pieces = [self.outcome_probs(o) for o in originals]
            mask, same = math.prod(q.mask for q in pieces), math.prod(q.original for q in pieces)
        else:
            mask = self.mask_token_prob + self.randomize_prob * hit_mask ** len(originals)
            same = self.no_change_prob + self.randomize_prob * math.prod(hits)
        return OutcomeProbs(mask=mask, original=same, other=max(0.0, 1.0 - mask - same))

    def exact_thresholds(self) -> tuple[np.float32, np.float32, np.float32]:
        """float32 thresholds of exact mode: (select, random, random-or-unchanged).

        Section 4 of the contract compares float32 uniforms against these, so every backend
        must round them the same way: the sum is formed in float64, then rounded once.
        """
        return (np.float32(self.masking_prob), np.float32(self.randomize_prob),
                np.float32(self.randomize_prob + self.no_change_prob))


class MaskerBase:
    """The parameters every backend's `MLM` takes, validated once into `self.config`.

    Args:
        padding_token: id of `[PAD]`; never masked, and the label of unselected positions.
        mask_token: id of `[MASK]`.
        no_mask_tokens: ids never masked, such as `[CLS]` and `[SEP]`.
        n_tokens: vocabulary size, the range of random replacements.
        masking_prob: probability that an eligible token is selected (0.15).
        randomize_prob: probability that a selected token becomes a random token (0.1).
        no_change_prob: probability that a selected token is left unchanged (0.1).
        random_exclude: ids never drawn as random replacements (none by default).
        wwm_category, wwm_selection, max_predictions: whole-word masking's compatibility
            options (`MaskingConfig`); they need `word_ids=` on every call.

    Each backend's `MLM` derives from it and adds `__call__`: the masking is the backend's own.
    """

    def __init__(self, *, padding_token: int, mask_token: int, no_mask_tokens=(),
                 n_tokens: int, masking_prob: float = 0.15, randomize_prob: float = 0.1,
                 no_change_prob: float = 0.1, random_exclude=(), wwm_category: str = "word",
                 wwm_selection: str = "bernoulli", max_predictions: int | None = None):
        self.config = MaskingConfig(
            padding_token=padding_token, mask_token=mask_token, no_mask_tokens=no_mask_tokens,
            n_tokens=n_tokens, masking_prob=masking_prob, randomize_prob=randomize_prob,
            no_change_prob=no_change_prob, random_exclude=random_exclude,
            wwm_category=wwm_category, wwm_selection=wwm_selection,
            max_predictions=max_predictions)
