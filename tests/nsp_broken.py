"""Planted NSP defects, one per check of `verify.nsp`: each wraps `mlm_ref.nsp.make_pairs` and
breaks one thing (`python -m verify.nsp tests.nsp_broken:NAME`)."""

import numpy as np

from mlm_ref.nsp import Pair, make_pairs


def _ours(documents, seed, epoch, **kw):
    return make_pairs(documents, seed=seed, epoch=epoch, **kw)


def _token_docs(documents) -> dict:
    """token id -> index of its document (the gate's ids are unique)."""
    return {int(t): d for d, doc in enumerate(documents) for s in doc for t in s}


def google_style(documents, *, seed, epoch=0):
    """The published algorithm: ~58% random on text, a one-document corpus accepted."""
    return make_pairs(documents, seed=seed, epoch=epoch, google_compat=True)


def biased_labels(documents, *, seed, epoch=0):
    """Labels random with probability 0.58: a correct pair relabelled IsNext -> random is
    impossible, so IsNext pairs are dropped instead (0.5 / (0.5 + 0.5 * 0.724) ~ 0.58)."""
    rng = np.random.default_rng([seed, epoch])
    return [p for p in _ours(documents, seed, epoch)
            if p.is_random_next or rng.random() < 0.724]


def random_b_same_document(documents, *, seed, epoch=0):
    """Random B taken from A's own document (a later stretch of it)."""
    where = _token_docs(documents)
    out = []
    for p in _ours(documents, seed, epoch):
        if p.is_random_next:
            doc = documents[where[int(p.tokens_a[0])]]
            b = np.concatenate([np.asarray(s) for s in doc])[-len(p.tokens_b):]
            p = Pair(p.tokens_a, b, 1)
        out.append(p)
    return out


def no_truncation(documents, *, seed, epoch=0):
    """Never cuts: pairs longer than max_seq_len (a huge limit, then nothing else changes)."""
    return _ours(documents, seed, epoch, max_seq_len=10_000)


def always_cut_back(documents, *, seed, epoch=0):
    """Cuts the longer side, but always at its back."""
    out = []
    for p in _ours(documents, seed, epoch, max_seq_len=10_000):
        a, b = list(p.tokens_a), list(p.tokens_b)
        while len(a) + len(b) > 125:
            (a if len(a) > len(b) else b).pop()
        out.append(Pair(np.array(a), np.array(b), p.is_random_next))
    return out


def always_cut_b(documents, *, seed, epoch=0):
    """Cuts B, front or back at random, whichever side is longer."""
    rng = np.random.default_rng([seed, epoch, 1])
    out = []
    for p in _ours(documents, seed, epoch, max_seq_len=10_000):
        a, b = list(p.tokens_a[:124]), list(p.tokens_b)
        while len(a) + len(b) > 125:
            b.pop(0 if rng.random() < 0.5 else -1)
        out.append(Pair(np.array(a), np.array(b), p.is_random_next))
    return out


def label_by_document(documents, *, seed, epoch=0):
    """Overall 50/50, but documents of few sentences get more random B than long ones: an IsNext
    pair of a short document is dropped 60% of the time, a random pair of a long one too."""
    rng = np.random.default_rng([seed, epoch, 2])
    where = _token_docs(documents)
    out = []
    for p in _ours(documents, seed, epoch):
        short = len(documents[where[int(p.tokens_a[0])]]) <= 5
        if short != bool(p.is_random_next) and rng.random() < 0.6:
            continue
        out.append(p)
    return out


def isnext_skips_a_sentence(documents, *, seed, epoch=0):
    """IsNext B starts one token late (not right after A)."""
    return [Pair(p.tokens_a, p.tokens_b[1:], 0) if not p.is_random_next and len(p.tokens_b) > 1
            else p for p in _ours(documents, seed, epoch)]


def raises(documents, *, seed, epoch=0):
    """Fails on empty documents."""
    if any(len(d) == 0 for d in documents):
        raise IndexError("list index out of range")
    return _ours(documents, seed, epoch)


def nothing(documents, *, seed, epoch=0):
    """Makes no pair at all (the gate cannot test anything: inconclusive), but refuses a
    one-document corpus as it should."""
    if sum(1 for d in documents if any(len(s) for s in d)) < 2:
        raise ValueError("fewer than two non-empty documents")
    return []


def malformed(documents, *, seed, epoch=0):
    """Pairs of the wrong shape: 2-d tokens, array labels, missing fields, strings."""
    if sum(1 for d in documents if any(len(s) for s in d)) < 2:
        raise ValueError("fewer than two non-empty documents")
    return [(np.array([[5]]), np.array([6]), 0), (np.array([5]), np.array([6]), np.array([0, 1])),
            (np.array([5]),), {"tokens_a": [5]}, ("ab", "cd", 1), ([5], [6], 0.0)]
