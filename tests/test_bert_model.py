"""mlm_bert.model, mlm_bert.evaluate and mlm_bert.baselines: shapes, tied weights, position
handling, selected-position loss, perplexity and its split by masking category and word, the
unigram and context baselines on the same positions, and the prediction format."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlm_bert.baselines import ContextNgram, context_ngram_perplexity
from mlm_bert.evaluate import (categories, evaluate, format_predictions, topk, unigram_log_probs,
                               unigram_perplexity, word_groups)
from mlm_bert.model import SIZES, Bert, BertConfig
from mlm_bert.predict import predict
from mlm_bert.presets import prepare
from mlm_bert.tokenizer import MASK, PAD


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepare("generated:120", 128, 8, tmp_path_factory.mktemp("bert"), seed=1)


def _model(vocab=128, seed=0):
    torch.manual_seed(seed)
    return Bert(BertConfig(vocab_size=vocab, max_len=128, **SIZES["micro"]))


def test_shapes_and_padding():
    model = _model().eval()
    x = torch.randint(5, 128, (3, 20))
    att = torch.ones_like(x)
    att[1, 12:] = 0
    labels = torch.full_like(x, -100)
    labels[0, 4], labels[2, 7] = 9, 11
    out = model(x, torch.zeros_like(x), att, labels)
    assert out["hidden"].shape == (3, 20, 64) and out["nsp_logits"].shape == (3, 2)
    assert out["mlm_logits"].shape == (2, 128) and out["mlm_targets"].tolist() == [9, 11]
    assert model(x, all_positions=True)["mlm_logits"].shape == (3, 20, 128)
    # what lies under padding changes nothing at the real positions
    y = x.clone()
    y[1, 12:] = 5
    h1 = model(x, None, att)["hidden"][1, :12]
    h2 = model(y, None, att)["hidden"][1, :12]
    assert torch.allclose(h1, h2, atol=1e-5)
    with pytest.raises(ValueError, match="seq <= 128"):
        model(torch.ones(1, 129, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of heads"):
        BertConfig(vocab_size=10, hidden=30, heads=4)


def test_mlm_head_is_tied_to_the_token_embedding():
    model = _model()
    names = [n for n, _ in model.named_parameters()]
    assert not any("decoder" in n for n in names)
    h = torch.randn(4, 64)
    before = model.mlm_logits(h)
    with torch.no_grad():
        model.embedding.tokens.weight[7] += 1.0
    after = model.mlm_logits(h)
    changed = (before != after).any(0)
    assert changed[7] and changed.sum() == 1             # only the logit of piece 7 moved


def test_mlm_loss_is_on_selected_positions_only():
    model = _model().eval()
    x = torch.randint(5, 128, (2, 16))
    labels = torch.full_like(x, -100)
    labels[0, [1, 5]], labels[1, 9] = torch.tensor([3, 4]), 8
    out = model(x, labels=labels)
    ours = F.cross_entropy(out["mlm_logits"], out["mlm_targets"])
    full = model(x, all_positions=True)["mlm_logits"]
    reference = F.cross_entropy(full.reshape(-1, 128), labels.reshape(-1), ignore_index=-100)
    assert torch.allclose(ours, reference, atol=1e-5)
    # the loss is blind to the unselected positions' labels being anything else
    assert out["mlm_targets"].numel() == 3


def test_perplexity_is_exp_of_mean_masked_nll(prep):
    model = _model(prep.tokenizer.get_vocab_size())
    metrics = evaluate(model, prep.held_out)
    nll, count, correct = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for p in range(prep.held_out.n_batches(0)):
            b = prep.held_out.batch(0, p)
            logits = model(b["input_ids"], b["token_type_ids"], b["attention_mask"],
                           all_positions=True)["mlm_logits"]
            sel = b["labels"] != -100
            logp = logits.log_softmax(-1)[sel]
            nll -= logp.gather(1, b["labels"][sel][:, None]).sum().item()
            correct += (logp.argmax(-1) == b["labels"][sel]).sum().item()
            count += int(sel.sum())
    assert metrics["n_selected"] == count
    assert metrics["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-4)
    assert metrics["mlm_acc"] == pytest.approx(correct / count)
    assert 0.0 <= metrics["nsp_acc"] <= 1.0


def test_unigram_baseline(prep):
    docs = [[[5, 5, 6]], [[5, 7]]]
    logp = unigram_log_probs(docs, 8)
    counts = np.ones(8)
    counts[[5, 6, 7]] += [3, 1, 1]
    assert np.allclose(np.exp(logp), counts / counts.sum())
    logp = unigram_log_probs(prep.train_docs, prep.tokenizer.get_vocab_size())
    expected, n = 0.0, 0
    for p in range(prep.held_out.n_batches(0)):
        labels = prep.held_out.batch(0, p)["labels"]
        t = labels[labels != -100].numpy()
        expected -= logp[t].sum()
        n += t.size
    ppl = unigram_perplexity(logp, prep.held_out)
    assert ppl == pytest.approx(math.exp(expected / n))
    assert ppl < prep.tokenizer.get_vocab_size()         # better than uniform on this corpus


def test_prediction_format(prep):
    tok = prep.tokenizer
    model = _model(tok.get_vocab_size())
    text = predict(tok, model, "the film was [MASK] [MASK] .", k=3)
    lines = text.splitlines()
    assert [line[:16] for line in lines] == ["text_with_mask: ", "pred_top_1:     ",
                                              "pred_top_2:     ", "pred_top_3:     "]
    assert lines[0] == "text_with_mask: the film was [MASK] [MASK] ."
    for line in lines[1:]:
        assert len(re.findall(r"\[\d+\.\d%\]", line)) == 2
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        predict(tok, model, "no mask here")
    # with the original row, a text: line comes first
    ids = torch.tensor([2, 10, 11, MASK, 3, PAD])
    top_ids, top_p = topk(model, ids[None], k=2)
    block = format_predictions(tok, ids, top_ids[0], top_p[0],
                               original_ids=torch.tensor([2, 10, 11, 12, 3, PAD]))
    assert block.splitlines()[0].startswith("text:           ")
    assert len(block.splitlines()) == 4


def test_predict_cli_errors(tmp_path, capsys):
    from mlm_bert.predict import main
    assert main(["the [MASK] was good", "--run", str(tmp_path / "none")]) == 2
    assert "train one first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["x [MASK]", "--top-k", "0"])
    assert e.value.code == 2


def _experiment_runs(perplexities, shifts, nsp=(0.01, 0.0, 0.02)):
    return [{"perplexity": p + d, "mlm_acc": 0.3, "mask_acc": 0.2, "unchanged_acc": 0.9,
             "nsp_acc": 0.6 + s} for p, d, s in zip(perplexities, shifts, nsp)]


def test_experiment_comparison_pairs_each_masking_with_ours_and_gives_an_interval():
    from mlm_bert.experiment import compare
    base = (50.0, 52.0, 51.0)
    ours = _experiment_runs(base, (0, 0, 0))
    labml = _experiment_runs(base, (5.0, 5.2, 4.9))
    broken = _experiment_runs(base, (3.0, -2.0, 0.5))         # a shift the noise swamps
    out = compare({"ours": ours, "labml": labml, "mask-only": broken})
    diff = out["perplexity"]["labml_minus_ours"]
    assert diff["mean_diff"] == pytest.approx(5.033, abs=1e-3)
    assert diff["ci_low"] < 5.033 < diff["ci_high"] and diff["ci_low"] > 0
    assert diff["p"] < 0.01 and diff["exceeds_noise"]          # consistent shift: detected
    noisy = out["perplexity"]["mask-only_minus_ours"]
    assert noisy["ci_low"] < 0 < noisy["ci_high"] and not noisy["exceeds_noise"]
    assert out["perplexity"]["ours"]["sd"] == pytest.approx(1.0)
    assert not out["mlm_acc"]["labml_minus_ours"]["exceeds_noise"]   # no difference at all


def test_experiment_section_shows_every_masking_and_its_interval(tmp_path):
    from mlm_bert.experiment import compare
    from mlm_bert.report import experiment_section
    base = (50.0, 52.0, 51.0)
    comparison = compare({"ours": _experiment_runs(base, (0, 0, 0)),
                          "labml": _experiment_runs(base, (5.0, 5.2, 4.9)),
                          "mask-only": _experiment_runs(base, (30.0, 31.0, 29.0))})
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps({"preset": "cpu", "seeds": 3, "first_seed": 0, "steps": 600,
                                "comparison": comparison}))
    table = experiment_section(path)
    assert "mask-only (1/0/0, broken)" in table and "labml - ours [95% CI]" in table
    d = comparison["perplexity"]["mask-only_minus_ours"]
    assert f"**+30.0000 [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]**" in table


@pytest.mark.parametrize("position", ["relative", "rotary"])
def test_other_position_handlings_keep_padding_out(position):
    torch.manual_seed(0)
    model = Bert(BertConfig(vocab_size=128, position=position, **SIZES["micro"])).eval()
    x = torch.randint(5, 128, (2, 20))
    att = torch.ones_like(x)
    att[1, 12:] = 0
    y = x.clone()
    y[1, 12:] = 5
    assert torch.allclose(model(x, None, att)["hidden"][1, :12],
                          model(y, None, att)["hidden"][1, :12], atol=1e-5)
    # the order of the pieces matters: a position-blind model would give permuted outputs
    # (attention sharpened first: at BERT's initialisation rotary attention is near uniform)
    with torch.no_grad():
        for block in model.blocks:
            block.attention.qkv.weight.mul_(20)
    h = model(x)["hidden"][0]
    h_rev = model(x.flip(1))["hidden"][0].flip(0)
    assert not torch.allclose(h[1:-1], h_rev[1:-1], atol=1e-3)
    assert (model.embedding.positions is None) == (position == "rotary")


def test_relative_bias_starts_by_favouring_near_neighbours():
    model = Bert(BertConfig(vocab_size=64, position="relative", **SIZES["micro"]))
    bias = model.blocks[0].attention.relative[:, model.blocks[0].attention.distance[10, :21]]
    # from query 10: keys 9 and 11 score highest after 10 itself, symmetric, decaying away
    assert torch.equal(bias.argmax(-1), torch.full((2,), 10))
    assert torch.equal(bias[:, 9], bias[:, 11]) and (bias[:, 9] > bias[:, 0]).all()


def test_held_out_positions_split_by_what_the_masker_put_there(prep):
    model = _model(prep.tokenizer.get_vocab_size())
    m = evaluate(model, prep.held_out)
    assert m["n_mask"] + m["n_random"] + m["n_unchanged"] == m["n_selected"]
    assert m["n_mask"] > m["n_random"] > 0 and m["n_unchanged"] > 0       # 80/10/10
    total = sum(m[f"{c}_nll"] * m[f"n_{c}"] for c in ("mask", "random", "unchanged"))
    assert total / m["n_selected"] == pytest.approx(m["mlm_nll"])
    # whole-word masking: a word's pieces are selected together, fewer words than pieces
    assert 0 < m["n_word"] <= m["n_selected"] and m["word_nll"] >= m["mlm_nll"] - 1e-9
    ids = torch.tensor([[2, 4, 9, 8, 4, 3]])
    labels = torch.tensor([[-100, 7, 9, 6, 5, -100]])
    assert categories(ids, labels).tolist() == [0, 2, 1, 0]
    words = torch.tensor([[-1, 0, 1, 1, 2, -1]])
    assert word_groups(labels, words).tolist() == [0, 1, 1, 2]


def test_context_baseline_is_a_distribution_scored_on_the_same_positions(prep):
    vocab = prep.tokenizer.get_vocab_size()
    ngram = ContextNgram(prep.train_docs, vocab)
    every = np.arange(vocab)
    for left, right in [(10, 12), (MASK, 12), (10, MASK), (MASK, MASK), (vocab - 1, 5)]:
        p = ngram.prob(np.full(vocab, left), every, np.full(vocab, right))
        assert p.min() > 0 and p.sum() == pytest.approx(1.0)
    # the generated corpus is a template: the neighbours predict far better than frequency,
    # and both are scored on the positions the model is scored on
    uni = unigram_perplexity(unigram_log_probs(prep.train_docs, vocab), prep.held_out)
    ctx = context_ngram_perplexity(ngram, prep.held_out)
    assert ctx < 0.7 * uni
    one = context_ngram_perplexity(ngram, prep.held_out, max_batches=1)
    b = prep.held_out.batch(0, 0)
    rows, cols = np.nonzero(b["labels"].numpy() != -100)
    ids = b["input_ids"].numpy()
    probs = ngram.prob(ids[rows, cols - 1], b["labels"].numpy()[rows, cols], ids[rows, cols + 1])
    assert one == pytest.approx(math.exp(-np.log(probs).mean()))


def test_hugging_face_reference_has_our_interface_and_tied_head():
    pytest.importorskip("transformers")
    from mlm_bert.tools.hf_reference import HFBert
    torch.manual_seed(0)
    model = HFBert(BertConfig(vocab_size=128, max_len=128, dropout=0.0, **SIZES["micro"])).eval()
    x = torch.randint(5, 128, (2, 16))
    labels = torch.full_like(x, -100)
    labels[0, [1, 5]], labels[1, 9] = torch.tensor([3, 4]), 8
    out = model(x, torch.zeros_like(x), torch.ones_like(x), labels)
    assert out["mlm_logits"].shape == (3, 128) and out["nsp_logits"].shape == (2, 2)
    assert torch.equal(out["mlm_targets"], torch.tensor([3, 4, 8]))
    full = model(x, all_positions=True)["mlm_logits"]                 # [2, 16, 128]
    assert torch.allclose(full[labels != -100], out["mlm_logits"], atol=1e-5)
    decoder = model.hf.cls.predictions.decoder.weight
    assert decoder.data_ptr() == model.hf.bert.embeddings.word_embeddings.weight.data_ptr()
    with pytest.raises(ValueError, match="learned"):
        HFBert(BertConfig(vocab_size=128, position="rotary", **SIZES["micro"]))
