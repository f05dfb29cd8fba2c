"""mlm_jax: BERT masked-language-model masking in JAX (pure, jit-compiled, keyword-only key).

Never imports PyTorch. Its draws are `jax.random`'s, which define the exact mode that the NumPy
and PyTorch backends reproduce bit for bit.
"""

from mlm_ref.config import MaskingConfig

from .keys import derive_key
from .mlm import MLM, as_key, check_input, mask_tokens

__all__ = ["MLM", "MaskingConfig", "as_key", "check_input", "derive_key", "mask_tokens"]
