"""The collators take what tokenizers, datasets and `Trainer` hand over, and refuse the rest.

One test per promise, for the torch collator and the JAX one alike (`COLLATORS`): faithful
(an incoming `attention_mask` is kept and checked, `special_tokens_mask` is honoured, other
keys pass through, pre-padded and ragged examples give the same masks), strict (bad values
are refused naming the example and the key, never truncated), familiar (`from_tokenizer` with
Hugging Face's parameters, `set_epoch` with `Trainer`'s float epochs, `EpochCallback` across
two epochs of a real `Trainer`, a message that says how to keep `index`).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jax")

from mlm_jax import collate as jax_collate  # noqa: E402
from mlm_torch import collate as torch_collate  # noqa: E402

PARAMS = dict(padding_token=0, mask_token=4, no_mask_tokens=[1, 2, 3], n_tokens=40,
              masking_prob=0.5)
COLLATORS = ["torch", "jax"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
         "play", "##ing", "##ed", "un", "##like", "##ly", "dog", "##s", "run", "a"]
VOCAB += [f"w{i}" for i in range(40 - len(VOCAB))]


def make(kind: str, **kw):
    """A collator of `kind` and its batch as NumPy arrays."""
    module = torch_collate if kind == "torch" else jax_collate
    collator = module.MLMCollator(**{"seed": 7, **PARAMS, **kw})
    return collator


def as_np(batch: dict) -> dict:
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def examples(n: int = 6, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"input_ids": [2, *rng.integers(5, 40, rng.integers(2, 12)).tolist(), 3],
             "index": 100 + i} for i in range(n)]


@pytest.fixture
def tokenizer():
    transformers = pytest.importorskip("transformers")
    tok = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)})
    assert len(tok) == len(VOCAB)
    return tok


@pytest.mark.parametrize("kind", COLLATORS)
def test_pre_padded_examples_keep_their_attention_mask_and_get_the_masks_of_ragged_ones(kind):
    ragged = examples()
    seq = max(len(e["input_ids"]) for e in ragged) + 3
    padded = [{"input_ids": e["input_ids"] + [0] * (seq - len(e["input_ids"])),
               "attention_mask": [1] * len(e["input_ids"]) + [0] * (seq - len(e["input_ids"])),
               "index": e["index"]} for e in ragged]
    a, b = as_np(make(kind)(ragged)), as_np(make(kind)(padded))
    n = a["input_ids"].shape[1]
    np.testing.assert_array_equal(b["attention_mask"], [e["attention_mask"] for e in padded])
    np.testing.assert_array_equal(b["attention_mask"][:, :n], a["attention_mask"])
    np.testing.assert_array_equal(b["input_ids"][:, :n], a["input_ids"])
    np.testing.assert_array_equal(b["labels"][:, :n], a["labels"])
    assert (b["labels"][:, n:] == -100).all()
    no_mask = {k: v for k, v in padded[0].items() if k != "attention_mask"}
    mixed = as_np(make(kind)([no_mask, *ragged[1:]]))       # pre-padded beside ragged
    np.testing.assert_array_equal(mixed["input_ids"][:, :n], a["input_ids"])


@pytest.mark.parametrize("kind", COLLATORS)
def test_an_attention_mask_that_disagrees_with_the_padding_is_refused(kind):
    e = examples(2)
    bad = {**e[1], "attention_mask": [1] * (len(e[1]["input_ids"]) - 1) + [0]}
    with pytest.raises(ValueError, match=r"example 1: 'attention_mask' is 0 at position"):
        make(kind)([{**e[0], "attention_mask": [1] * len(e[0]["input_ids"])}, bad])
    with pytest.raises(ValueError, match=r"'attention_mask'\[0\] is 2; expected 0 or 1"):
        make(kind)([{**e[0], "attention_mask": [2] + [1] * (len(e[0]["input_ids"]) - 1)}])


@pytest.mark.parametrize("kind", COLLATORS)
def test_tokens_flagged_by_special_tokens_mask_are_never_selected(kind):
    e = examples(8)
    plain = as_np(make(kind, masking_prob=0.9)(e))
    flagged = [{**x, "special_tokens_mask": [int(j % 2 == 0) for j in range(len(x["input_ids"]))]}
               for x in e]
    got = as_np(make(kind, masking_prob=0.9)(flagged))
    assert "special_tokens_mask" not in got                 # used up, not a model input
    for r, x in enumerate(flagged):
        n, stm = len(x["input_ids"]), np.array(x["special_tokens_mask"], bool)
        assert (got["labels"][r, :n][stm] == -100).all()
        np.testing.assert_array_equal(got["input_ids"][r, :n][stm], np.array(x["input_ids"])[stm])
        np.testing.assert_array_equal(got["labels"][r, :n][~stm], plain["labels"][r, :n][~stm])
    assert (got["labels"] != -100).any()


@pytest.mark.parametrize("kind", COLLATORS)
def test_other_keys_pass_through_padded_stacked_or_left_alone(kind):
    e = examples(3)
    rich = [{**x, "label": r, "score": [0.5] * len(x["input_ids"]), "text": f"t{r}",
             "spans": list(range(r + 1))} for r, x in enumerate(e)]
    got = as_np(make(kind)(rich))
    base = as_np(make(kind)(e))
    np.testing.assert_array_equal(got["input_ids"], base["input_ids"])
    np.testing.assert_array_equal(got["label"], [0, 1, 2])
    assert got["score"].shape == got["input_ids"].shape
    assert (got["score"][got["attention_mask"] == 0] == 0).all()
    assert got["text"] == ["t0", "t1", "t2"] and got["spans"] == [[0], [0, 1], [0, 1, 2]]
    assert not {"index", "epoch", "word_ids"} & set(got)


BAD = [
    ("float id", lambda e: e[1].update(input_ids=[2, 3.7, 3]), TypeError,
     r"example 1: 'input_ids'\[1\] is float 3.7"),
    ("string id", lambda e: e[0].update(input_ids=[2, "5", 3]), TypeError,
     r"example 0: 'input_ids'\[1\] is str"),
    ("bool id", lambda e: e[0].update(input_ids=[2, True, 3]), TypeError, r"'input_ids'\[1\]"),
    ("negative id", lambda e: e[0].update(input_ids=[2, -5, 3]), ValueError,
     r"example 0: 'input_ids'\[1\] is -5"),
    ("float ids array", lambda e: e[0].update(input_ids=np.array([2.0, 3.0])), TypeError,
     "example 0: 'input_ids' must hold integers"),
    ("float index", lambda e: e[2].update(index=3.7), TypeError, "example 2: 'index' is float"),
    ("string index", lambda e: e[2].update(index="5"), TypeError, "example 2: 'index' is str"),
    ("index out of range", lambda e: e[2].update(index=2**32), ValueError, "example 2: 'index'"),
    ("word_ids on some", lambda e: e[0].update(word_ids=[-1] * len(e[0]["input_ids"])),
     ValueError, "example 1 has no 'word_ids'"),
    ("token_type_ids on the second", lambda e: e[1].update(token_type_ids=[0] * 3), ValueError,
     "example 1 has 'token_type_ids' but example 0 has not"),
    ("short token_type_ids", lambda e: [x.update(token_type_ids=[0]) for x in e], ValueError,
     "example 0: 'token_type_ids' has 1 entries"),
    ("long token_type_ids", lambda e: [x.update(token_type_ids=[0] * 40) for x in e],
     ValueError, "example 0: 'token_type_ids' has 40 entries"),
    ("float word id", lambda e: [x.update(word_ids=[0.5] * len(x["input_ids"])) for x in e],
     TypeError, r"example 0: 'word_ids'\[0\] is float 0.5; expected an integer or None"),
    ("labels given", lambda e: [x.update(labels=[1]) for x in e], ValueError,
     "the collator makes the labels"),
    ("2-d ids", lambda e: e[0].update(input_ids=np.ones((2, 2), np.int64)), ValueError,
     "one-dimensional"),
]


@pytest.mark.parametrize("kind", COLLATORS)
@pytest.mark.parametrize("name, spoil, error, message", BAD, ids=[b[0] for b in BAD])
def test_bad_values_are_refused_naming_the_example_and_the_key(kind, name, spoil, error,
                                                                message):
    e = examples(3)
    spoil(e)
    with pytest.raises(error, match=message):
        make(kind)(e)


@pytest.mark.parametrize("kind", COLLATORS)
def test_what_is_not_a_list_of_mappings_is_refused(kind):
    with pytest.raises(TypeError, match="example 1 is a list, not a mapping"):
        make(kind)([examples(1)[0], [2, 5, 3]])
    with pytest.raises(TypeError, match="examples must be a list of mappings"):
        make(kind)({"input_ids": [[2, 5, 3]], "index": [0]})
    with pytest.raises(ValueError, match="empty"):
        make(kind)([])


@pytest.mark.parametrize("kind", COLLATORS)
def test_numpy_and_torch_integers_and_none_word_ids_are_accepted_as_lists(kind):
    e = [{**x, "word_ids": [None, *range(len(x["input_ids"]) - 2), None]} for x in examples()]
    want = as_np(make(kind)(e))
    as_numpy = [{"input_ids": np.array(x["input_ids"], np.int32), "index": np.int64(x["index"]),
                 "word_ids": x["word_ids"]} for x in e]
    as_torch = [{"input_ids": torch.tensor(x["input_ids"]), "index": torch.tensor(x["index"]),
                 "word_ids": [-1 if w is None else np.int64(w) for w in x["word_ids"]]}
                for x in e]
    as_tuples = [{k: tuple(v) if isinstance(v, list) else v for k, v in x.items()} for x in e]
    for variant in (as_numpy, as_torch, as_tuples):
        got = as_np(make(kind)(variant))
        for name in ("input_ids", "labels", "attention_mask"):
            np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("kind", COLLATORS)
def test_set_epoch_takes_trainers_float_epochs_and_refuses_fractions(kind):
    e = examples()
    by_int, by_float = make(kind), make(kind)
    by_int.set_epoch(2)
    by_float.set_epoch(2.0)
    np.testing.assert_array_equal(as_np(by_float(e))["input_ids"], as_np(by_int(e))["input_ids"])
    for bad, error in ((1.5, ValueError), ("1", TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(error, match="epoch"):
            by_int.set_epoch(bad)
    with pytest.raises(ValueError, match="example 0: 'epoch'"):
        by_int([{**e[0], "epoch": 0.5}])


def test_jax_ids_beyond_int32_are_a_clear_error():
    e = examples(2)
    e[1]["input_ids"] = [2, 2**31, 3]
    with pytest.raises(ValueError, match=r"example 1: 'input_ids'\[1\] is 2147483648.*int32"):
        make("jax")(e)
    assert make("torch")(e)["input_ids"].dtype == torch.int64            # torch holds int64


@pytest.mark.parametrize("kind", COLLATORS)
def test_pad_to_multiple_of_rounds_the_padded_length_and_changes_no_mask(kind):
    e = examples()
    plain = as_np(make(kind)(e))
    rounded = as_np(make(kind, pad_to_multiple_of=16)(e))
    n = plain["input_ids"].shape[1]
    assert rounded["input_ids"].shape[1] == 16 * -(-n // 16)
    np.testing.assert_array_equal(rounded["input_ids"][:, :n], plain["input_ids"])
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        make(kind, pad_to_multiple_of=0)


@pytest.mark.parametrize("kind", COLLATORS)
def test_a_missing_index_says_how_to_keep_it(kind):
    with pytest.raises(ValueError, match="remove_unused_columns=False.*WithIndex"):
        make(kind)([{"input_ids": [2, 5, 3]}])
    data = torch_collate.WithIndex([{"input_ids": [2, 5, 3]}, {"input_ids": [2, 6, 7, 3]}])
    assert make(kind)([data[0], data[1]])["input_ids"].shape == (2, 4)


@pytest.mark.parametrize("kind", COLLATORS)
def test_from_tokenizer_means_what_hugging_face_means(kind, tokenizer):
    module = torch_collate if kind == "torch" else jax_collate
    c = module.MLMCollator.from_tokenizer(tokenizer, seed=0)
    cfg = c.config
    assert (cfg.padding_token, cfg.mask_token, cfg.n_tokens) == (0, 4, len(tokenizer))
    assert set(cfg.no_mask_tokens) == {1, 2, 3, 4}                      # [UNK] included
    assert (cfg.masking_prob, cfg.randomize_prob, cfg.no_change_prob) == (0.15, 0.1, 0.1)
    c = module.MLMCollator.from_tokenizer(tokenizer, seed=0, mlm_probability=0.3,
                                          mask_replace_prob=0.5, random_replace_prob=0.4)
    assert (c.config.masking_prob, c.config.randomize_prob, c.config.no_change_prob) == \
        (0.3, 0.4, 0.1)
    with pytest.raises(ValueError, match="must not exceed 1"):
        module.MLMCollator.from_tokenizer(tokenizer, seed=0, mask_replace_prob=0.9,
                                          random_replace_prob=0.2)
    enc = tokenizer(["the cat sat on the mat", "unlikely dogs playing"], padding="max_length",
                    max_length=12, return_special_tokens_mask=True)
    rows = [{k: enc[k][r] for k in enc} | {"index": r} for r in range(2)]
    got = as_np(module.MLMCollator.from_tokenizer(tokenizer, seed=0, mlm_probability=0.9)(rows))
    np.testing.assert_array_equal(got["attention_mask"], enc["attention_mask"])
    assert (got["labels"][np.array(enc["special_tokens_mask"]) == 1] == -100).all()


@pytest.mark.parametrize("kind", COLLATORS)
def test_whole_word_mask_reads_words_from_the_vocabulary_or_the_word_ids(kind, tokenizer):
    module = torch_collate if kind == "torch" else jax_collate
    wwm = module.MLMCollator.from_tokenizer(tokenizer, seed=3, whole_word_mask=True,
                                            mlm_probability=0.5)
    enc = tokenizer(["unlikely dogs playing the cat", "the mat played"])
    rows = [{"input_ids": enc["input_ids"][r], "index": r} for r in range(2)]
    with_words = [{**row, "word_ids": enc.word_ids(r)} for r, row in enumerate(rows)]
    a, b = as_np(wwm(rows)), as_np(wwm(with_words))
    np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
    for r in range(2):                                # a word is selected whole or not at all
        words = np.array([-1 if w is None else w for w in enc.word_ids(r)])
        chosen = a["labels"][r, :len(words)] != -100
        for w in set(words[words >= 0]):
            assert len(set(chosen[words == w])) == 1


def test_two_trainer_epochs_with_the_callback_mask_each_epoch_afresh(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32)
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(config)
    collator = torch_collate.MLMCollator(seed=1, **PARAMS)
    seen = []

    def recording(batch_examples):                  # what the model got, by epoch and index
        batch = collator(batch_examples)
        seen.append((collator.epoch, [int(e["index"]) for e in batch_examples],
                     batch["labels"].clone()))
        return batch

    data = [{k: v for k, v in e.items() if k != "index"} for e in examples(8)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_train_epochs=2,
        report_to=[], remove_unused_columns=False, use_cpu=True, save_strategy="no",
        dataloader_num_workers=0, logging_strategy="no")
    trainer = transformers.Trainer(model=model, args=args,
                                   train_dataset=torch_collate.WithIndex(data),
                                   data_collator=recording,
                                   callbacks=[torch_collate.EpochCallback(collator)])
    result = trainer.train()
    assert result.global_step == 4 and np.isfinite(result.training_loss)
    assert [epoch for epoch, _, _ in seen] == [0, 0, 1, 1]
    labels = {(epoch, i): y for epoch, rows, ys in seen for i, y in zip(rows, ys)}
    assert any(not torch.equal(labels[0, i], labels[1, i]) for i in range(8))
    for epoch in (0, 1):                             # each epoch's own stateless masks
        collator.set_epoch(epoch)
        want = collator([torch_collate.WithIndex(data)[i] for i in range(8)])
        for i in range(8):
            n = len(data[i]["input_ids"])
            assert torch.equal(labels[epoch, i][:n], want["labels"][i, :n])
