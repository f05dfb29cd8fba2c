"""`mlm_ref.words`: word ids from a real (offline-trained) WordPiece tokenizer and from piece
spellings, and their use as the maskers' `word_ids`."""

import numpy as np
import pytest

from mlm_ref import MLM, word_ids_from_pieces, word_ids_from_tokenizer

tokenizers = pytest.importorskip("tokenizers")

SENTENCES = ["the unaffable dragon flew over the mountains", "dragons are unaffable creatures",
             "mountains of gold and silver", "the creatures flew over gold"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module")
def wordpiece():
    """A tiny WordPiece tokenizer trained here, offline, so that words split into pieces."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordPieceTrainer(vocab_size=60,
                                                                 special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok


def _words(tokens, w):
    """The words as strings, rebuilt from the pieces: `##` joins, -1 drops."""
    out = {}
    for piece, i in zip(tokens, w):
        if i >= 0:
            out[int(i)] = out.get(int(i), "") + piece.removeprefix("##")
    return [out[k] for k in sorted(out)]


def test_tokenizer_and_piece_spellings_agree_on_a_real_wordpiece(wordpiece):
    enc = wordpiece.encode("the unaffable dragon flew", "dragons are creatures")
    assert any(t.startswith("##") for t in enc.tokens), "the words should split into pieces"
    a = word_ids_from_tokenizer(enc.word_ids, enc.sequence_ids)
    b = word_ids_from_pieces(enc.tokens, "wordpiece")
    np.testing.assert_array_equal(a, b)
    assert _words(enc.tokens, a) == ["the", "unaffable", "dragon", "flew", "dragons", "are",
                                     "creatures"]
    assert (a[[0, len(a) - 1]] == -1).all() and a.dtype == np.int64


def test_a_word_index_restarting_in_segment_b_is_a_new_word(wordpiece):
    # no [SEP] between the segments: A's word 0 and B's word 0 are adjacent and equal
    from tokenizers import processors
    wordpiece.post_processor = processors.TemplateProcessing(
        single="$A", pair="[CLS] $A $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    try:
        enc = wordpiece.encode("unaffable", "unaffable")
    finally:
        wordpiece.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    assert enc.word_ids[1:-1] == [0] * (len(enc.word_ids) - 2)
    w = word_ids_from_tokenizer(enc.word_ids, enc.sequence_ids)
    assert _words(enc.tokens, w) == ["unaffable", "unaffable"]


def test_a_batch_comes_back_as_seq_len_by_batch(wordpiece):
    encs = wordpiece.encode_batch(["the unaffable dragon", "gold"])
    w = word_ids_from_tokenizer([e.word_ids for e in encs])
    assert w.shape == (len(encs[0].ids), 2)
    n = len(encs[1].ids)                 # [CLS] gold's pieces [SEP], then -1 padding
    np.testing.assert_array_equal(w[:, 1], [-1] + [0] * (n - 2) + [-1] * (w.shape[0] - n + 1))
    np.testing.assert_array_equal(word_ids_from_pieces([e.tokens for e in encs], "##"), w)
    # and the maskers take it: every word all or nothing
    x = np.full(w.shape, 0, np.int64)
    for b, e in enumerate(encs):
        x[:len(e.ids), b] = e.ids
    mlm = MLM(padding_token=0, mask_token=4, no_mask_tokens=[2, 3], n_tokens=60,
              masking_prob=0.5)
    for key in range(10):
        _, y = mlm(x, word_ids=w, key=key)
        for b in range(2):
            for i in set(w[:, b].tolist()) - {-1}:
                sel = y[w[:, b] == i, b] != 0
                assert sel.all() or not sel.any()


@pytest.mark.parametrize("style, tokens, want", [
    ("sentencepiece", ["\u2581The", "\u2581cat", "s", "\u2581sat", "</s>"], [0, 1, 1, 2, -1]),
    ("\u2581", ["<s>", "ing", "\u2581a"], [-1, 0, 1]),
    ("bytelevel", ["<s>", "The", "\u0120cat", "s", "\u0120sat", "</s>"], [-1, 0, 1, 1, 2, -1]),
    ("wordpiece", ["[CLS]", "##x", "a", "##b", "[SEP]", "##c"], [-1, 0, 1, 1, -1, 2]),
    ("##", [], []),
])
def test_piece_styles(style, tokens, want):
    np.testing.assert_array_equal(word_ids_from_pieces(tokens, style), want)


def test_bad_helper_inputs_are_refused():
    with pytest.raises(ValueError, match="style"):
        word_ids_from_pieces(["a"], "bpe")
    with pytest.raises(TypeError, match="list of pieces"):
        word_ids_from_pieces("a ##b", "##")
    with pytest.raises(ValueError, match="sequence_ids"):
        word_ids_from_tokenizer([None, 0, 1], [None, 0])
    with pytest.raises(ValueError, match="non-negative"):
        word_ids_from_tokenizer([0, -2])
