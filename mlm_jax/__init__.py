"""mlm_jax: BERT masked-language-model masking in JAX (pure, jit-compiled, keyword-only key).

Never imports PyTorch. Its draws are `jax.random`'s, which define the exact mode that the NumPy
and PyTorch backends reproduce bit for bit. The input and key rules are `mlm_ref`'s
(`mlm_ref.validation`, `mlm_ref.keys`), applied to JAX arrays.
"""

from mlm_ref.config import MaskingConfig

from .keys import as_key, derive_key
from .mlm import MLM, check_input, mask_tokens, mask_tokens_jit
from .wwm import mask_words, mask_words_jit

__all__ = ["MLM", "MaskingConfig", "as_key", "check_input", "derive_key", "mask_tokens",
           "mask_tokens_jit", "mask_words", "mask_words_jit"]
