"""The audited maskers (verify.published): each adapter does what its published source does, and
the gate says so. The published packages are optional extras (`pip install -e ".[audit]"`):
the tests of Megatron-core and Keras Hub skip without them; Google BERT and fairseq are
re-implementations and always run."""

import contextlib
import importlib.util
import os
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlm_ref.config import MaskingConfig  # noqa: E402
from verify import check_maskers  # noqa: E402
from verify.published import fairseq as fairseq_audit  # noqa: E402
from verify.published.google_bert import google_bert, google_bert_wwm  # noqa: E402
from verify.registry import BERT, REGISTRY, WWM_REGISTRY  # noqa: E402

CONFIG = MaskingConfig(**BERT)
CLS, SEP = BERT["no_mask_tokens"]


def _batch(seed=0, seq=128, batch=64):
    """BERT-like columns `[CLS] ... [SEP]`, some ending in padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1000, 30000, (seq, batch), generator=g)
    lengths = torch.randint(20, seq + 1, (batch,), generator=g)
    for c, n in enumerate(lengths.tolist()):
        x[0, c], x[n - 1, c] = CLS, SEP
        x[n:, c] = BERT["padding_token"]
    return x, lengths


def test_the_audited_maskers_are_registered_with_labels_that_say_how_they_run():
    for name in ("megatron", "keras-hub", "google-bert", "fairseq"):
        assert name in REGISTRY
    assert "re-implemented" in REGISTRY["google-bert"].label
    assert "re-implemented" in REGISTRY["fairseq"].label
    assert "own code" in REGISTRY["megatron"].label and "own code" in REGISTRY["keras-hub"].label
    assert {"megatron-wwm", "google-bert-wwm"} <= set(WWM_REGISTRY)


def test_google_bert_selects_a_fixed_count_never_cls_or_sep_and_never_padding():
    x, lengths = _batch()
    torch.manual_seed(1)
    out, y = google_bert(**BERT)(x.clone())
    selected = y != BERT["padding_token"]
    expected = torch.clamp(torch.round(lengths.double() * 0.15), 1, 20).long()
    assert torch.equal(selected.sum(0), expected)
    assert not selected[(x == CLS) | (x == SEP) | (x == 0)].any()
    assert torch.equal(out[~selected], x[~selected])


def test_google_bert_whole_word_mode_takes_every_piece_of_a_chosen_word():
    x, _ = _batch(seed=2)
    words = np.repeat(np.arange(64), 2)[:, None].repeat(x.shape[1], 1)   # two pieces a word
    out, y = google_bert_wwm(**BERT)(x.numpy(), word_ids=words, seed=3)
    sel = y != 0
    body = (x.numpy() != CLS) & (x.numpy() != SEP) & (x.numpy() != 0)
    for c in range(x.shape[1]):
        for w in np.unique(words[sel[:, c], c]):
            pieces = (words[:, c] == w) & body[:, c]
            assert sel[pieces, c].all(), (c, w)


def test_fairseq_rounds_the_count_probabilistically_and_can_select_cls_and_sep():
    x, lengths = _batch(seed=3, batch=256)
    torch.manual_seed(4)
    _, y = fairseq_audit.fairseq(**BERT)(x.clone())
    count = (y != 0).sum(0).double()
    low = torch.floor(lengths.double() * 0.15)
    assert ((count == low) | (count == low + 1)).all()
    assert (y[(x == CLS) | (x == SEP)] != 0).any()


def test_fairseq_seeds_each_example_from_one_of_a_million_values():
    seeds = {fairseq_audit.example_seed(1, 0, i) for i in range(5000)}
    assert max(seeds) < 10**6
    assert len(seeds) < 5000            # 5,000 examples already share streams


def _fairseq_release_source():
    spec = importlib.util.find_spec("fairseq")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "data", "mask_tokens_dataset.py")
    return open(path).read() if os.path.exists(path) else None


def test_the_fairseq_reimplementation_equals_the_releases_own_code():
    source = _fairseq_release_source()
    if source is None:
        pytest.skip("fairseq is not installed (pip install fairseq)")

    @contextlib.contextmanager
    def numpy_seed(seed, *more):         # fairseq.data.data_utils.numpy_seed, as documented
        if more:
            seed = int(hash((seed, *more)) % 1e6)
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)

    class Wrapper(torch.utils.data.Dataset):
        def __init__(self, dataset):
            self.dataset = dataset

        def set_epoch(self, epoch):
            pass

    for line in ("from fairseq.data import Dictionary, data_utils",
                 "from fairseq.data import data_utils, Dictionary",
                 "from . import BaseWrapperDataset, LRUCacheDataset"):
        source = source.replace(line, "")
    ns = dict(data_utils=types.SimpleNamespace(numpy_seed=numpy_seed), Dictionary=object,
              BaseWrapperDataset=Wrapper, LRUCacheDataset=Wrapper)
    exec(compile(source, "fairseq/data/mask_tokens_dataset.py", "exec"), ns)  # noqa: S102

    class Vocab:
        nspecial = fairseq_audit.NSPECIAL

        def __len__(self):
            return BERT["n_tokens"]

    rng = np.random.default_rng(0)
    items = [torch.from_numpy(rng.integers(1000, 30000, n)) for n in rng.integers(20, 128, 40)]
    theirs = ns["MaskTokensDataset"](items, Vocab(), pad_idx=0, mask_idx=BERT["mask_token"],
                                     seed=777)
    weights = np.ones(BERT["n_tokens"])
    weights[:fairseq_audit.NSPECIAL] = 0
    weights /= weights.sum()
    for i, item in enumerate(items):
        ours, _ = fairseq_audit.mask_sequence(
            item.numpy().astype(np.int64), CONFIG,
            np.random.RandomState(fairseq_audit.example_seed(777, 0, i)), weights)
        np.testing.assert_array_equal(theirs[i].numpy(), ours)


@pytest.fixture(scope="module")
def report():
    return check_maskers(["google-bert", "fairseq"], CONFIG, tokens=1 << 18, seed=0, cross=False)


@pytest.mark.parametrize("name", ["google-bert", "fairseq"])
def test_the_gate_flags_the_fixed_or_rounded_count_of_the_reimplemented_maskers(report, name):
    failed = {c.name for c in report.failures if c.subject == name}
    assert "selected count per sequence ~ Binomial (dispersion)" in failed, failed


def test_the_gate_flags_fairseq_for_selecting_cls_and_sep(report):
    failed = {c.name for c in report.failures if c.subject == "fairseq"}
    assert "ineligible positions never selected" in failed, failed


@pytest.mark.skipif(importlib.util.find_spec("megatron") is None,
                    reason="megatron-core is not installed (pip install megatron-core)")
def test_megatron_masks_whole_spans_up_to_a_fixed_count():
    from verify.published.megatron import megatron
    x, lengths = _batch(seed=5)
    torch.manual_seed(6)
    out, y = megatron(**BERT)(x.clone())
    selected = y != 0
    assert (selected.sum(0) <= torch.round(lengths.double() * 0.15).long()).all()
    assert not selected[(x == CLS) | (x == SEP) | (x == 0)].any()
    runs = selected[1:] & selected[:-1]        # n-grams: neighbours selected together
    assert runs.sum() > 0.2 * selected.sum()


@pytest.mark.skipif(importlib.util.find_spec("keras_hub") is None,
                    reason="keras-hub is not installed (pip install keras-hub)")
def test_keras_hub_with_its_defaults_selects_cls_and_sep_and_configured_does_not():
    from verify.published.keras_hub import keras_hub, keras_hub_configured
    x, _ = _batch(seed=7, batch=128)
    torch.manual_seed(8)
    _, y = keras_hub(**BERT)(x.clone())
    assert (y[(x == CLS) | (x == SEP)] != 0).any()
    _, y = keras_hub_configured(**BERT)(x.clone())
    assert not (y[(x == CLS) | (x == SEP)] != 0).any()
