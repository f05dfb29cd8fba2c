"""Whole-word masking in PyTorch, on CPU and CUDA tensors, native and exact.

The algorithm is the one taught in `mlm_ref.wwm`: a position finds its word's first piece with
a running maximum (`torch.cummax`) over the rows where runs of equal word ids start; a word's
facts (an ineligible piece? how many pieces?) are added onto its first piece with
`scatter_add_` and gathered back; the selection and the category are the first piece's draws.
Everything is plain torch ops on `x`'s device, with no data-dependent shape and no read-back,
except in Google's budget mode (`wwm_selection="budget"`), whose walk needs one boolean read
back per phase. There is no fused Triton kernel for WWM: on CUDA these are ordinary kernels.

Native mode's stream (what a `torch.Generator` seed pins): `torch.rand(x.shape)` for the
selection, `torch.rand(x.shape)` for the category, `torch.randint(0, n_random, x.shape)`
(int64) for the random ids, in that order. Exact mode's draws are token-level exact mode's
(`mlm_torch.threefry`), bit-identical to NumPy's and JAX's. Either way the whole batch's draws
are held at once (two float32 uniforms and an int64 id a position): a word's outcome depends on
its first piece's draws, so the batch cannot be cut into independent slices of positions.
"""

from __future__ import annotations

import torch

from mlm_ref.config import MaskingConfig
from mlm_ref.validation import check_word_ids_meta

from . import threefry
from .tensors import (as_signed_bits, check_generator, check_input, check_rows,
                      eligible_mask, ids_in_view, shift_past_excluded, signed_view)

__all__ = ["mask_words", "mask_words_exact", "mask_word_rows", "check_word_ids"]

_INTEGER = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16,
            torch.uint32, torch.uint64}


def check_word_ids(word_ids, x: torch.Tensor, config: MaskingConfig) -> torch.Tensor:
    """`word_ids` checked against `x`, as a tensor on `x`'s device.

    Raises:
        TypeError: not a tensor, or not an integer dtype.
        ValueError: not of `x`'s shape, or on another device.
    """
    if not isinstance(word_ids, torch.Tensor):
        raise TypeError(f"word_ids must be a torch.Tensor of word indices, "
                        f"got {type(word_ids).__name__}")
    check_word_ids_meta(tuple(word_ids.shape), tuple(x.shape),
                        integer=word_ids.dtype in _INTEGER, dtype_name=str(word_ids.dtype),
                        config=config)
    if word_ids.device != x.device:
        raise ValueError(f"word_ids is on {word_ids.device} but x is on {x.device}")
    return word_ids


def _budget_words(key: torch.Tensor, length: torch.Tensor, budget: torch.Tensor):
    """Google's walk in phases (`mlm_ref.wwm`): True at the first pieces of the words taken.

    `key`: `[seq_len, batch]` walking order (2.0 where no eligible word starts); `length`:
    piece counts at first pieces; `budget`: `[batch]` int64.
    """
    order = torch.sort(key, dim=0, stable=True).indices                 # rows in walking order
    lens = torch.where(key < 2.0, length, 0).gather(0, order)
    left = budget.clone()
    undecided = lens > 0
    taken = torch.zeros_like(undecided)
    while True:  # one phase per pass; one boolean read back each
        fits = undecided & (lens <= left)
        take = fits & (torch.where(fits, lens, 0).cumsum(0) <= left)
        if not bool(take.any()):
            break
        left -= torch.where(take, lens, 0).sum(0)
        undecided &= ~take
        taken |= take
    return torch.zeros_like(taken).scatter_(0, order, taken)           # back to rows


def _mask_from_draws(x: torch.Tensor, w: torch.Tensor, u, c, t, config: MaskingConfig,
                     thresholds) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-word masking from each position's draws `u`, `c` (float) and `t` (ids, int64
    past `random_exclude`), all shaped like `x`; the outputs have `x`'s dtype."""
    shape, seq_len = x.shape, x.shape[0]
    if x.numel() == 0:
        return torch.empty_like(x), torch.empty_like(x)
    batch = x.numel() // seq_len
    v = signed_view(x).reshape(seq_len, batch)                          # [seq_len, batch]
    wv = signed_view(w).reshape(seq_len, batch)
    u, c, t = (a.reshape(seq_len, batch) for a in (u, c, t))
    p_select, p_random, p_random_or_keep = thresholds
    device = x.device

    # 1. Words: first pieces by a running maximum of run-start rows.
    in_word = wv >= 0 if w.is_signed() else torch.ones_like(wv, dtype=torch.bool)
    start = in_word.clone()
    start[1:] &= wv[1:] != wv[:-1]
    rows = torch.arange(seq_len, device=device).unsqueeze(1)            # [seq_len, 1]
    first = torch.where(start, rows, 0).cummax(0).values                # [seq_len, batch]
    cols = torch.arange(batch, device=device).unsqueeze(0)              # [1, batch]
    flat_first = (first * batch + cols).reshape(-1)                     # flat first piece

    def per_word(values: torch.Tensor) -> torch.Tensor:
        """Sum `values` (int64) over each word's pieces, onto its first piece."""
        out = torch.zeros(seq_len * batch, dtype=torch.int64, device=device)
        return out.scatter_add_(0, flat_first, values.reshape(-1)).reshape(seq_len, batch)

    eligible = eligible_mask(x, config).reshape(seq_len, batch)
    blocked = per_word((in_word & ~eligible).to(torch.int64)) > 0
    ok_start = start & ~blocked

    # 2. Selection at first pieces.
    if config.wwm_selection == "bernoulli":
        chosen = ok_start & (u < p_select)
    else:
        length = per_word(in_word.to(torch.int64))
        padding = as_signed_bits(config.padding_token, x.dtype) \
            if config.padding_token <= torch.iinfo(x.dtype).max else None
        n_tokens = (v != padding).sum(0) if padding is not None else \
            torch.full((batch,), seq_len, dtype=torch.int64, device=device)
        table = torch.from_numpy(config.wwm_budget_table(seq_len)).to(device)
        chosen = _budget_words(torch.where(ok_start, u, 2.0), length, table[n_tokens])
    selected = in_word & chosen.gather(0, first)

    # 3. Category: the first piece's draw, or each piece's own.
    cat = c if config.wwm_category == "piece" else c.gather(0, first)
    to_random = selected & (cat < p_random)
    to_mask = selected & (cat >= p_random_or_keep)

    # 4. Outputs, in the signed view (unsigned dtypes), viewed back.
    mask_token = torch.tensor(as_signed_bits(config.mask_token, x.dtype), dtype=v.dtype,
                              device=device)
    pad = torch.tensor(as_signed_bits(config.padding_token, x.dtype), dtype=v.dtype,
                       device=device)
    x_masked = torch.where(to_random, ids_in_view(t, x.dtype), torch.where(to_mask, mask_token, v))
    y = torch.where(selected, v, pad)
    return x_masked.reshape(shape).view(x.dtype), y.reshape(shape).view(x.dtype)


def mask_words(x: torch.Tensor, word_ids: torch.Tensor, config: MaskingConfig, *,
               generator=None, check_ids: bool = True):
    """Whole-word masking with PyTorch's generator (native mode; stream in the docstring).

    Args:
        x: integer tensor of token ids, rank >= 1, axis 0 the sequence.
        word_ids: integer tensor shaped like `x` on its device (negative: no word).
        config: the masking parameters, `wwm_*` options included.
        generator: a `torch.Generator` on `x`'s device, or None for the global one.
        check_ids: raise on negative token ids (reads one boolean back from the device).

    Returns:
        `(x_masked, y)`: new tensors with the dtype, shape and device of `x`.
    """
    check_input(x, config, check_ids=check_ids)
    w = check_word_ids(word_ids, x, config)
    check_generator(generator, x)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    c = torch.rand(x.shape, generator=generator, device=x.device)
    t = torch.randint(0, config.n_random, x.shape, generator=generator, device=x.device,
                      dtype=torch.int64)
    r, n = config.randomize_prob, config.no_change_prob
    return _mask_from_draws(x, w, u, c, shift_past_excluded(t, config), config,
                            (config.masking_prob, r, r + n))


def mask_words_exact(x: torch.Tensor, word_ids: torch.Tensor, config: MaskingConfig, *, key,
                     check_ids: bool = True):
    """Whole-word masking in exact mode: bit-identical to `mlm_ref.wwm.mask_words_exact`.

    Args:
        x: integer tensor of token ids, rank >= 1, axis 0 the sequence.
        word_ids: integer tensor shaped like `x` on its device (negative: no word).
        config: the masking parameters, `wwm_*` options included.
        key: an int seed or raw threefry key data `uint32[2]` (the rule of `mlm_ref.keys`).
        check_ids: raise on negative token ids (reads one boolean back from the device).

    Returns:
        `(x_masked, y)` with the dtype, shape and device of `x`.
    """
    check_input(x, config, check_ids=check_ids)
    w = check_word_ids(word_ids, x, config)
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key, device=x.device), 3)
    u = threefry.uniform(k_sel, x.shape)                                # float32, like x
    c = threefry.uniform(k_cat, x.shape)
    t = threefry.randint(k_tok, x.shape, 0, config.n_random).to(torch.int64)
    return _mask_from_draws(x, w, u, c, shift_past_excluded(t, config), config,
                            tuple(float(t) for t in config.exact_thresholds()))


def mask_word_rows(x: torch.Tensor, word_ids: torch.Tensor, row_keys, config: MaskingConfig,
                   *, check_ids: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-word masking of each row of a padded batch with its own key, in one pass.

    The whole-word counterpart of `mlm_torch.streams.mask_rows`, for collators: row `r` equals
    `mask_words_exact(x[r], word_ids[r], config, key=row_keys[r])`. Padding positions should
    carry word id -1; then the first `n` positions of a row are masked as `x[r, :n]` alone
    (padding is never selected, and Google's budget counts non-padding positions only).

    Args:
        x: token ids `[batch, seq]`, padded with `config.padding_token`, on any device.
        word_ids: integer tensor `[batch, seq]` on `x`'s device (negative: no word).
        row_keys: key data `[batch, 2]` (int64 uint32 values, uint32, or int32 bit patterns).
        config: the masking parameters, `wwm_*` options included.
        check_ids: raise on negative token ids (reads one boolean back from the device).

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    keys = check_rows(x, row_keys, config, check_ids=check_ids)         # [batch, 2]
    w = check_word_ids(word_ids, x, config)
    batch, seq = x.shape
    if x.numel() == 0:
        return torch.empty_like(x), torch.empty_like(x)
    sub = threefry.split_rows(keys, 3)                                   # [batch, 3, 2]
    tok = threefry.split_rows(sub[:, 2], 2)                              # randint's (hi, lo)
    _, multiplier = threefry.randint_span(0, config.n_random)
    rows = [sub[:, 0], sub[:, 1], tok[:, 1]] + ([tok[:, 0]] if multiplier else [])
    bits = threefry.counter_bits(torch.cat(rows), seq).view(len(rows), batch, seq)
    u, c = threefry.uniform_from_bits(bits[0]), threefry.uniform_from_bits(bits[1])
    t = threefry.randint_from_bits(bits[2], bits[3] if multiplier else None, 0,
                                   config.n_random).to(torch.int64)
    # the sequence axis first: [seq, batch], each column one row of the batch
    x_masked, y = _mask_from_draws(x.T, w.T, u.T, c.T, shift_past_excluded(t, config).T,
                                   config, tuple(float(v) for v in config.exact_thresholds()))
    return x_masked.T.contiguous(), y.T.contiguous()
