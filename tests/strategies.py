"""Hypothesis strategies: masking configs, special-token layouts and token batches."""

import numpy as np
from hypothesis import strategies as st

PROBS = st.one_of(st.sampled_from([0.0, 0.1, 0.15, 0.5, 1.0]),
                  st.floats(0.0, 1.0, allow_nan=False))


@st.composite
def configs(draw, max_vocab: int = 3000):
    """Keyword arguments of a valid `MLM`: ids inside and outside the vocabulary, any probs."""
    n_tokens = draw(st.one_of(st.integers(1, 8), st.integers(9, max_vocab)))
    ids = st.integers(0, n_tokens + 5)
    padding, mask = draw(st.lists(ids, min_size=2, max_size=2, unique=True))
    randomize = draw(PROBS)
    no_change = draw(PROBS.filter(lambda p: p + randomize <= 1.0))
    exclude = draw(st.lists(st.integers(0, n_tokens - 1), max_size=min(n_tokens - 1, 20),
                            unique=True)) if n_tokens > 1 else []
    return dict(padding_token=padding, mask_token=mask,
                no_mask_tokens=draw(st.lists(ids, max_size=4)), n_tokens=n_tokens,
                masking_prob=draw(PROBS), randomize_prob=randomize, no_change_prob=no_change,
                random_exclude=exclude)


@st.composite
def batches(draw, config: dict, max_size: int = 300):
    """Token ids of rank 1..3 where special tokens are frequent enough to matter."""
    shape = tuple(draw(st.lists(st.integers(0, 12), min_size=1, max_size=3)
                       .filter(lambda s: int(np.prod(s)) <= max_size)))
    dtype = draw(st.sampled_from([np.int32, np.int64]))
    specials = [config["padding_token"], config["mask_token"], *config["no_mask_tokens"]]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(0, config["n_tokens"] + 6, size=shape)
    special = rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 0.9]))
    x = np.where(special, rng.choice(specials, size=shape), x)
    return x.astype(dtype)
