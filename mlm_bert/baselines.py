"""Baselines on the held-out positions: what a model gets without reading the context, and with
only its nearest neighbours.

A number like "perplexity 120" means nothing alone; it means something beside what simpler
predictors score on *the same* held-out positions (the selected positions of the `"eval"`
masks):

- **Unigram**: each piece with its frequency in the training documents (add-one smoothed),
  whatever the context. A model that learnt only word frequencies scores this.
- **Context n-gram**: `p(piece | left, right)` from counts over the training documents, the
  piece's left and right neighbours as the model sees them in the held-out item (a neighbour
  that is itself `[MASK]` is unknown, and the estimate backs off), interpolated with the
  left-bigram `p(piece | left)`, the right-bigram `p(piece | right)` and the unigram. Each
  level is Witten-Bell smoothed: a context seen `c` times followed by `t` different pieces
  trusts its counts with weight `c / (c + t)` and the level below with `t / (c + t)`. A model
  that reads its neighbours must beat this; one that reads the whole item should beat it by a
  margin.

The training documents count as `[CLS] pieces of every sentence... [SEP]`, one row per
document, so a neighbour across a sentence end is counted as in the items.
"""

from __future__ import annotations

import math

import numpy as np

from .tokenizer import CLS, MASK, SEP

__all__ = ["unigram_log_probs", "unigram_perplexity", "ContextNgram",
           "context_ngram_perplexity"]


def unigram_log_probs(documents, vocab_size: int) -> np.ndarray:
    """log p(piece) from the pieces of the training documents, add-one smoothed: `[vocab]`."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for doc in documents:
        for sentence in doc:
            np.add.at(counts, np.asarray(sentence, dtype=np.int64), 1)
    return np.log(counts / counts.sum())


def unigram_perplexity(log_probs: np.ndarray, data, *, max_batches: int | None = None) -> float:
    """Perplexity of the unigram model on the selected positions of `data`'s batches."""
    total, count = 0.0, 0
    for batch in _batches(data, max_batches):
        labels = batch["labels"]
        targets = labels[labels != -100].numpy()
        total -= log_probs[targets].sum()
        count += targets.size
    if count == 0:
        raise ValueError("no selected positions in the evaluation batches")
    return math.exp(total / count)


def _batches(data, max_batches):
    n = data.n_batches(0)
    for position in range(n if max_batches is None else min(n, max_batches)):
        yield data.batch(0, position)


class _Counts:
    """Counts of (context key, piece) pairs: `pair(ctx, w)`, `total(ctx)`, `types(ctx)`."""

    def __init__(self, context: np.ndarray, piece: np.ndarray, vocab: int):
        self.vocab = vocab
        self.keys, self.counts = np.unique(context * vocab + piece, return_counts=True)
        ctx_of_key = self.keys // vocab
        self.contexts, first = np.unique(ctx_of_key, return_index=True)
        self.totals = np.add.reduceat(self.counts, first)
        self.types = np.diff(np.append(first, len(ctx_of_key)))

    @staticmethod
    def _find(sorted_keys, values, table):
        i = np.clip(np.searchsorted(sorted_keys, values), 0, max(0, len(sorted_keys) - 1))
        found = sorted_keys[i] == values if len(sorted_keys) else np.zeros(len(values), bool)
        return np.where(found, table[i] if len(table) else 0, 0)

    def smooth(self, context: np.ndarray, piece: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """Witten-Bell: `(c(ctx, w) + t(ctx) * lower) / (c(ctx) + t(ctx))`, `lower` where the
        context was never seen."""
        c = self._find(self.keys, context * self.vocab + piece, self.counts).astype(np.float64)
        total = self._find(self.contexts, context, self.totals).astype(np.float64)
        types = self._find(self.contexts, context, self.types).astype(np.float64)
        seen = total > 0
        out = lower.copy()
        out[seen] = (c[seen] + types[seen] * lower[seen]) / (total[seen] + types[seen])
        return out


class ContextNgram:
    """The interpolated left/right n-gram model of the module docstring.

    Args:
        documents: training documents of sentences of piece ids.
        vocab_size: the vocabulary size.
    """

    def __init__(self, documents, vocab_size: int):
        rows = [np.concatenate([[CLS], *[np.asarray(s, np.int64) for s in d], [SEP]])
                for d in documents]
        left = np.concatenate([r[:-2] for r in rows])
        mid = np.concatenate([r[1:-1] for r in rows])
        right = np.concatenate([r[2:] for r in rows])
        self.vocab = vocab_size
        self.unigram = np.exp(unigram_log_probs(documents, vocab_size))
        self.left = _Counts(left, mid, vocab_size)
        self.right = _Counts(right, mid, vocab_size)
        self.both = _Counts(left * vocab_size + right, mid, vocab_size)

    def prob(self, left: np.ndarray, piece: np.ndarray, right: np.ndarray) -> np.ndarray:
        """`p(piece | left, right)` for arrays of positions; a neighbour equal to `[MASK]`
        is unknown (that side backs off to the unigram)."""
        uni = self.unigram[piece]
        p_left = np.where(left == MASK, uni, self.left.smooth(left, piece, uni))
        p_right = np.where(right == MASK, uni, self.right.smooth(right, piece, uni))
        p_sides = np.where(left == MASK, p_right,
                           np.where(right == MASK, p_left, 0.5 * (p_left + p_right)))
        both = self.both.smooth(left * self.vocab + right, piece, p_sides)
        return np.where((left == MASK) | (right == MASK), p_sides, both)


def context_ngram_perplexity(model: ContextNgram, data, *,
                             max_batches: int | None = None) -> float:
    """Perplexity of `model` at the selected positions of `data`'s batches, its neighbours
    read from the masked input, as the network reads them."""
    total, count = 0.0, 0
    for batch in _batches(data, max_batches):
        ids, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
        rows, cols = np.nonzero(labels != -100)
        left = ids[rows, cols - 1]
        right = ids[rows, np.minimum(cols + 1, ids.shape[1] - 1)]
        total -= np.log(model.prob(left, labels[rows, cols], right)).sum()
        count += rows.size
    if count == 0:
        raise ValueError("no selected positions in the evaluation batches")
    return math.exp(total / count)
