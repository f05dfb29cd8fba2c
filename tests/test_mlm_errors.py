"""Every bad configuration and bad input of section 2 gets a clear error naming what is wrong."""

import numpy as np
import pytest

from mlm_ref import MaskingConfig

GOOD = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=100)

BAD_CONFIGS = [
    # (override, exception, words the message must contain)
    (dict(masking_prob=1.5), ValueError, ["masking_prob", "1.5"]),
    (dict(masking_prob=-0.1), ValueError, ["masking_prob", "-0.1"]),
    (dict(masking_prob=float("nan")), ValueError, ["masking_prob", "nan"]),
    (dict(randomize_prob=float("inf")), ValueError, ["randomize_prob", "inf"]),
    (dict(no_change_prob=2), ValueError, ["no_change_prob", "2"]),
    (dict(masking_prob="0.15"), TypeError, ["masking_prob", "str"]),
    (dict(masking_prob=True), TypeError, ["masking_prob", "True"]),
    (dict(randomize_prob=0.6, no_change_prob=0.5), ValueError,
     ["randomize_prob + no_change_prob", "0.6", "0.5"]),
    (dict(n_tokens=0), ValueError, ["n_tokens", "0"]),
    (dict(n_tokens=10.0), TypeError, ["n_tokens", "float"]),
    (dict(n_tokens=2**31), ValueError, ["n_tokens", str(2**31)]),
    (dict(padding_token=-1), ValueError, ["padding_token", "-1"]),
    (dict(mask_token=2**63), ValueError, ["mask_token", "2**63", str(2**63)]),
    (dict(no_mask_tokens=[2, 10**20]), ValueError, ["no_mask_tokens", str(10**20)]),
    (dict(mask_token=1.0), TypeError, ["mask_token", "float"]),
    (dict(mask_token=None), TypeError, ["mask_token", "None"]),
    (dict(padding_token=1), ValueError, ["padding_token", "mask_token", "1"]),
    (dict(no_mask_tokens=5), TypeError, ["no_mask_tokens", "int"]),
    (dict(no_mask_tokens="cls"), TypeError, ["no_mask_tokens", "cls"]),
    (dict(no_mask_tokens=[2, -3]), ValueError, ["no_mask_tokens", "-3"]),
    (dict(no_mask_tokens=[2, False]), TypeError, ["no_mask_tokens", "False"]),
    (dict(random_exclude=[100]), ValueError, ["random_exclude", "100"]),
    (dict(random_exclude=range(100)), ValueError, ["random_exclude", "at least one"]),
    (dict(random_exclude=[1.5]), TypeError, ["random_exclude", "1.5"]),
]


@pytest.mark.parametrize("override, error, words", BAD_CONFIGS,
                         ids=[str(c[0]) for c in BAD_CONFIGS])
def test_bad_config_is_refused_by_name(backend, override, error, words):
    with pytest.raises(error) as caught:
        backend.mlm(**{**GOOD, **override})
    for word in words:
        assert word in str(caught.value), f"{word!r} missing from: {caught.value}"


def test_config_normalises_token_sets_and_is_frozen():
    cfg = MaskingConfig(**GOOD, random_exclude={5, 3, 5})
    assert cfg.random_exclude == (3, 5) and cfg.no_mask_tokens == (2, 3)
    assert cfg.ineligible_tokens == (0, 1, 2, 3)
    with pytest.raises(AttributeError):
        cfg.masking_prob = 0.5
    assert hash(cfg) == hash(MaskingConfig(**GOOD, random_exclude=[3, 5]))


def test_expected_outcome_probabilities_include_the_random_hits():
    cfg = MaskingConfig(**GOOD)
    p = cfg.outcome_probs(original=50)
    assert p.as_tuple() == pytest.approx((0.8 + 0.1 / 100, 0.1 + 0.1 / 100, 0.1 * 98 / 100))
    cfg = MaskingConfig(**GOOD, random_exclude=[1, 50])  # neither [MASK] nor 50 can be drawn
    assert cfg.outcome_probs(original=50).as_tuple() == pytest.approx((0.8, 0.1, 0.1))
    assert cfg.outcome_probs(original=7).original == pytest.approx(0.1 + 0.1 / 98)


BAD_INPUTS = [
    # (array, exception, words)
    (np.array([[1.0, 2.0]]), TypeError, ["dtype", "float"]),
    (np.array([[True, False]]), TypeError, ["dtype", "bool"]),
    (np.array(5, dtype=np.int64), ValueError, ["rank"]),
    (np.array([[4, -7]], dtype=np.int64), ValueError, ["negative", "-7"]),
    (np.array([[4, 5]], dtype=np.int8), TypeError, ["int8", "999"]),
]


@pytest.mark.parametrize("x, error, words", BAD_INPUTS,
                         ids=["float", "bool", "scalar", "negative", "dtype-too-small"])
def test_bad_input_is_refused_with_a_clear_message(backend, x, error, words):
    mlm = backend.mlm(**{**GOOD, "n_tokens": 1000})
    native = backend.asarray(x)
    with pytest.raises(error) as caught:
        backend.call(mlm, native, seed=0)
    for word in words:
        assert word in str(caught.value), f"{word!r} missing from: {caught.value}"


def test_numpy_rejects_a_bad_rng():
    from mlm_ref import MLM
    mlm = MLM(**GOOD)
    with pytest.raises(TypeError, match="rng"):
        mlm(np.arange(4), rng="seed")
    with pytest.raises(ValueError, match="rng"):
        mlm(np.arange(4), rng=-1)
    with pytest.raises(ValueError, match="either rng= .* or key="):
        mlm(np.arange(4), rng=0, key=0)


def test_torch_rejects_a_generator_on_another_device_or_a_tensorless_input():
    torch = pytest.importorskip("torch")
    from mlm_torch import MLM
    mlm = MLM(**GOOD)
    with pytest.raises(TypeError, match="torch.Tensor"):
        mlm(np.arange(4))
    with pytest.raises(TypeError, match="generator"):
        mlm(torch.arange(4), generator=0)
    with pytest.raises(ValueError, match="either generator= .* or key="):
        mlm(torch.arange(4), generator=torch.Generator(), key=0)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="generator is on"):
            mlm(torch.arange(4, device="cuda"), generator=torch.Generator())


def test_jax_requires_a_valid_key():
    pytest.importorskip("jax")
    from mlm_jax import MLM
    mlm = MLM(**GOOD)
    x = np.arange(4, dtype=np.int32)
    with pytest.raises(TypeError, match="key is required"):
        mlm(x, key=None)
    with pytest.raises(TypeError, match="key"):
        mlm(x, key=True)
    with pytest.raises(ValueError, match="two uint32"):
        mlm(x, key=[1, 2, 3])
    with pytest.raises(ValueError, match="two uint32"):
        mlm(x, key=[1, 2**32])
