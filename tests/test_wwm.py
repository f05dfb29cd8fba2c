"""Whole-word masking (docs/contract.md, "Whole-word masking") on every backend.

Exact properties over Hypothesis draws (all-or-nothing words, one category per word, negative
ids and blocked words never selected, inputs untouched, exact mode bit-identical across the
backends, Google's budget against a word-by-word oracle), the error cases, and one statistical
test per backend and mode: the share of eligible words selected.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from mlm_ref import MaskingConfig, threefry
from tests.strategies import batches, configs
from tests.wwm_support import budget_oracle, words_of, word_ids_like, wwm_call
from verify.engine.frameworks import BACKENDS

KW = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=100)
OPTIONS = st.sampled_from([{}, dict(wwm_category="piece"), dict(wwm_selection="budget"),
                           dict(wwm_selection="budget", wwm_category="piece",
                                max_predictions=3)])


def _draw_case(data):
    kw = {**data.draw(configs()), **data.draw(OPTIONS)}
    x = data.draw(batches(kw))
    return kw, x, data.draw(word_ids_like(x))


@given(data=st.data())
def test_exact_mode_is_bit_identical_across_backends(backend, data):
    kw, x, w = _draw_case(data)
    key = data.draw(st.one_of(st.integers(0, 2**63 - 1),
                              st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2)))
    numpy = BACKENDS["numpy"]
    want = wwm_call(numpy, numpy.mlm(**kw), x, w, key=key)
    got = wwm_call(backend, backend.mlm(**kw), x, w, key=key)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@given(data=st.data(), exact=st.booleans())
def test_words_are_all_or_nothing_and_never_mutated(backend, data, exact):
    kw, x, w = _draw_case(data)
    cfg = MaskingConfig(**kw)
    seed = data.draw(st.integers(0, 2**31 - 1))
    x_masked, y, x_after, w_after = wwm_call(backend, backend.mlm(**kw), x, w,
                                             **({"key": seed} if exact else {"seed": seed}))
    np.testing.assert_array_equal(x_after, x)                  # inputs untouched
    np.testing.assert_array_equal(w_after, w)
    assert x_masked.dtype == x.dtype and y.dtype == x.dtype and y.shape == x.shape
    selected = y != cfg.padding_token
    np.testing.assert_array_equal(y[selected], x[selected])
    np.testing.assert_array_equal(x_masked[~selected], x[~selected])
    seq_len = x.shape[0]
    sel2 = selected.reshape(seq_len, -1) if x.size else selected.reshape(seq_len, 0)
    in_word = np.zeros(sel2.shape, dtype=bool)
    x2 = x.reshape(sel2.shape)
    for b, rows in words_of(w):
        in_word[rows, b] = True
        assert sel2[rows, b].all() or not sel2[rows, b].any(), "a word was split"
        if np.isin(x2[rows, b], cfg.ineligible_tokens).any():
            assert not sel2[rows, b].any(), "a word with an ineligible piece was selected"
    assert not (sel2 & ~in_word).any(), "a position outside every word was selected"
    if cfg.wwm_selection == "budget":
        n = np.count_nonzero(x2 != cfg.padding_token, axis=0)
        assert (sel2.sum(0) <= [cfg.wwm_budget(int(k)) for k in n]).all()


@given(data=st.data())
def test_budget_mode_is_googles_walk(backend, data):
    """Exact mode's budget selection equals a word-by-word oracle of Google's loop."""
    kw = {**data.draw(configs()), "wwm_selection": "budget",
          "max_predictions": data.draw(st.one_of(st.none(), st.integers(1, 6)))}
    x = data.draw(batches(kw))
    w = data.draw(word_ids_like(x))
    key = data.draw(st.integers(0, 2**32 - 1))
    _, y, _, _ = wwm_call(backend, backend.mlm(**kw), x, w, key=key)
    cfg = MaskingConfig(**kw)
    if x.size == 0:
        return
    k_sel = threefry.split(threefry.key_data(key), 3)[0]
    u2 = threefry.uniform(k_sel, x.shape).reshape(x.shape[0], -1)
    want = budget_oracle(x.reshape(u2.shape), w.reshape(u2.shape), u2, cfg)
    np.testing.assert_array_equal((y != cfg.padding_token).reshape(u2.shape), want)


def test_budget_skips_a_word_that_would_overflow(backend):
    # 7 non-padding positions, p = 0.3: budget round(2.1) = 2. The 3-piece word never fits;
    # the two 1-piece words always do, whatever the order of the walk.
    x = np.array([2, 10, 11, 12, 20, 30, 3, 0], dtype=np.int32)
    w = np.array([-1, 0, 0, 0, 1, 2, -1, -1], dtype=np.int32)
    mlm = backend.mlm(**KW, masking_prob=0.3, wwm_selection="budget")
    for seed in range(20):
        for mode in ({"key": seed}, {"seed": seed}):
            _, y, _, _ = wwm_call(backend, mlm, x, w, **mode)
            np.testing.assert_array_equal(y, [0, 0, 0, 0, 20, 30, 0, 0])


def test_budget_rounds_half_to_even():
    cfg = MaskingConfig(**KW, masking_prob=0.5, wwm_selection="budget")
    assert [cfg.wwm_budget(n) for n in (0, 1, 3, 5, 7)] == [0, 1, 2, 2, 4]
    capped = MaskingConfig(**KW, wwm_selection="budget", max_predictions=20)
    assert capped.wwm_budget(512) == 20 and capped.wwm_budget(100) == 15
    assert MaskingConfig(**KW, masking_prob=0.0, wwm_selection="budget").wwm_budget(9) == 0


@pytest.mark.parametrize("exact", [True, False])
def test_one_category_per_word(backend, exact):
    """With r = 0 a selected word is all [MASK] or all unchanged; with n = 0 and random ids
    disjoint from the text it is all [MASK] or all random. Per-piece categories mix both."""
    rng = np.random.default_rng(5)
    x = rng.integers(10, 50, (64, 32)).astype(np.int32)
    w = np.cumsum(rng.random(x.shape) < 0.4, axis=0).astype(np.int32)
    mode = {"key": 3} if exact else {"seed": 3}
    for extra, other in ((dict(randomize_prob=0.0, no_change_prob=0.5), lambda xm, x0: xm == x0),
                         (dict(randomize_prob=0.5, no_change_prob=0.0,
                               random_exclude=range(50)), lambda xm, x0: xm >= 50)):
        mixed = {}
        for category in ("word", "piece"):
            mlm = backend.mlm(**KW, masking_prob=0.5, wwm_category=category, **extra)
            x_masked, y, _, _ = wwm_call(backend, mlm, x, w, **mode)
            mixed[category] = 0
            for b, rows in words_of(w):
                if y[rows[0], b] == 0:
                    continue
                masked = x_masked[rows, b] == 1
                assert (masked | other(x_masked[rows, b], x[rows, b])).all()
                mixed[category] += bool(masked.any() and not masked.all())
        assert mixed["word"] == 0, "a word got several categories"
        assert mixed["piece"] > 0, "per-piece categories never differed within a word"


@pytest.mark.parametrize("exact", [True, False])
def test_share_of_words_selected_is_masking_prob(backend, exact):
    """Binomial test on the eligible words selected, two-sided at false-alarm rate 1e-7 per
    run. About 40,000 eligible words: it detects a selection rate off by 0.01 (0.15 -> 0.16;
    e.g. a word selected when any piece's coin, not its first piece's, comes up: far more)."""
    rng = np.random.default_rng(11)
    x = rng.integers(4, 100, (256, 320)).astype(np.int32)
    x[rng.random(x.shape) < 0.05] = 2                            # [CLS]-like: blocks words
    w = np.cumsum(rng.random(x.shape) < 0.6, axis=0).astype(np.int32)
    w[rng.random(x.shape) < 0.05] = -1
    mlm = backend.mlm(**KW, masking_prob=0.15)
    _, y, _, _ = wwm_call(backend, mlm, x, w, **({"key": 99} if exact else {"seed": 99}))
    eligible = chosen = 0
    for b, rows in words_of(w):
        if not np.isin(x[rows, b], (0, 1, 2, 3)).any():
            eligible += 1
            chosen += bool(y[rows[0], b] != 0)
    assert eligible > 35_000
    assert stats.binomtest(chosen, eligible, 0.15).pvalue > 1e-7, (chosen, eligible)


def test_word_ids_none_is_token_level_masking(backend):
    x = np.random.default_rng(1).integers(0, 100, (50, 8)).astype(np.int32)
    mlm = backend.mlm(**KW)
    plain = backend.mask(mlm, x, key=7)
    again = backend.mask(mlm, x, key=7)        # the same call, word_ids left at its default
    np.testing.assert_array_equal(plain[0], again[0])
    # every position its own word: whole-word selection is token-level selection
    w = np.arange(x.size, dtype=np.int32).reshape(x.shape)
    words = wwm_call(backend, mlm, x, w, key=7)
    np.testing.assert_array_equal(words[0], plain[0])
    np.testing.assert_array_equal(words[1], plain[1])


BAD_CALLS = [
    # (word ids, exception, words the message must contain)
    (np.zeros((5, 3), np.int32), ValueError, ["word_ids", "shape"]),
    (np.zeros((4, 3), np.float32), TypeError, ["word_ids", "float32"]),
    (np.zeros((4, 3), np.bool_), TypeError, ["word_ids", "bool"]),
]


@pytest.mark.parametrize("w, error, words", BAD_CALLS, ids=["shape", "float", "bool"])
def test_bad_word_ids_are_refused(backend, w, error, words):
    x = np.full((4, 3), 10, np.int32)
    with pytest.raises(error) as caught:
        wwm_call(backend, backend.mlm(**KW), x, w, key=0)
    for word in words:
        assert word in str(caught.value), f"{word!r} missing from: {caught.value}"


@pytest.mark.parametrize("option", [dict(wwm_category="piece"),
                                    dict(wwm_selection="budget")])
def test_compat_options_need_word_ids(backend, option):
    x = np.full((4, 3), 10, np.int32)
    with pytest.raises(ValueError, match="word_ids"):
        backend.mask(backend.mlm(**KW, **option), x, key=0)


@pytest.mark.parametrize("override, error, words", [
    (dict(wwm_category="words"), ValueError, ["wwm_category", "words"]),
    (dict(wwm_category=1), TypeError, ["wwm_category", "int"]),
    (dict(wwm_selection="google"), ValueError, ["wwm_selection", "google"]),
    (dict(max_predictions=5), ValueError, ["max_predictions", "budget"]),
    (dict(wwm_selection="budget", max_predictions=0), ValueError, ["max_predictions", "0"]),
    (dict(wwm_selection="budget", max_predictions=2.0), TypeError, ["max_predictions"]),
])
def test_bad_wwm_options_are_refused_by_name(backend, override, error, words):
    with pytest.raises(error) as caught:
        backend.mlm(**KW, **override)
    for word in words:
        assert word in str(caught.value), f"{word!r} missing from: {caught.value}"


def test_torch_word_ids_must_be_a_tensor_on_x_device():
    torch = pytest.importorskip("torch")
    mlm = BACKENDS["torch"].mlm(**KW)
    with pytest.raises(TypeError, match="word_ids"):
        mlm(torch.full((4, 3), 10), word_ids=np.zeros((4, 3), np.int64), key=0)


def test_jax_whole_word_masking_runs_inside_jit():
    jax = pytest.importorskip("jax")
    mlm = BACKENDS["jax"].mlm(**KW, wwm_selection="budget")
    x = np.random.default_rng(2).integers(4, 100, (40, 6)).astype(np.int32)
    w = np.cumsum(np.random.default_rng(3).random(x.shape) < 0.5, axis=0).astype(np.int32)
    jitted = jax.jit(lambda a, b, k: mlm(a, word_ids=b, key=k))
    got = jitted(x, w, jax.random.key(4))
    want = BACKENDS["numpy"].mlm(**KW, wwm_selection="budget")(x, word_ids=w, key=4)
    np.testing.assert_array_equal(np.asarray(got[0]), want[0])


def test_exact_mode_on_cuda_equals_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    mlm = BACKENDS["torch"].mlm(**KW, wwm_selection="budget")
    x = torch.randint(4, 100, (512, 64))
    w = (torch.rand(x.shape) < 0.5).cumsum(0)
    cpu = mlm(x, word_ids=w, key=9)
    cuda = mlm(x.cuda(), word_ids=w.cuda(), key=9)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, cuda))


@pytest.mark.parametrize("options", [{}, dict(wwm_selection="budget", wwm_category="piece")])
def test_collators_mask_each_example_as_alone(options):
    """An example with `word_ids` is masked in a batch exactly as alone by its stream key, by
    the torch collator and the JAX one alike; padding is never selected."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("jax")
    from mlm_jax.collate import collate
    from mlm_ref.streams import example_keys
    from mlm_torch.collate import MLMCollator
    kw = dict(padding_token=0, mask_token=103, no_mask_tokens=[101, 102], n_tokens=1000,
              masking_prob=0.4, **options)
    rng = np.random.default_rng(4)
    examples = []
    for i in range(7):
        n = int(rng.integers(3, 30))
        ids = [101, *rng.integers(200, 1000, n).tolist(), 102]
        words = [-1, *np.cumsum(rng.random(n) < 0.5).tolist(), -1]
        examples.append({"input_ids": ids, "word_ids": words, "index": 10 + i})
    collator = MLMCollator(seed=8, labels="padding_token", **kw)
    got = collator(examples)
    jax_got = collate(examples, MaskingConfig(**kw), seed=8, epoch=0, labels="padding_token")
    keys = example_keys(8, 0, [e["index"] for e in examples])
    mlm = BACKENDS["numpy"].mlm(**kw)
    for r, e in enumerate(examples):
        n = len(e["input_ids"])
        want = mlm(np.array(e["input_ids"]), word_ids=np.array(e["word_ids"]), key=keys[r])
        np.testing.assert_array_equal(got["input_ids"][r, :n].numpy(), want[0])
        np.testing.assert_array_equal(got["labels"][r, :n].numpy(), want[1])
        assert (got["labels"][r, n:] == 0).all()
    for name in ("input_ids", "labels"):
        np.testing.assert_array_equal(got[name].numpy(), jax_got[name])
    with pytest.raises(ValueError, match="word_ids"):
        collator([{**examples[0], "word_ids": [-1]}])
    if options:  # Google's modes need words: a batch without them is refused, not token-masked
        plain = [{k: v for k, v in e.items() if k != "word_ids"} for e in examples]
        with pytest.raises(ValueError, match="word_ids"):
            collator(plain)
        with pytest.raises(ValueError, match="word_ids"):
            collate(plain, MaskingConfig(**kw), seed=8, epoch=0)
    assert torch.is_tensor(got["input_ids"])


def test_word_outcome_probs_by_hand():
    # V' = 4 ids, [MASK] (1) among them, pieces 2 and 7 (7 cannot be drawn): r = n = 0.1
    cfg = MaskingConfig(padding_token=0, mask_token=1, n_tokens=4, no_mask_tokens=[])
    q = cfg.word_outcome_probs([2, 7])
    assert q.mask == pytest.approx(0.8 + 0.1 / 16) and q.original == pytest.approx(0.1)
    assert q.mask + q.original + q.other == pytest.approx(1.0)
    piece = MaskingConfig(padding_token=0, mask_token=1, n_tokens=4, wwm_category="piece")
    p = piece.word_outcome_probs([2, 7])
    assert p.mask == pytest.approx((0.8 + 0.1 / 4) ** 2)
    assert p.original == pytest.approx((0.1 + 0.1 / 4) * 0.1)
    with pytest.raises(ValueError, match="piece"):
        cfg.word_outcome_probs([])
