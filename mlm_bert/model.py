"""The model: joint embedding, pre-LN encoder blocks, an MLM head tied to the embedding, NSP.

Input ids `[batch, seq]` become vectors in `JointEmbedding`: the sum of a token embedding, a
segment embedding (A or B) and, in BERT's original design, a *learned* position embedding,
normalised and dropped out.

Where a piece is can be told three ways (`BertConfig.position`). `learned` is BERT's: a vector
per position added to the input, initialised at random, so the model must first learn which
positions are near each other. `rotary` (RoFormer, Su et al., 2021) adds nothing to the
input; instead q and k are rotated by an angle proportional to their position, so the
attention score of two pieces depends on their distance from the first step, and a piece's
own vector reaches the output undisturbed by a position vector. On the tiny model this is what
lets it leave the word-frequency plateau within a few hundred steps (docs/bert.md, ablation).
`relative` keeps the learned embedding and adds a learned bias per head and signed distance to
the attention scores, initialised to favour near neighbours (as ALiBi's slopes).

Then `n_layers` encoder blocks, each

    x = x + Dropout(SelfAttention(LayerNorm(x)))     # pre-LN: the norm is on the branch input,
    x = x + Dropout(FeedForward(LayerNorm(x)))       # the residual path stays an identity

with a final LayerNorm after the last block. Pre-LN (Xiong et al., 2020) keeps gradients at the
bottom of the stack well-scaled, which makes the warm-up less critical than BERT's original
post-LN arrangement. Self-attention projects q, k and v with *one* `[hidden, 3 * hidden]`
matrix (one matrix product instead of three) and calls `F.scaled_dot_product_attention`, which
picks a fused kernel (flash or memory-efficient) where one applies; padding is kept out by a
boolean mask `[batch, 1, 1, seq]`.

The MLM head (dense, GELU, LayerNorm, then a projection onto the vocabulary) shares its output
matrix with the token embedding: a piece's input vector is also its output vector, which saves
`vocab * hidden` parameters and helps a small model. The head runs only on the *selected*
positions (labels != -100): the vocabulary projection is the most expensive matrix product of
a small model, and the other 85% of positions contribute nothing to the loss. The NSP head
reads the `[CLS]` vector through a tanh "pooler" and gives two logits (0 IsNext, 1 NotNext).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BertConfig", "SIZES", "JointEmbedding", "SelfAttention", "EncoderBlock", "Bert"]


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Model sizes.

    Raises:
        ValueError: `hidden` not divisible by `heads`, or a non-positive size.
    """

    vocab_size: int
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 1024
    max_len: int = 128
    type_vocab: int = 2
    dropout: float = 0.1
    position: str = "learned"
    init: str = "bert"


    def __post_init__(self):
        for name in ("vocab_size", "hidden", "layers", "heads", "intermediate", "max_len",
                     "type_vocab"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.init not in ("bert", "fan_in"):
            raise ValueError(f"init must be 'bert' or 'fan_in', got {self.init!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")


# how the model knows where a piece is: "learned" absolute embeddings (BERT's), "relative" (a
# learned bias per head and signed distance, initialised to favour near neighbours, on top of
# the learned absolute embeddings), "rotary" (q and k rotated by position, no absolute table)
POSITIONS = ("learned", "relative", "rotary")

# named sizes: `micro` for tests, `tiny` (BERT-tiny's shape) for the CPU, `small` and `mini`
# in between, `base` is BERT-base
SIZES = {
    "micro": dict(hidden=64, layers=2, heads=2, intermediate=256),
    "tiny": dict(hidden=128, layers=2, heads=2, intermediate=512),
    "small": dict(hidden=256, layers=4, heads=4, intermediate=1024),
    "mini": dict(hidden=512, layers=8, heads=8, intermediate=2048),
    "base": dict(hidden=768, layers=12, heads=12, intermediate=3072),
}


class JointEmbedding(nn.Module):
    """Token + segment + learned position embeddings, LayerNorm, dropout (with rotary
    positions there is no position table: the attention reads positions instead)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.tokens = nn.Embedding(config.vocab_size, config.hidden)
        self.segments = nn.Embedding(config.type_vocab, config.hidden)
        self.positions = (nn.Embedding(config.max_len, config.hidden)
                          if config.position != "rotary" else None)
        self.norm = nn.LayerNorm(config.hidden)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(input_ids) + self.segments(token_type_ids)       # [batch, seq, hidden]
        if self.positions is not None:
            x = x + self.positions.weight[:input_ids.shape[1]]              # + [seq, hidden]
        return self.dropout(self.norm(x))


def locality_prior(heads: int, max_len: int) -> torch.Tensor:
    """The initial relative bias `[heads, 2 * max_len - 1]`: `-slope_h * |distance|`, with
    slopes from 1 (a head that starts by reading the next few pieces) down to 2**-8 * heads
    (a head that starts by reading the whole item), as ALiBi's."""
    slopes = 2.0 ** (-8.0 * torch.arange(heads) / heads)                         # [heads]
    distance = torch.arange(-(max_len - 1), max_len).abs().float()         # [2 * max_len - 1]
    return -slopes[:, None] * distance[None, :]


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding: each pair of dimensions of `x` `[..., seq, d]` rotated by
    an angle proportional to its position, so that q . k depends on the distance."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention: fused q/k/v projection, SDPA, output projection; with
    `position="relative"` a learned bias per head and signed distance is added to the scores,
    with `"rotary"` q and k are rotated by position."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.heads, self.dropout = config.heads, config.dropout
        self.qkv = nn.Linear(config.hidden, 3 * config.hidden)
        self.out = nn.Linear(config.hidden, config.hidden)
        n = config.max_len
        self.relative = None
        if config.position == "relative":
            self.relative = nn.Parameter(locality_prior(config.heads, n))
            # distance index of (query i, key j): j - i, shifted to [0, 2n - 2]
            index = torch.arange(n)[None, :] - torch.arange(n)[:, None] + n - 1
            self.register_buffer("distance", index, persistent=False)          # [n, n]
        if config.position == "rotary":
            d = config.hidden // config.heads
            angle = torch.outer(torch.arange(n).float(),
                                10000.0 ** (-torch.arange(0, d, 2).float() / d))   # [n, d/2]
            self.register_buffer("cos", angle.cos(), persistent=False)
            self.register_buffer("sin", angle.sin(), persistent=False)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        batch, seq, hidden = x.shape
        qkv = self.qkv(x).view(batch, seq, 3, self.heads, hidden // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)              # [batch, heads, seq, d]
        mask = keep
        if self.relative is not None:
            bias = self.relative[:, self.distance[:seq, :seq]]              # [heads, seq, seq]
            mask = bias if keep is None else bias.masked_fill(~keep, float("-inf"))
        if hasattr(self, "cos"):
            q, k = rotate(q, self.cos[:seq], self.sin[:seq]), rotate(k, self.cos[:seq],
                                                                      self.sin[:seq])
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(batch, seq, hidden))    # [batch, seq, hidden]


class EncoderBlock(nn.Module):
    """One pre-LN transformer block: attention and feed-forward, each on a normalised input."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden)
        self.attention = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden)
        self.ff = nn.Sequential(nn.Linear(config.hidden, config.intermediate), nn.GELU(),
                                nn.Linear(config.intermediate, config.hidden))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x), keep))
        return x + self.dropout(self.ff(self.norm2(x)))


class Bert(nn.Module):
    """BERT for pre-training: encoder, tied MLM head, NSP head.

    `forward` returns a dict: `hidden` `[batch, seq, hidden]`, `nsp_logits` `[batch, 2]`, and,
    when `labels` are given, `mlm_logits` `[n_selected, vocab]` at the selected positions
    (labels != -100, in row-major order) with `mlm_targets` `[n_selected]`; with
    `all_positions=True`, `mlm_logits` covers every position `[batch, seq, vocab]` (prediction).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embedding = JointEmbedding(config)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.hidden)
        self.mlm_transform = nn.Sequential(nn.Linear(config.hidden, config.hidden), nn.GELU(),
                                           nn.LayerNorm(config.hidden))
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.pooler = nn.Linear(config.hidden, config.hidden)
        self.nsp = nn.Linear(config.hidden, 2)
        self.apply(self._init)

    def _init(self, module):
        """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms; with
        `init="fan_in"` a linear layer's weights are N(0, 1 / fan_in) instead, so that
        attention scores are not near zero (uniform attention) at the start."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = 0.02
            if self.config.init == "fan_in" and isinstance(module, nn.Linear):
                std = module.in_features ** -0.5
            nn.init.normal_(module.weight, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def mlm_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden vectors `[..., hidden]` -> `[..., vocab]` (tied weights)."""
        return F.linear(self.mlm_transform(h), self.embedding.tokens.weight, self.mlm_bias)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, *,
                all_positions: bool = False, word_ids=None,
                nsp_label=None) -> dict[str, torch.Tensor]:
        # word_ids and nsp_label are accepted so that `model(**batch)` works; the loss of the
        # NSP label is the trainer's, and word ids matter only to the masker.
        if input_ids.ndim != 2 or input_ids.shape[1] > self.config.max_len:
            raise ValueError(f"input_ids must be [batch, seq] with seq <= "
                             f"{self.config.max_len}, got shape {tuple(input_ids.shape)}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        keep = None
        if attention_mask is not None:
            keep = attention_mask.bool()[:, None, None, :]                   # [batch, 1, 1, seq]
        h = self.embedding(input_ids, token_type_ids)
        for block in self.blocks:
            h = block(h, keep)
        h = self.final_norm(h)                                             # [batch, seq, hidden]
        out = {"hidden": h, "nsp_logits": self.nsp(torch.tanh(self.pooler(h[:, 0])))}
        if all_positions:
            out["mlm_logits"] = self.mlm_logits(h)                      # [batch, seq, vocab]
        elif labels is not None:
            selected = labels != -100                                      # [batch, seq]
            out["mlm_logits"] = self.mlm_logits(h[selected])            # [n_selected, vocab]
            out["mlm_targets"] = labels[selected]
        return out
