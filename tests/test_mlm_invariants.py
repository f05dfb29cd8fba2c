"""The exact properties of section 5 of the contract, on every backend, over Hypothesis draws.

Each property is one a wrong masker breaks: overwriting the input, labelling an unselected
position, masking `[CLS]`, drawing a random id outside the vocabulary or from `random_exclude`,
changing a position it did not select, or giving a different answer for the same seed.
"""

import numpy as np
from hypothesis import given, strategies as st

from mlm_ref import MaskingConfig
from tests.strategies import batches, configs


def _assert_contract(cfg: MaskingConfig, x: np.ndarray, x_masked: np.ndarray, y: np.ndarray):
    assert x_masked.shape == x.shape and y.shape == x.shape
    assert x_masked.dtype == x.dtype and y.dtype == x.dtype
    selected = y != cfg.padding_token
    # labels: the original token where selected, padding elsewhere
    np.testing.assert_array_equal(y[selected], x[selected])
    # ineligible tokens are never selected
    ineligible = np.isin(x, cfg.ineligible_tokens)
    assert not (selected & ineligible).any(), "an ineligible token was selected"
    # unselected positions pass through untouched
    np.testing.assert_array_equal(x_masked[~selected], x[~selected])
    # a selected position becomes [MASK], stays, or becomes an id that random draws allow
    out = x_masked[selected]
    drawn = (out != cfg.mask_token) & (out != x[selected])
    allowed = np.isin(out[drawn], cfg.random_ids())
    assert allowed.all(), f"random ids outside the allowed set: {out[drawn][~allowed]}"


@given(data=st.data())
def test_masking_keeps_every_exact_invariant(backend, data):
    kw = data.draw(configs())
    x = data.draw(batches(kw))
    before = x.copy()
    mlm = backend.mlm(**kw)
    x_masked, y, native_x = backend.mask(mlm, x, seed=data.draw(st.integers(0, 2**31 - 1)))
    np.testing.assert_array_equal(backend.to_numpy(native_x), before)  # input not mutated
    _assert_contract(mlm.config, before, x_masked, y)


@given(data=st.data())
def test_exact_mode_keeps_every_exact_invariant(backend, data):
    kw = data.draw(configs())
    x = data.draw(batches(kw))
    mlm = backend.mlm(**kw)
    x_masked, y, native_x = backend.mask(mlm, x, key=data.draw(st.integers(0, 2**32 - 1)))
    np.testing.assert_array_equal(backend.to_numpy(native_x), x)
    _assert_contract(mlm.config, x, x_masked, y)


@given(data=st.data())
def test_same_seed_gives_same_output(backend, data):
    kw = data.draw(configs())
    x = data.draw(batches(kw))
    seed = data.draw(st.integers(0, 2**31 - 1))
    mlm = backend.mlm(**kw)
    first, second = backend.mask(mlm, x, seed=seed), backend.mask(mlm, x, seed=seed)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@given(data=st.data())
def test_degenerate_probabilities_force_the_outcome(backend, data):
    """masking_prob 1 selects every eligible token; a category probability of 1 decides all."""
    kw = data.draw(configs())
    category = data.draw(st.sampled_from(["mask", "random", "unchanged"]))
    kw.update(masking_prob=1.0, randomize_prob=float(category == "random"),
              no_change_prob=float(category == "unchanged"))
    x = data.draw(batches(kw))
    mlm = backend.mlm(**kw)
    cfg = mlm.config
    x_masked, y, _ = backend.mask(mlm, x, seed=data.draw(st.integers(0, 2**31 - 1)))
    eligible = ~np.isin(x, cfg.ineligible_tokens)
    np.testing.assert_array_equal(y, np.where(eligible, x, cfg.padding_token))
    if category == "mask":
        assert (x_masked[eligible] == cfg.mask_token).all()
    elif category == "unchanged":
        np.testing.assert_array_equal(x_masked, x)
    else:
        assert np.isin(x_masked[eligible], cfg.random_ids()).all()


@given(data=st.data())
def test_zero_masking_prob_changes_nothing(backend, data):
    kw = data.draw(configs())
    kw["masking_prob"] = 0.0
    x = data.draw(batches(kw))
    mlm = backend.mlm(**kw)
    x_masked, y, _ = backend.mask(mlm, x, seed=data.draw(st.integers(0, 2**31 - 1)))
    np.testing.assert_array_equal(x_masked, x)
    assert (y == mlm.config.padding_token).all()


def test_empty_and_all_ineligible_inputs_come_back_unchanged(backend):
    mlm = backend.mlm(padding_token=0, mask_token=1, no_mask_tokens=[2], n_tokens=10,
                      masking_prob=1.0)
    for x in (np.zeros((0, 4), np.int64), np.zeros((3, 0), np.int32),
              np.array([[0, 1], [2, 2], [1, 0]], np.int64)):
        x_masked, y, _ = backend.mask(mlm, x, seed=0)
        np.testing.assert_array_equal(x_masked, x)
        np.testing.assert_array_equal(y, np.zeros_like(x))
        assert x_masked.dtype == x.dtype and y.dtype == x.dtype


def test_different_seeds_give_different_masks(backend):
    """A masker that ignores its seed (the same mask every call) fails this."""
    mlm = backend.mlm(padding_token=0, mask_token=1, n_tokens=1000)
    x = np.arange(2, 2002, dtype=np.int64).reshape(100, 20)
    a, b = backend.mask(mlm, x, seed=1), backend.mask(mlm, x, seed=2)
    assert (a[1] != b[1]).any()
