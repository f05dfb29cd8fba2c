"""mlm_torch: BERT masked-language-model masking in PyTorch (CPU and CUDA).

Never imports JAX. `MLM` and `mask_tokens` are the native path (PyTorch's generator);
`mask_tokens_exact` is the exact path, bit-identical to the NumPy and JAX backends. The input
and key rules are `mlm_ref`'s (`mlm_ref.validation`, `mlm_ref.keys`), applied to tensors.
"""

from mlm_ref.config import MaskingConfig

from .exact import mask_tokens_exact
from .mlm import MLM, mask_tokens
from .tensors import check_input
from .wwm import mask_words, mask_words_exact

__all__ = ["MLM", "MaskingConfig", "check_input", "mask_tokens", "mask_tokens_exact",
           "mask_words", "mask_words_exact"]
