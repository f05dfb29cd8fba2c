"""Hugging Face's `BertForPreTraining` behind `mlm_bert.model.Bert`'s interface: a defect check.

When a model stays on the word-frequency plateau, the first question is whether something in
our own model, loss or data path is broken. This wrapper answers it by experiment: the
ablation (`python -m mlm_bert.tools.ablate hf-bert lr3`) trains Hugging Face's reference
implementation of BERT, of the `cpu` preset's size, on the very batches, masks, loss,
optimizer and schedule that train ours, and compares them step for step with ours in its
closest configuration (`lr3`: learned absolute positions, BERT's initialisation). If the
reference left the plateau while ours did not, the difference would be a bug of ours; if both
behave alike, the plateau is the recipe's.

The wrapper only adapts shapes: Hugging Face's encoder (post-LN, learned positions, its own
N(0, 0.02) initialisation, the MLM decoder tied to the word embeddings) is used as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from mlm_bert.model import BertConfig

__all__ = ["HFBert"]


class HFBert(nn.Module):
    """`transformers.BertForPreTraining` with `mlm_bert.model.Bert`'s `forward`.

    Args:
        config: the size to build (`position` must be `"learned"`: Hugging Face's BERT has no
            other); kept as `.config` so that checkpoints record it as they do ours.

    Raises:
        ModuleNotFoundError: `transformers` is not installed.
        ValueError: a position handling other than `"learned"`.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        if config.position != "learned":
            raise ValueError("Hugging Face's BERT has learned absolute positions only, "
                             f"got position={config.position!r}")
        import transformers
        self.config = config
        hf = transformers.BertConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden,
            num_hidden_layers=config.layers, num_attention_heads=config.heads,
            intermediate_size=config.intermediate, max_position_embeddings=config.max_len,
            type_vocab_size=config.type_vocab, hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout, pad_token_id=0)
        self.hf = transformers.BertForPreTraining(hf)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, *,
                all_positions: bool = False, word_ids=None,
                nsp_label=None) -> dict[str, torch.Tensor]:
        """The outputs of `mlm_bert.model.Bert.forward` (word ids and the NSP label unused)."""
        encoded = self.hf.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                               attention_mask=attention_mask)
        h, pooled = encoded.last_hidden_state, encoded.pooler_output   # [batch, seq, hidden]
        out = {"hidden": h, "nsp_logits": self.hf.cls.seq_relationship(pooled)}
        if all_positions:
            out["mlm_logits"] = self.hf.cls.predictions(h)              # [batch, seq, vocab]
        elif labels is not None:
            selected = labels != -100                                      # [batch, seq]
            out["mlm_logits"] = self.hf.cls.predictions(h[selected])    # [n_selected, vocab]
            out["mlm_targets"] = labels[selected]
        return out
