"""What every torch path shares: the input checks, eligibility and the excluded-id shift.

The contract's input rules are `mlm_ref.validation`'s, applied to a tensor's metadata; what is
checked here and nowhere else is what only a tensor can get wrong: not being a tensor, a sparse
or meta tensor, a generator on another device.

**Unsigned ids.** torch has no compare, `where` or `min` kernels for uint16, uint32 and uint64
on the CPU. The elementwise paths therefore work on the *signed view* of such a tensor (the same
bits as int16, int32, int64), comparing with the special ids' bit patterns: equality, which is
all that eligibility needs, means the same thing in both views, and the outputs are viewed back.
"""

from __future__ import annotations

import functools

import torch

from mlm_ref.config import MaskingConfig
from mlm_ref.validation import check_ids_meta, check_lowest_id, special_ids

__all__ = ["check_input", "check_rows", "check_generator", "signed_view", "as_signed_bits", "eligible_mask",
           "shift_past_excluded", "view_dtype", "ids_in_view", "TABLE_MAX"]

_INTEGER_DTYPES = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                   torch.uint16, torch.uint32, torch.uint64}
_SIGNED = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}

# Eligibility is a table lookup when the largest special id is at most this (a 64 KiB table);
# above it, compares: a table as large as the largest special id could need terabytes.
TABLE_MAX = 2**16
# Up to this many special ids are compared one by one; more go through torch.isin.
_MAX_COMPARES = 16


def check_input(x, config: MaskingConfig, *, check_ids: bool = True) -> torch.Tensor:
    """Check `x` against the contract's input rules and return it.

    Raises:
        TypeError: not a tensor, a sparse or meta tensor, not an integer dtype, or a dtype too
            small for the ids.
        ValueError: rank 0, or (with `check_ids`) negative token ids.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of token ids, got {type(x).__name__}")
    if x.layout != torch.strided:
        raise TypeError(f"x must be a dense (strided) tensor, got layout {x.layout}; "
                        f"convert it with x.to_dense()")
    if x.is_meta:
        raise TypeError("x is a meta tensor, which has no token ids to mask; "
                        "pass a tensor on a real device")
    dtype, ndim = x.dtype, x.dim()
    if ndim == 0 or _meta_checked != (dtype, config):  # equal: this dtype passed with config
        integer = dtype in _INTEGER_DTYPES
        check_ids_meta(str(dtype), integer=integer,
                       max_value=torch.iinfo(dtype).max if integer else None,
                       ndim=ndim, config=config)
        _remember_meta(dtype, config)
    if check_ids and x.is_signed() and x.numel() and _lowest(x) < 0:
        check_lowest_id(_lowest(x))
    return x


# The last (dtype, config) whose rank-free checks passed: a call in a training loop repeats
# them, and the comparison (identity first) costs less than the checks.
_meta_checked = (None, None)


def _remember_meta(dtype: torch.dtype, config: MaskingConfig) -> None:
    """Record that `dtype` passed `check_ids_meta` with `config` (one tuple: atomic)."""
    global _meta_checked
    _meta_checked = (dtype, config)


def _lowest(x: torch.Tensor) -> int:
    """The smallest id of a non-empty tensor; read on the host for a CPU tensor.

    On the CPU, NumPy's single-threaded reduction: a torch reduction as large as a batch runs
    on the intra-op thread pool, whose barrier waits for every thread, and on a loaded machine
    a descheduled thread holds the call for milliseconds (docs/benchmarks.md)."""
    if x.device.type == "cpu" and type(x) is torch.Tensor:
        return int(x.numpy().min())
    return int(x.min())


def check_generator(generator, x: torch.Tensor) -> None:
    """Refuse anything but None or a `torch.Generator` on `x`'s device."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, "
                        f"got {type(generator).__name__}")
    if x.is_cpu and generator.device.type == "cpu":    # the common case, fewer device objects
        return
    g, d = generator.device, x.device
    if g.type != d.type or (g.type != "cpu" and (g.index or 0) != (d.index or 0)):
        raise ValueError(f"generator is on {g} but x is on {d}; create it with "
                         f"torch.Generator(device=x.device)")


def signed_view(x: torch.Tensor) -> torch.Tensor:
    """`x` itself, or for uint16/32/64 the signed tensor with the same bits (no copy)."""
    return x.view(_SIGNED[x.dtype]) if x.dtype in _SIGNED else x


def view_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of `signed_view` for a tensor of `dtype`."""
    return _SIGNED.get(dtype, dtype)


def ids_in_view(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Ids (int64, below 2**32) in `view_dtype(dtype)`, as the bit patterns of `dtype`."""
    if dtype == torch.uint16:                    # ids up to 65535 in int16: wrap explicitly
        t = (t + 2**15).remainder_(2**16).sub_(2**15)
    return t.to(view_dtype(dtype))


def as_signed_bits(value: int, dtype: torch.dtype) -> int:
    """A non-negative id as the value with the same bits in `signed_view`'s dtype."""
    if dtype not in _SIGNED:
        return value
    half = 2 ** (torch.iinfo(_SIGNED[dtype]).bits - 1)
    return (value + half) % (2 * half) - half


@functools.lru_cache(maxsize=64)
def _special(config: MaskingConfig, device: torch.device, dtype: torch.dtype):
    """Per (config, device, dtype): `(table, top, ())` for small special ids, else
    `(ids, None, host_ids)`.

    `table[min(id, top)]` is True where an id may be selected; `ids` (on `device`) and
    `host_ids` (a tuple) are the special ids that the dtype can hold, as bit patterns of
    `signed_view`'s dtype.
    """
    ids = special_ids(config, torch.iinfo(dtype).max)
    top = max(ids, default=0) + 1
    if top <= TABLE_MAX and dtype not in _SIGNED:
        table = torch.ones(top + 1, dtype=torch.bool)   # ids above `top` share table[top]
        table[ids] = False
        return table.to(device), top, ()
    host = tuple(as_signed_bits(t, dtype) for t in ids)
    return torch.tensor(host, dtype=_SIGNED.get(dtype, dtype), device=device), None, host


def eligible_mask(x: torch.Tensor, config: MaskingConfig) -> torch.Tensor:
    """True where a position may be selected, in memory bounded by a few bytes a position.

    A table lookup when the special ids are small, else compares with each of them.
    """
    special, top, host_ids = _special(config, x.device, x.dtype)
    if top is not None:
        if top < torch.iinfo(x.dtype).max:
            x = x.clamp(max=top)
        # small dtypes must be widened: indexing with uint8 would mean a boolean mask
        return special[x if x.dtype in (torch.int32, torch.int64) else x.long()]
    v = signed_view(x)
    if special.numel() > _MAX_COMPARES:
        return torch.isin(v, special, invert=True)
    eligible = torch.ones(x.shape, dtype=torch.bool, device=x.device)
    for t in host_ids:
        eligible.logical_and_(v != t)
    return eligible


def shift_past_excluded(t: torch.Tensor, config: MaskingConfig) -> torch.Tensor:
    """Map `t` in `[0, n_random)` to the t-th id not in `random_exclude` (ascending)."""
    for excluded in config.random_exclude:  # sorted: one pass suffices
        t = t + (t >= excluded).to(t.dtype)
    return t


def check_rows(x: torch.Tensor, row_keys, config: MaskingConfig, *,
               check_ids: bool = True) -> torch.Tensor:
    """Check a padded batch masked one key per row, and return the keys.

    Args:
        x: token ids `[batch, seq]`.
        row_keys: key data `[batch, 2]`: int64 uint32 values, uint32, or int32 bit patterns.

    Returns:
        int64 `[batch, 2]` holding the keys' uint32 words, on `x`'s device.

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    check_input(x, config, check_ids=check_ids)
    if x.dim() != 2:
        raise ValueError(f"x must be a padded batch [batch, seq], got shape {tuple(x.shape)}")
    keys = torch.as_tensor(row_keys, device=x.device)
    if tuple(keys.shape) != (x.shape[0], 2):
        raise ValueError(f"row_keys must have shape {(x.shape[0], 2)}, "
                         f"got {tuple(keys.shape)}")
    if keys.dtype in (torch.int32, torch.uint32):
        keys = keys.view(torch.int32).to(torch.int64)
    return keys.to(torch.int64) & 0xFFFFFFFF                             # [batch, 2]
