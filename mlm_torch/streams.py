"""Stateless streams in PyTorch: per-example keys and a padded batch masked one key per row.

The derivation and the purpose tags are `mlm_ref.streams`' (docs/contract.md, section
Streams): `key(seed, purpose, epoch, index) = fold_in(fold_in(fold_in(key(seed), tag), epoch),
index)`. The hashing and the masking here are torch's own (`mlm_torch.threefry`,
`mlm_torch.exact`), bit-identical to the NumPy and JAX backends, on the CPU and on CUDA (with
torch ops on CUDA: the fused Triton kernel takes one key per call).

**Hashing only what decides the outcome.** A position's draws are a pure function of its key
and its counter, so they can be computed for any subset of positions in any order. On the CPU,
where a collator spends most of its time hashing, `mask_rows` therefore hashes in stages: the
selection draw at eligible positions only (padding and special tokens never need one), then
the category and random-id draws at the ~15% of them that were selected. That is about a
quarter of the dense pass's hashing for a BERT batch, with the same bits. On CUDA the dense
pass stays: the staged one has data-dependent shapes, which would make the host wait.

**A collator's batch.** `mask_examples` is what `mlm_torch.collate.MLMCollator` calls: the
examples' keys are folded in NumPy as the staged pass's first stage, and for an int64 CPU
batch the outcomes are computed in NumPy too, since at 32 examples a torch call costs more
than its arithmetic; the rules and the bits are `mlm_torch.exact.mask_from_bits`'.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from mlm_ref.config import MaskingConfig
from mlm_ref.streams import check_indices, purpose_tag
from mlm_ref.validation import check_word

from . import threefry
from .cpu import eligibility_table
from .exact import chunk_size, mask_from_bits, mask_rows_compiled
from .tensors import as_signed_bits, check_rows, eligible_mask, signed_view

__all__ = ["example_keys", "mask_rows", "mask_examples"]


def example_keys(seed, epoch: int, indices, purpose="mlm", device=None) -> torch.Tensor:
    """The exact-mode keys of examples `indices` in `epoch`, one per example.

    Args:
        seed: an int seed or key data (the rule of `mlm_ref.keys`).
        epoch: integer in `[0, 2**32)`.
        indices: the examples' indices, integers in `[0, 2**32)` (a list, array or CPU tensor).
        purpose: `"mlm"`, `"nsp"`, `"eval"` or a uint32 tag.
        device: where the keys go (default CPU).

    Returns:
        int64 [n, 2] holding uint32 key data (the torch backend's key convention), equal to
        `mlm_ref.streams.example_keys(...)`.
    """
    if isinstance(indices, torch.Tensor):
        indices = indices.cpu().numpy()
    idx = torch.from_numpy(check_indices(indices).astype("int64"))   # [n]
    tag, epoch = purpose_tag(purpose), check_word(epoch, "epoch")
    if type(seed) is int:              # the common case, once per epoch: three hashes saved
        base = _epoch_key(seed, tag, epoch).to(device)
    else:
        base = threefry.derive_key(seed, tag, epoch, device=device)
    y0, y1 = threefry.keyed_bits(base.expand(len(idx), 2), idx.to(base.device))  # fold_in
    return torch.stack([y0, y1], 1).to(torch.int64).bitwise_and_(0xFFFFFFFF)      # [n, 2]


@functools.lru_cache(maxsize=64)
def _epoch_key(seed: int, tag: int, epoch: int) -> torch.Tensor:
    """`fold_in(fold_in(key(seed), tag), epoch)` on the CPU, kept (callers only read it)."""
    return threefry.derive_key(seed, tag, epoch)


@functools.lru_cache(maxsize=64)
def _epoch_words(seed: int, tag: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """`_epoch_key` as two uint32 [1] arrays, the operands of `threefry2x32_numpy`."""
    k = _epoch_key(seed, tag, epoch).numpy().astype(np.uint32)
    return k[:1], k[1:]


def mask_examples(x: torch.Tensor, seed, epoch: int, indices, config: MaskingConfig,
                  purpose="mlm", *, compiled_pass: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """`mask_rows(x, example_keys(seed, epoch, indices, purpose), config)`, for collators.

    On the CPU, with an int seed, the examples' keys are folded in NumPy as the first stage of
    the staged pass (no round trip through torch for 2 words a row); elsewhere it is exactly
    `mask_rows`. The ids are not checked again: the caller has (`mlm_ref.examples.collect`).

    Args:
        x: int64 token ids `[batch, seq]` on the CPU, padded with `config.padding_token`.
        seed, epoch, purpose: the stream (`example_keys`).
        indices: the examples' indices, int64 `[batch]` in `[0, 2**32)`.
        config: the masking parameters.
        compiled_pass: mask with the compiled pass (`mlm_torch.exact.mask_rows_compiled`)
            where it runs; False: the NumPy formulation. The same bits.
    """
    if type(seed) is not int or x.device.type != "cpu" or x.numel() == 0 or x.ndim != 2 \
            or x.dtype != torch.int64 or not 0 < x.shape[1] <= 2**31:
        return mask_rows(x, example_keys(seed, epoch, indices, purpose, device=x.device),
                         config, check_ids=False, compiled_pass=compiled_pass)
    if len(indices) != x.shape[0]:
        raise ValueError(f"{len(indices)} indices for a batch of {x.shape[0]} rows")
    b0, b1 = _epoch_words(seed, purpose_tag(purpose), check_word(epoch, "epoch"))
    k0, k1 = threefry.threefry2x32_numpy(b0, b1, np.asarray(indices).astype(np.uint32))
    if compiled_pass:
        done = mask_rows_compiled(x, np.stack([k0, k1], axis=1), config)
        if done is not None:
            return done
    tables = _numpy_tables(config)
    if tables is None:             # special ids too large for a table: torch's lookup
        return mask_rows(x, np.stack([k0, k1], axis=1), config, check_ids=False,
                         compiled_pass=False)
    x_masked, y = _mask_int64_numpy(x.contiguous().numpy(), k0, k1, tables, config)
    return torch.from_numpy(x_masked), torch.from_numpy(y)


@functools.lru_cache(maxsize=64)
def _numpy_tables(config: MaskingConfig):
    """Per config: `(eligible, top, select, random, random_or_keep)`: the bool table of the
    ids up to `top` that may be selected (`mlm_torch.cpu.eligibility_table`: above `top` every
    id may) and the three thresholds on the 23 mantissa bits of a draw (`_select_below`);
    None when the special ids are too large for a table."""
    eligible, top = eligibility_table(config)
    if eligible is None:
        return None
    below = [np.uint32(math.ceil(float(p) * 2**23)) for p in config.exact_thresholds()]
    return (eligible, top, *below)


def _mask_int64_numpy(x: np.ndarray, k0: np.ndarray, k1: np.ndarray, tables,
                      config: MaskingConfig):
    """`_mask_rows_staged` for an int64 NumPy batch with its row keys `(k0, k1)` (uint32
    `[batch]` each) and `_numpy_tables(config)`, with the outcomes in NumPy too: a collator's batch is small, and each
    torch call costs more than its arithmetic. The same hashes, draws and rules as
    `mlm_torch.exact.mask_from_bits`: `u < p` is compared on the draw's mantissa bits
    (`_select_below`), randint is `threefry.randint_from_bits`' formula in uint64.
    """
    seq = x.shape[1]
    eligible, top, p_select, p_random, p_random_or_keep = tables
    y = np.full_like(x, config.padding_token)
    x_masked = x.copy()
    rows, cols = eligible.take(x, mode="clip").nonzero()   # [n] each; ids above top clip to it
    span, multiplier = threefry.randint_span(0, config.n_random)
    r, c, _, bits = _staged_bits(k0, k1, rows, cols, p_select, multiplier)
    if bits is None:
        return x_masked, y
    hit = r * seq + c                                                    # [m] flat positions
    original = x.reshape(-1).take(hit)
    y.reshape(-1)[hit] = original
    category = bits[0] >> np.uint32(9)
    flat = x_masked.reshape(-1)
    flat[hit[category >= p_random_or_keep]] = config.mask_token
    to_random = (category < p_random).nonzero()[0]                       # randint: these only
    t = bits[1].take(to_random).astype(np.int64) % span                  # randint's lo % span
    if multiplier:
        t = (t + (bits[2].take(to_random).astype(np.int64) % span) * multiplier) % span
    for excluded in config.random_exclude:                               # sorted: one pass
        t += t >= excluded
    flat[hit.take(to_random)] = t
    return x_masked, y


def mask_rows(x: torch.Tensor, row_keys, config: MaskingConfig, *,
              check_ids: bool = True, compiled_pass: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask each row of a padded batch with its own key, all rows at once.

    Args:
        x: token ids `[batch, seq]`, padded with `config.padding_token`, on any device.
        row_keys: key data `[batch, 2]` (int64 uint32 values, uint32, or int32 bit patterns;
            a tensor or array), e.g. `example_keys(...)`.
        config: the masking parameters.
        check_ids: raise on negative ids (reads one boolean back from the device).
        compiled_pass: on the CPU, mask with the compiled pass
            (`mlm_torch.exact.mask_rows_compiled`) where it runs; False: the NumPy
            formulation. The same bits.

    Returns:
        `(x_masked, y)` like `x`; row `r` equals `mask_tokens_exact(x[r], config,
        key=row_keys[r])`, and its first `n` positions those of `x[r, :n]` masked alone.

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    keys = check_rows(x, row_keys, config, check_ids=check_ids)         # [batch, 2]
    batch, seq = x.shape
    if x.numel() == 0:
        return torch.empty_like(x), torch.empty_like(x)
    if x.device.type == "cpu" and seq <= 2**31:
        if compiled_pass:
            k = keys if isinstance(keys, np.ndarray) else keys.numpy().astype(np.uint32)
            done = mask_rows_compiled(x, k, config)
            if done is not None:
                return done
        return _mask_rows_staged(x.contiguous(), keys, config)
    x_masked, y = torch.empty_like(x), torch.empty_like(x)
    sub = threefry.split_rows(keys, 3)                                   # [batch, 3, 2]
    tok = threefry.split_rows(sub[:, 2], 2)                              # randint's two keys
    _, multiplier = threefry.randint_span(0, config.n_random)
    keys4 = torch.stack([sub[:, 0], sub[:, 1], tok[:, 1], tok[:, 0]]
                        if multiplier else [sub[:, 0], sub[:, 1], tok[:, 1]])  # [3|4, b, 2]
    rows = max(1, chunk_size(x.device) // seq)
    for start in range(0, batch, rows):
        r = slice(start, min(batch, start + rows))
        k = keys4[:, r]                                                  # [3|4, rows, 2]
        bits = threefry.counter_bits(k.reshape(-1, 2), seq)              # [3|4 * rows, seq]
        xm, yr = mask_from_bits(x[r], bits.view(len(k), -1, seq), config)
        x_masked[r], y[r] = xm.view(x.dtype), yr.view(x.dtype)
    return x_masked, y


@functools.lru_cache(maxsize=64)
def _select_below(config: MaskingConfig) -> np.uint32:
    """The selection test `u < p_select` on the draw's 23 mantissa bits `m = bits >> 9`.

    `threefry.uniform_from_bits` makes `u = m / 2**23` exactly (a float32 in [1, 2) minus
    1.0), so `u < p` holds exactly when the integer `m` is below `p * 2**23` (exact in
    float64), i.e. below its ceiling: the same outcomes without a float pass.
    """
    return np.uint32(math.ceil(float(config.exact_thresholds()[0]) * 2**23))


def _mask_rows_staged(x: torch.Tensor, keys: torch.Tensor, config: MaskingConfig):
    """`mask_rows` on a contiguous CPU batch, hashing only the draws that decide an outcome.

    Four hashes in all, whatever the batch size: the row keys' three-way split, then the
    selection bits at eligible positions side by side with randint's key split, then the
    category and random-id bits at the selected positions. The positions and keys are
    gathered in NumPy (small arrays: per-call cost decides), the outcomes are
    `mask_from_bits`', as in the dense pass.
    """
    seq = x.shape[1]
    x_masked, y = x.clone(), torch.empty_like(x)
    signed_view(y).fill_(as_signed_bits(config.padding_token, x.dtype))
    rows, cols = eligible_mask(x, config).numpy().nonzero()             # [n] each
    k = keys if isinstance(keys, np.ndarray) else keys.numpy().astype(np.uint32)  # [batch, 2]
    _, multiplier = threefry.randint_span(0, config.n_random)
    r, c, sel, draws = _staged_bits(k[:, 0], k[:, 1], rows, cols, _select_below(config),
                                    multiplier)
    if draws is None:
        return x_masked, y
    bits = np.concatenate([sel[None], draws]).view(np.int32)            # [1 + 2|3, m]
    hit = torch.from_numpy(r * seq + c)
    xm, yr = mask_from_bits(signed_view(x).view(-1)[hit], torch.from_numpy(bits), config)
    signed_view(x_masked).view(-1)[hit] = xm
    signed_view(y).view(-1)[hit] = yr
    return x_masked, y


def _staged_bits(k0, k1, rows, cols, below, multiplier: int):
    """The two hashing stages of a staged pass, for row keys `(k0, k1)` (uint32 `[batch]`)
    and the eligible positions `(rows, cols)` (int64 `[n]` each) of a `[batch, seq]` batch.

    The row keys' three-way split, then the selection bits at the eligible positions beside
    randint's key split of `k_tok` (one hash); then, at the selected positions only, the
    bits of `k_cat`, `k_lo` and (when `multiplier`) `k_hi`, the keys broadcast over their
    counters.

    Returns:
        `(r, c, sel, draws)`: the selected positions' rows (int64) and columns (uint32)
        `[m]`, their selection bits `[m]`, and uint32 `[2|3, m]` (category, lo[, hi]);
        `draws` is None when nothing is selected.
    """
    batch, n = len(k0), len(rows)
    s0, s1 = threefry.threefry2x32_numpy(k0, k1, np.arange(3, dtype=np.uint32)[:, None])
    cols = cols.astype(np.uint32)                                        # [3, batch]: split
    y0, y1 = threefry.threefry2x32_numpy(                                # [n + 2 * batch]
        np.concatenate([s0[0].take(rows), s0[2], s0[2]]),
        np.concatenate([s1[0].take(rows), s1[2], s1[2]]),
        np.concatenate([cols, np.zeros(batch, np.uint32), np.ones(batch, np.uint32)]))
    sel = y0[:n] ^ y1[:n]                                                # k_sel's bits, [n]
    t0, t1 = y0[n:].reshape(2, batch), y1[n:].reshape(2, batch)          # split(k_tok, 2)
    chosen = ((sel >> np.uint32(9)) < below).nonzero()[0]                # [m]: u < p_select
    r, c = rows.take(chosen), cols.take(chosen)
    if not len(chosen):
        return r, c, sel.take(chosen), None
    keys = [(s0[1], s1[1]), (t0[1], t1[1])] + ([(t0[0], t1[0])] if multiplier else [])
    y0, y1 = threefry.threefry2x32_numpy(                                # k_cat, k_lo, k_hi
        np.stack([a for a, _ in keys]).take(r, axis=1),
        np.stack([b for _, b in keys]).take(r, axis=1), c)              # [2|3, m]
    y0 ^= y1
    return r, c, sel.take(chosen), y0
