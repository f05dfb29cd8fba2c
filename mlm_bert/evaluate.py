"""Evaluation: MLM and NSP accuracy, perplexity, the unigram baseline, top-k predictions.

Perplexity is `exp(mean NLL)` of the original pieces at the *selected* positions of the
held-out items, whatever the masker put there (`[MASK]`, a random piece or the piece itself):
the model is asked "what was here?" at every selected position. The held-out masks come from
their own stream (`"eval"`, a fixed seed and epoch), so every evaluation of every run scores
the same positions, and a baseline can be scored on exactly the same ones.

The selected positions are also scored by what the masker put there: `[MASK]` (80%), a random
piece (10%) or the piece itself (10%). A model that only copies what it sees and predicts word
frequencies elsewhere is right at the unchanged positions and at frequency level at the
others; `mask_acc`, the top-1 accuracy at `[MASK]` positions, shows when it starts to read the
context. Whole-word figures treat a word's selected pieces together (right when all are right;
its NLL the sum of theirs). The baselines on the same positions are in `mlm_bert.baselines`.

`topk` and `format_predictions` print predictions in a fixed format: the text, the text with
its masks, and one line per rank k with the k-th guess at each masked position and its
probability, `word[12.3%]`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .baselines import unigram_log_probs, unigram_perplexity   # re-exported
from .tokenizer import CLS, MASK, PAD, SEP, detokenize

__all__ = ["CATEGORIES", "categories", "word_groups", "evaluate", "unigram_log_probs",
           "unigram_perplexity", "topk", "format_predictions"]


CATEGORIES = ("mask", "random", "unchanged")


def categories(input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What the masker put at each selected position, in row-major order: 0 `[MASK]`,
    1 a random piece, 2 the piece itself (a random draw of the piece itself counts as
    unchanged: the model cannot tell them apart). `[n_selected]`."""
    selected = labels != -100
    seen, target = input_ids[selected], labels[selected]
    return torch.where(seen == MASK, 0, torch.where(seen == target, 2, 1))


def word_groups(labels: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
    """The whole word each selected position belongs to, numbered 0.. in row-major order
    `[n_selected]` (pieces of one word in one row share a number)."""
    selected = labels != -100
    rows = torch.nonzero(selected)[:, 0]
    key = rows * (word_ids.shape[1] + 1) + word_ids[selected]
    return torch.unique(key, return_inverse=True)[1]


class _Tally:
    """Sums of NLL, hits and counts over positions, per category and per whole word."""

    def __init__(self):
        self.sums = {name: [0.0, 0, 0] for name in ("all", *CATEGORIES, "word")}

    def add(self, name, nll, hit):
        s = self.sums[name]
        s[0] += nll.sum().item()
        s[1] += hit.sum().item()
        s[2] += nll.numel()

    def add_batch(self, batch, nll, hit):
        self.add("all", nll, hit)
        kind = categories(batch["input_ids"], batch["labels"])
        for c, name in enumerate(CATEGORIES):
            self.add(name, nll[kind == c], hit[kind == c])
        group = word_groups(batch["labels"], batch["word_ids"])
        n = int(group.max()) + 1 if group.numel() else 0
        word_nll = torch.zeros(n, dtype=nll.dtype).index_add_(0, group, nll)
        misses = torch.zeros(n, dtype=torch.long).index_add_(0, group, (~hit).long())
        word_hit = misses == 0                         # a word is right when all its pieces are
        self.add("word", word_nll, word_hit)

    def metrics(self) -> dict:
        nll, hits, count = self.sums["all"]
        out = {"mlm_nll": nll / count, "perplexity": math.exp(nll / count),
               "mlm_acc": hits / count, "n_selected": count}
        for name in (*CATEGORIES, "word"):
            nll, hits, count = self.sums[name]
            out[f"{name}_nll"] = nll / count if count else None
            out[f"{name}_acc"] = hits / count if count else None
            out[f"n_{name}"] = count
        out["word_perplexity"] = math.exp(out["word_nll"]) if out["n_word"] else None
        return out


@torch.no_grad()
def evaluate(model, data, *, max_batches: int | None = None, device="cpu") -> dict:
    """Held-out metrics of `model` on the batches of `data` (a `PretrainingData`, eval purpose).

    Returns:
        `mlm_nll` (mean over selected positions), `perplexity`, `mlm_acc`, `nsp_acc`,
        `n_selected`, `n_items`; per category of selected position (`mask`, `random`,
        `unchanged`) `<category>_nll`, `<category>_acc` and `n_<category>` (`mask_acc` is the
        top-1 accuracy at `[MASK]` positions); per whole word `word_nll` (the summed NLL of
        its selected pieces), `word_acc` (all of them right), `word_perplexity`, `n_word`.
    """
    was_training = model.training
    model.eval()
    tally, nsp_correct, items = _Tally(), 0, 0
    n = data.n_batches(0)
    for position in range(n if max_batches is None else min(n, max_batches)):
        batch = {k: v.to(device) for k, v in data.batch(0, position).items()}
        out = model(**batch)
        logits = out["mlm_logits"].float()
        nll = F.cross_entropy(logits, out["mlm_targets"], reduction="none").cpu()
        hit = (logits.argmax(-1) == out["mlm_targets"]).cpu()
        tally.add_batch({k: v.cpu() for k, v in batch.items()}, nll, hit)
        nsp_correct += (out["nsp_logits"].argmax(-1) == batch["nsp_label"]).sum().item()
        items += len(batch["nsp_label"])
    model.train(was_training)
    if tally.sums["all"][2] == 0:
        raise ValueError("no selected positions in the evaluation batches")
    return {**tally.metrics(), "nsp_acc": nsp_correct / items, "n_items": items}


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
