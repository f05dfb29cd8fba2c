"""mlm_ref: the masking contract and its readable NumPy reference implementation.

Imports nothing but NumPy. `MaskingConfig` is shared by every backend, and so are the input and
key rules (`mlm_ref.validation`, `mlm_ref.keys`); `MLM` and `mask_tokens` are the NumPy masker
(see `mlm_ref.mlm` for the algorithm explained in prose). Whole-word masking is the same call
with `word_ids=` (`mlm_ref.wwm`); `mlm_ref.words` builds word ids from a tokenizer's output.
"""

from .config import MaskingConfig, OutcomeProbs
from .exact import mask_tokens_exact
from .mlm import MLM, mask_tokens
from .validation import check_input
from .words import word_ids_from_pieces, word_ids_from_tokenizer
from .wwm import mask_words, mask_words_exact

__all__ = ["MLM", "MaskingConfig", "OutcomeProbs", "check_input", "mask_tokens",
           "mask_tokens_exact", "mask_words", "mask_words_exact", "word_ids_from_pieces",
           "word_ids_from_tokenizer"]
