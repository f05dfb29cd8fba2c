"""Training items: sentence pairs for next-sentence prediction, masked for the MLM.

BERT learns two things at once from one input. The input is a *pair* of text segments,

    [CLS] A ... A [SEP] B ... B [SEP] [PAD] ...        # fixed length 128

with segment ids 0 for `[CLS]`, A and the first `[SEP]`, 1 for B and the last `[SEP]`. Half of
the time B is the text that follows A in the same document (label 0, IsNext); otherwise B comes
from another document (label 1, NotNext), and the model predicts which from `[CLS]`. On top of
that, words are selected for the masked-language model, each with probability 0.15, and a
selected word is replaced as a whole (one 80/10/10 draw per word) by `[MASK]`s, random pieces
or itself: whole-word masking, so that the model cannot fill in `##ing` from `runn`.

Both kinds of randomness come from stateless streams (docs/pipelines.md): the pairs of epoch
`e` from the `"nsp"` stream of each document, the masks of item `i` in epoch `e` from the
`"mlm"` stream `(seed, "mlm", e, i)` through `mlm_torch.collate.MLMCollator`, and the order of
the items from a shuffle stream of `(seed, e)`. So a batch is a pure function of `(seed, epoch,
position)`: a resumed run sees exactly the batches of an uninterrupted one, with nothing but
the step saved. Held-out items use the `"eval"` stream at a fixed seed and epoch, so every
evaluation (and every run compared) scores the same masked positions.

An item is a dict of int64 arrays `[n_items, 128]` (`input_ids`, `token_type_ids`,
`attention_mask`, `word_ids`) and `[n_items]` (`nsp_label`, `index`).
"""

from __future__ import annotations

import numpy as np
import torch

from mlm_ref.nsp import make_pairs
from mlm_ref.streams import example_keys
from mlm_torch.collate import MLMCollator

from .tokenizer import CLS, MASK, PAD, SEP, word_ids_from_starts

__all__ = ["MAX_LEN", "SHUFFLE_TAG", "LABML_TAG", "EVAL_SEED", "MASKINGS", "encode_documents",
           "pairs_for", "make_items", "PretrainingData"]

MAX_LEN = 128
SHUFFLE_TAG = 0x53485546      # "SHUF": the stream of each epoch's item order
LABML_TAG = 0x4C41424D        # "LABM": the per-batch seeds of labml's (stateful) masker
EVAL_SEED = 0                 # held-out pairs and masks are the same for every run
MASKINGS = ("wwm", "ours", "labml", "mask-only")
# whole words (ours), pieces (ours), pieces (labml's), and a broken masking for the experiment:
# pieces, every selected one replaced by [MASK] (no random or unchanged categories)


def encode_documents(tok, documents: list[list[str]]) -> list[list[list[int]]]:
    """Documents of sentences (strings) to documents of sentences of piece ids (empty
    sentences, and documents left empty, dropped)."""
    flat = [s for d in documents for s in d]
    encoded = tok.encode_batch(flat, add_special_tokens=False)
    out, k = [], 0
    for d in documents:
        sentences = [encoded[k + j].ids for j in range(len(d)) if encoded[k + j].ids]
        k += len(d)
        if sentences:                              # a document with no pieces is dropped
            out.append(sentences)
    return out


def pairs_for(documents: list[list[list[int]]], seed, epoch: int, *,
              max_tokens: int = MAX_LEN - 3) -> list[tuple[list[int], list[int], bool]]:
    """The epoch's NSP pairs `(tokens_a, tokens_b, is_random_next)`: `mlm_ref.nsp.make_pairs`.

    Label 0 = IsNext, 1 = random next, each an exact Bernoulli(1/2); a random B always comes
    from another document; a pair longer than `max_tokens` is cut from its longer side
    (docs/nsp.md). Document `d`'s pairs come from the `"nsp"` stream of `(seed, epoch, d)`.

    Args:
        documents: lists of sentences, each a list of token ids.
        seed: the run's seed (an int or key data, the rule of `mlm_ref.keys`).
        epoch: integer in `[0, 2**32)`.
        max_tokens: the budget for A and B together (128 - 3 for `[CLS]` and two `[SEP]`).

    Raises:
        ValueError: fewer than two non-empty documents, or a budget too small for a pair.
    """
    pairs = make_pairs(documents, seed=seed, epoch=epoch, max_seq_len=max_tokens + 3)
    return [(p.tokens_a.tolist(), p.tokens_b.tolist(), bool(p.is_random_next)) for p in pairs]


def make_items(pairs, starts: np.ndarray, max_len: int = MAX_LEN) -> dict[str, np.ndarray]:
    """Fixed-length items from pairs; item `i` has `index` `i`.

    Args:
        pairs: `(tokens_a, tokens_b, is_random_next)` with `len(a) + len(b) <= max_len - 3`.
        starts: `tokenizer.word_starts(tok)`, for the word ids.

    Raises:
        ValueError: a pair too long for `max_len`.
    """
    n = len(pairs)
    ids = np.full((n, max_len), PAD, np.int64)                        # [n, max_len]
    types = np.zeros((n, max_len), np.int64)
    attention = np.zeros((n, max_len), np.int64)
    for i, (a, b, _) in enumerate(pairs):
        length = len(a) + len(b) + 3
        if length > max_len:
            raise ValueError(f"pair {i} has {length} tokens with specials, more than {max_len}")
        ids[i, :length] = [CLS, *a, SEP, *b, SEP]
        types[i, len(a) + 2:length] = 1
        attention[i, :length] = 1
    words = np.stack([word_ids_from_starts(row, starts) for row in ids]) if n else ids.copy()
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": attention,
            "word_ids": words, "nsp_label": np.array([int(p[2]) for p in pairs], np.int64),
            "index": np.arange(n, dtype=np.int64)}


class PretrainingData:
    """Items and masked batches of one corpus, every batch a function of (seed, epoch, step).

    Args:
        documents: documents of sentences of piece ids (`encode_documents`).
        starts: `tokenizer.word_starts(tok)`.
        seed: the run's seed (pairs, order and masks).
        batch_size: items per batch (the last incomplete batch of an epoch is dropped).
        masking: `"wwm"` (whole words: every piece of a selected word masked together, one
            80/10/10 draw per word, `MLMCollator` with `word_ids`), `"ours"` (piece by piece,
            the token-level contract) or `"labml"` (labml-nn's MLM through
            `verify.registry`, 0.81/0.09/0.10, seeded per batch: for the experiment) or
            `"mask-only"` (a deliberately broken masking for the experiment: pieces, every
            selected one becomes `[MASK]`, so the model never learns to predict a piece it
            can see).
        purpose: `"mlm"` for training, `"eval"` for held-out items (always epoch 0, in order).
        masking_prob: probability that a piece is selected.

    Raises:
        ValueError: an unknown masking or purpose, or a bad batch size.
    """

    def __init__(self, documents, starts, *, seed, batch_size: int, masking: str = "wwm",
                 purpose: str = "mlm", masking_prob: float = 0.15):
        if masking not in MASKINGS:
            raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}")
        if purpose not in ("mlm", "eval"):
            raise ValueError(f"purpose must be 'mlm' or 'eval', got {purpose!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.documents, self.starts = documents, starts
        self.seed, self.batch_size, self.masking, self.purpose = seed, batch_size, masking, purpose
        params = dict(padding_token=PAD, mask_token=MASK, no_mask_tokens=[CLS, SEP],
                      n_tokens=len(starts), masking_prob=masking_prob)
        if masking == "mask-only":                  # 1.0/0.0/0.0 instead of 0.8/0.1/0.1
            params.update(randomize_prob=0.0, no_change_prob=0.0)
        self.collator = MLMCollator(seed=seed, purpose=purpose, **params)
        self._labml = None
        if masking == "labml":
            from verify import registry                     # the published masker, by name
            self._labml = registry.load(registry.get("labml").factory)(**params)
        self._cache: tuple[int, dict] | None = None

    def items(self, epoch: int) -> dict[str, np.ndarray]:
        """The epoch's items (the last epoch's are kept)."""
        if self._cache is None or self._cache[0] != epoch:
            pairs = pairs_for(self.documents, self.seed, epoch)
            self._cache = (epoch, make_items(pairs, self.starts))
        return self._cache[1]

    def n_batches(self, epoch: int) -> int:
        """Full batches in the epoch (at least one item short of a batch: 0)."""
        n = len(self.items(epoch)["index"])
        return n // self.batch_size if self.purpose == "mlm" else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's item order: a permutation from the shuffle stream (eval: in order)."""
        n = len(self.items(epoch)["index"])
        if self.purpose == "eval":
            return np.arange(n)
        key = example_keys(self.seed, epoch, [0], purpose=SHUFFLE_TAG)[0]
        g = torch.Generator().manual_seed(int(key[0]) << 32 | int(key[1]))
        return torch.randperm(n, generator=g).numpy()

    def batch(self, epoch: int, position: int) -> dict[str, torch.Tensor]:
        """Batch number `position` of `epoch`: int64 tensors `input_ids`, `token_type_ids`,
        `attention_mask`, `labels` (-100 where not selected), `word_ids` `[batch, 128]` and
        `nsp_label` `[batch]`."""
        items = self.items(epoch)
        rows = self.order(epoch)[position * self.batch_size:(position + 1) * self.batch_size]
        if len(rows) == 0:
            raise IndexError(f"epoch {epoch} has no batch {position}")
        if self.masking != "labml":
            examples = [{"input_ids": items["input_ids"][r], "index": int(items["index"][r]),
                         "token_type_ids": items["token_type_ids"][r], "epoch": epoch}
                        for r in rows]
            if self.masking == "wwm":                # all pieces of a word masked together
                for e, r in zip(examples, rows):
                    e["word_ids"] = items["word_ids"][r]
            batch = self.collator(examples)
        else:
            batch = self._labml_batch(items, rows, epoch, position)
        batch["attention_mask"] = torch.from_numpy(items["attention_mask"][rows])
        batch["word_ids"] = torch.from_numpy(items["word_ids"][rows])
        batch["nsp_label"] = torch.from_numpy(items["nsp_label"][rows])
        return batch

    def _labml_batch(self, items, rows, epoch, position):
        x = torch.from_numpy(items["input_ids"][rows])                        # [batch, seq]
        key = example_keys(self.seed, epoch, [position], purpose=LABML_TAG)[0]
        with torch.random.fork_rng(devices=[]):          # labml draws from the global generator
            torch.manual_seed(int(key[0]) << 32 | int(key[1]))
            x_masked, y = self._labml(x.T.clone())                      # labml: [seq, batch]
        labels = torch.where(y.T == PAD, torch.full_like(x, -100), y.T)
        return {"input_ids": x_masked.T.contiguous(), "labels": labels,
                "token_type_ids": torch.from_numpy(items["token_type_ids"][rows])}
