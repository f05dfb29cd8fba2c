"""Masked-language-model masking in PyTorch, for CPU and CUDA tensors.

The algorithm is the one taught in `mlm_ref.mlm`. On a GPU it runs inside the training step:
every operation is elementwise over the whole batch (one fused Triton kernel when Triton is
installed), with no `nonzero`, no `.item()`, no boolean-index assignment whose size depends on
the data, so nothing waits for the device. The one exception is the optional check for
negative ids (`check_ids=True`, the default), which reads one boolean back; turn it off in the
hot loop once your data is trusted. On the CPU, where nothing waits anyway, `mlm_torch.cpu`
does the work on the ~15% of positions that can be selected.
"""

from __future__ import annotations

import functools

import torch

from mlm_ref.config import MaskingConfig

from .cpu import eligibility_table, mask_tokens_cpu

__all__ = ["MLM", "mask_tokens", "check_input"]

_INTEGER_DTYPES = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                   torch.uint16, torch.uint32, torch.uint64}


def check_input(x, config: MaskingConfig, *, check_ids: bool = True) -> torch.Tensor:
    """Check `x` against the contract's input rules and return it.

    Raises:
        TypeError: not a tensor, not an integer dtype, or a dtype too small for the ids.
        ValueError: rank 0, or (with `check_ids`) negative token ids.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of token ids, got {type(x).__name__}")
    if x.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"x must hold integer token ids, got dtype {x.dtype}")
    if x.dim() == 0:
        raise ValueError("x must have rank >= 1 (documented layout [seq_len, batch]), "
                         "got a scalar")
    if torch.iinfo(x.dtype).max < config.max_output_id:
        raise TypeError(f"x dtype {x.dtype} cannot hold token id {config.max_output_id} "
                        f"(n_tokens={config.n_tokens}, mask_token={config.mask_token}, "
                        f"padding_token={config.padding_token})")
    if check_ids and x.is_signed() and x.numel() and bool((x < 0).any()):
        raise ValueError(f"x must hold non-negative token ids, found {int(x.min())}")
    return x


def _check_generator(generator, x: torch.Tensor):
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, "
                        f"got {type(generator).__name__}")
    g, d = generator.device, x.device
    if g.type != d.type or (g.type != "cpu" and (g.index or 0) != (d.index or 0)):
        raise ValueError(f"generator is on {g} but x is on {d}; create it with "
                         f"torch.Generator(device=x.device)")


@functools.lru_cache(maxsize=64)
def _constants(config: MaskingConfig, device: torch.device, dtype: torch.dtype):
    """Per (config, device, dtype): the eligibility table and the scalars as 0-dim tensors.

    Cached so that a call creates no small host tensors; 0-dim float32 thresholds compare
    exactly as Python floats would (rounded to float32), without a conversion on every call.
    """
    table, top = eligibility_table(config)
    p, r, n = config.masking_prob, config.randomize_prob, config.no_change_prob
    f32 = functools.partial(torch.tensor, dtype=torch.float32, device=device)
    ids = functools.partial(torch.tensor, dtype=dtype, device=device)
    return (torch.tensor(table, device=device), top, f32(p), f32(p * r), f32(p * (r + n)),
            ids(config.mask_token), ids(config.padding_token))


def eligible_mask(x: torch.Tensor, config: MaskingConfig) -> torch.Tensor:
    """True where a position may be selected: one table lookup, whatever the special ids."""
    table, top = _constants(config, x.device, x.dtype)[:2]
    if top < torch.iinfo(x.dtype).max:
        x = x.clamp(max=top)
    # small dtypes must be widened: indexing with uint8 would mean a boolean mask
    return table[x if x.dtype in (torch.int32, torch.int64) else x.long()]


def shift_past_excluded(t: torch.Tensor, config: MaskingConfig) -> torch.Tensor:
    """Map `t` in `[0, n_random)` to the t-th id not in `random_exclude` (ascending)."""
    for excluded in config.random_exclude:  # sorted: one pass suffices
        t = t + (t >= excluded).to(t.dtype)
    return t


def mask_tokens(x: torch.Tensor, config: MaskingConfig, *, generator=None,
                check_ids: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch of token ids with PyTorch's generator (the native path).

    Three formulations, one per kind of device, each with its own random stream: on the CPU,
    `mlm_torch.cpu` (few random bits, work on the ~15% candidates only); on CUDA with Triton
    installed, one fused kernel (`mlm_torch.fused`) whose counter-based draws are seeded from
    `generator`; on CUDA without Triton, `mask_tokens_torch` (torch ops, full-size).

    Args:
        x: integer tensor of token ids, rank >= 1, on any device; layout `[seq_len, batch]`.
        config: the masking parameters.
        generator: a `torch.Generator` on `x`'s device, or None for the global one.
        check_ids: raise on negative ids (reads one boolean back from the device).

    Returns:
        `(x_masked, y)`: new tensors with the dtype, shape and device of `x`.
    """
    check_input(x, config, check_ids=check_ids)
    _check_generator(generator, x)
    if x.device.type == "cpu":
        return mask_tokens_cpu(x, config, generator=generator)
    from . import fused  # light: imports Triton only when a CUDA tensor asks for it
    if fused.use_fused(x):
        return fused.mask_tokens_native(x, config, generator=generator)
    return mask_tokens_torch(x, config, generator=generator)


def mask_tokens_torch(x: torch.Tensor, config: MaskingConfig, *, generator=None):
    """The native path in torch ops alone, for a GPU without Triton (no input checks).

    Every buffer is full-size and nothing is read back, so nothing waits for the device. One
    float32 uniform per position decides both selection and category: given u < p, u / p is
    again uniform on [0, 1), so thresholds at p*r and p*(r+n) split the selected positions
    into exclusive categories with probabilities r, n and 1-r-n. One draw instead of two.
    """
    _, _, p, p_random, p_random_or_keep, mask, padding = _constants(config, x.device, x.dtype)
    u = torch.rand(x.shape, generator=generator, device=x.device)        # float32, like x
    selected = eligible_mask(x, config).logical_and_(torch.lt(u, p))     # bool, like x
    scratch = torch.empty_like(selected)
    x_masked = torch.where(torch.ge(u, p_random_or_keep, out=scratch).logical_and_(selected),
                           mask, x)
    to_random = torch.lt(u, p_random, out=scratch).logical_and_(selected)
    t = torch.randint(0, config.n_random, x.shape, generator=generator, device=x.device,
                      dtype=torch.int64)                                 # like x
    x_masked = torch.where(to_random, shift_past_excluded(t, config).to(x.dtype), x_masked)
    return x_masked, torch.where(selected, x, padding)


class MLM:
    """BERT's masked-language-model masking (PyTorch, CPU and CUDA).

    Args:
        padding_token: id of `[PAD]`; never masked, and the label of unselected positions.
        mask_token: id of `[MASK]`.
        no_mask_tokens: ids never masked, such as `[CLS]` and `[SEP]`.
        n_tokens: vocabulary size, the range of random replacements.
        masking_prob: probability that an eligible token is selected (0.15).
        randomize_prob: probability that a selected token becomes a random token (0.1).
        no_change_prob: probability that a selected token is left unchanged (0.1).
        random_exclude: ids never drawn as random replacements (none by default).
        check_ids: check for negative ids on every call (one host read-back on CUDA).

    Call it as `x_masked, y = mlm(x, generator=g)`; `key=` selects the exact mode, whose masks
    are bit-identical across the NumPy, PyTorch and JAX backends.
    """

    def __init__(self, *, padding_token: int, mask_token: int, no_mask_tokens=(),
                 n_tokens: int, masking_prob: float = 0.15, randomize_prob: float = 0.1,
                 no_change_prob: float = 0.1, random_exclude=(), check_ids: bool = True):
        self.config = MaskingConfig(
            padding_token=padding_token, mask_token=mask_token, no_mask_tokens=no_mask_tokens,
            n_tokens=n_tokens, masking_prob=masking_prob, randomize_prob=randomize_prob,
            no_change_prob=no_change_prob, random_exclude=random_exclude)
        self.check_ids = bool(check_ids)

    def __call__(self, x: torch.Tensor, *, generator=None, key=None):
        """Mask `x`; see `mask_tokens` (native) and `mask_tokens_exact` (`key=`)."""
        if key is not None:
            if generator is not None:
                raise ValueError("pass either generator= (native mode) or key= (exact mode), "
                                 "not both")
            from .exact import mask_tokens_exact
            return mask_tokens_exact(x, self.config, key=key, check_ids=self.check_ids)
        return mask_tokens(x, self.config, generator=generator, check_ids=self.check_ids)

    def __repr__(self) -> str:
        return f"mlm_torch.MLM({self.config}, check_ids={self.check_ids})"
