"""The audited maskers: the published masking code people train with, behind the gates'
plug-in protocols (`verify.registry`), each run as published wherever its package installs
from PyPI, else re-implemented from the published source and labelled so (docs/conformance.md).

* `megatron`: NVIDIA Megatron-core's `MaskedWordPieceDataset` (the package's own code).
* `keras_hub`: Keras Hub's `MaskedLMMaskGenerator` (the package's own code, Python path).
* `google_bert`: Google BERT's `create_pretraining_data.py` (re-implemented).
* `fairseq`: fairseq's `MaskTokensDataset` (re-implemented unless the package imports).

`columns` holds what they share: a `[seq_len, batch]` torch batch seen as the unpadded
sequences these libraries mask, one at a time, and the numbers they draw from, seeded from the
gate's seed.
"""
