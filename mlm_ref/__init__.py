"""mlm_ref: the masking contract and its readable NumPy reference implementation.

Imports nothing but NumPy. `MaskingConfig` is shared by every backend; `MLM` and `mask_tokens`
are the NumPy masker (see `mlm_ref.mlm` for the algorithm explained in prose).
"""

from .config import MaskingConfig, OutcomeProbs
from .exact import mask_tokens_exact
from .mlm import MLM, check_input, mask_tokens

__all__ = ["MLM", "MaskingConfig", "OutcomeProbs", "check_input", "mask_tokens",
           "mask_tokens_exact"]
