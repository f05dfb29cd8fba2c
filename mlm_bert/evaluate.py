"""Evaluation: MLM and NSP accuracy, perplexity, the unigram baseline, top-k predictions.

Perplexity is `exp(mean NLL)` of the original pieces at the *selected* positions of the
held-out items, whatever the masker put there (`[MASK]`, a random piece or the piece itself):
the model is asked "what was here?" at every selected position. The held-out masks come from
their own stream (`"eval"`, a fixed seed and epoch), so every evaluation of every run scores
the same positions, and a baseline can be scored on exactly the same ones.

The baseline is the unigram model: it ignores the context and predicts each piece with its
frequency in the training documents (add-one smoothed). A model that learnt anything from the
context must beat it. Its perplexity is `exp(-mean log p(piece))` over the same positions.

`topk` and `format_predictions` print predictions in a fixed format: the text, the text with
its masks, and one line per rank k with the k-th guess at each masked position and its
probability, `word[12.3%]`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .tokenizer import CLS, MASK, PAD, SEP, detokenize

__all__ = ["evaluate", "unigram_log_probs", "unigram_perplexity", "topk", "format_predictions"]


@torch.no_grad()
def evaluate(model, data, *, max_batches: int | None = None, device="cpu") -> dict:
    """Held-out metrics of `model` on the batches of `data` (a `PretrainingData`, eval purpose).

    Returns:
        `mlm_nll` (mean over selected positions), `perplexity`, `mlm_acc`, `nsp_acc`,
        `n_selected`, `n_items`.
    """
    was_training = model.training
    model.eval()
    nll = correct = selected = nsp_correct = items = 0
    n = data.n_batches(0)
    for position in range(n if max_batches is None else min(n, max_batches)):
        batch = {k: v.to(device) for k, v in data.batch(0, position).items()}
        out = model(**batch)
        logits = out["mlm_logits"].float()
        nll += F.cross_entropy(logits, out["mlm_targets"], reduction="sum").item()
        correct += (logits.argmax(-1) == out["mlm_targets"]).sum().item()
        selected += out["mlm_targets"].numel()
        nsp_correct += (out["nsp_logits"].argmax(-1) == batch["nsp_label"]).sum().item()
        items += len(batch["nsp_label"])
    model.train(was_training)
    if selected == 0:
        raise ValueError("no selected positions in the evaluation batches")
    return {"mlm_nll": nll / selected, "perplexity": math.exp(nll / selected),
            "mlm_acc": correct / selected, "nsp_acc": nsp_correct / items,
            "n_selected": selected, "n_items": items}


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
    n = data.n_batches(0)
    for position in range(n if max_batches is None else min(n, max_batches)):
        labels = data.batch(0, position)["labels"]
        targets = labels[labels != -100].numpy()
        total -= log_probs[targets].sum()
        count += targets.size
    if count == 0:
        raise ValueError("no selected positions in the evaluation batches")
    return math.exp(total / count)


@torch.no_grad()
def topk(model, input_ids, token_type_ids=None, attention_mask=None, *, k: int = 3):
    """The `k` most probable pieces at every position of a batch.

    Returns:
        `(ids, probs)`, each `[batch, seq, k]`.
    """
    was_training = model.training
    model.eval()
    logits = model(input_ids, token_type_ids, attention_mask, all_positions=True)["mlm_logits"]
    model.train(was_training)
    probs, ids = F.softmax(logits.float(), dim=-1).topk(k, dim=-1)
    return ids, probs


def format_predictions(tok, masked_ids, top_ids, top_probs, *, original_ids=None,
                       predict_at=None) -> str:
    """The fixed-format block for one row.

    Args:
        tok: the tokenizer.
        masked_ids: the row as the model saw it `[seq]`.
        top_ids, top_probs: `topk`'s output for the row `[seq, k]`.
        original_ids: the row before masking (prints the `text:` line), or None.
        predict_at: bool `[seq]`, where to show guesses (default: the `[MASK]` positions).

    Returns:
        Lines `text:`, `text_with_mask:`, `pred_top_1:` ... `pred_top_k:`.
    """
    masked_ids = [int(i) for i in masked_ids]
    if predict_at is None:
        predict_at = [i == MASK for i in masked_ids]
    reference = masked_ids if original_ids is None else [int(i) for i in original_ids]
    keep = [i not in (PAD, CLS, SEP) for i in reference]          # the text's pieces only
    shown = lambda ids: detokenize([tok.id_to_token(i)                # noqa: E731
                                    for i, kept in zip(ids, keep) if kept])
    lines = []
    if original_ids is not None:
        lines.append(f"text:           {shown([int(i) for i in original_ids])}")
    lines.append(f"text_with_mask: {shown(masked_ids)}")
    for r in range(top_ids.shape[-1]):
        pieces = []
        for pos, (i, kept) in enumerate(zip(masked_ids, keep)):
            if not kept:
                continue
            if predict_at[pos]:
                guess = tok.id_to_token(int(top_ids[pos, r]))
                pieces.append(f"{guess}[{100 * float(top_probs[pos, r]):.1f}%]")
            else:
                pieces.append(tok.id_to_token(i))
        lines.append(f"{f'pred_top_{r + 1}:':<16}{detokenize(pieces)}")
    return "\n".join(lines)
