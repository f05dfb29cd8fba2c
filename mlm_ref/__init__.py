"""mlm_ref: the masking contract and its readable NumPy reference implementation.

Imports nothing but NumPy. `MaskingConfig` is shared by every backend; `MLM` and `mask_tokens`
are the NumPy masker (see `mlm_ref.mlm` for the algorithm explained in prose).
"""

from .config import MaskingConfig, OutcomeProbs
from .mlm import MLM, check_input, mask_tokens


def mask_tokens_exact(x, config, *, key):
    """Exact mode (bit-identical across backends); see `mlm_ref.exact`."""
    from .exact import mask_tokens_exact as _exact
    return _exact(x, config, key=key)


__all__ = ["MLM", "MaskingConfig", "OutcomeProbs", "check_input", "mask_tokens",
           "mask_tokens_exact"]
