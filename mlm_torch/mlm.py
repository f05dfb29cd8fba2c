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

from mlm_ref.config import MaskerBase, MaskingConfig
from mlm_ref.validation import check_no_compat

from . import fused
from .cpu import mask_tokens_cpu
from .exact import mask_tokens_exact
from .tensors import (as_signed_bits, check_generator, check_input, eligible_mask,
                      ids_in_view, shift_past_excluded, signed_view,
                      view_dtype)
from .wwm import mask_words, mask_words_exact

__all__ = ["MLM", "mask_tokens", "mask_tokens_torch"]


@functools.lru_cache(maxsize=64)
def _constants(config: MaskingConfig, device: torch.device, dtype: torch.dtype):
    """Per (config, device, dtype): the thresholds and the two ids as 0-dim tensors.

    Cached so that a call creates no small host tensors; 0-dim float32 thresholds compare
    exactly as Python floats would (rounded to float32), without a conversion on every call.
    The ids are in `signed_view`'s dtype, as bit patterns.
    """
    p, r, n = config.masking_prob, config.randomize_prob, config.no_change_prob
    f32 = functools.partial(torch.tensor, dtype=torch.float32, device=device)
    view = view_dtype(dtype)
    ids = functools.partial(torch.tensor, dtype=view, device=device)
    return (f32(p), f32(p * r), f32(p * (r + n)),
            ids(as_signed_bits(config.mask_token, dtype)),
            ids(as_signed_bits(config.padding_token, dtype)))


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
    check_generator(generator, x)
    if x.is_cpu:
        return mask_tokens_cpu(x, config, generator=generator)
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
    p, p_random, p_random_or_keep, mask, padding = _constants(config, x.device, x.dtype)
    v = signed_view(x)                                                   # same bits as x
    u = torch.rand(x.shape, generator=generator, device=x.device)        # float32, like x
    selected = eligible_mask(x, config).logical_and_(torch.lt(u, p))     # bool, like x
    scratch = torch.empty_like(selected)
    x_masked = torch.where(torch.ge(u, p_random_or_keep, out=scratch).logical_and_(selected),
                           mask, v)
    to_random = torch.lt(u, p_random, out=scratch).logical_and_(selected)
    t = torch.randint(0, config.n_random, x.shape, generator=generator, device=x.device,
                      dtype=torch.int64)                                 # like x
    t = ids_in_view(shift_past_excluded(t, config), x.dtype)
    x_masked = torch.where(to_random, t, x_masked)
    return x_masked.view(x.dtype), torch.where(selected, v, padding).view(x.dtype)


class MLM(MaskerBase):
    """BERT's masked-language-model masking (PyTorch, CPU and CUDA).

    Args:
        **params: the masking parameters of `mlm_ref.config.MaskerBase`.
        check_ids: check for negative ids on every call (one host read-back on CUDA).

    Call it as `x_masked, y = mlm(x, generator=g)`; `key=` selects the exact mode, whose masks
    are bit-identical across the NumPy, PyTorch and JAX backends. `word_ids=w` masks whole
    words (`mlm_torch.wwm`), in either mode.
    """

    def __init__(self, *, check_ids: bool = True, **params):
        super().__init__(**params)
        self.check_ids = bool(check_ids)

    def __call__(self, x: torch.Tensor, *, word_ids=None, generator=None, key=None):
        """Mask `x`; see `mask_tokens` (native), `mask_tokens_exact` (`key=`) and, with
        `word_ids=` (a tensor shaped like `x`), `mlm_torch.wwm`.

        Raises:
            ValueError: both `generator=` and `key=`; a whole-word option without `word_ids`.
        """
        if key is not None and generator is not None:
            raise ValueError("pass either generator= (native mode) or key= (exact mode), "
                             "not both")
        if word_ids is not None:
            if key is not None:
                return mask_words_exact(x, word_ids, self.config, key=key,
                                        check_ids=self.check_ids)
            return mask_words(x, word_ids, self.config, generator=generator,
                              check_ids=self.check_ids)
        check_no_compat(self.config)
        if key is not None:
            return mask_tokens_exact(x, self.config, key=key, check_ids=self.check_ids)
        return mask_tokens(x, self.config, generator=generator, check_ids=self.check_ids)

    def __repr__(self) -> str:
        return f"mlm_torch.MLM({self.config}, check_ids={self.check_ids})"
