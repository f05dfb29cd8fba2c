"""Gate your own masker in CI: the harness checks it against the BERT masking contract.

Run with `pytest examples/`. It fails, listing expected against observed, if the masker
drifts: a wrong split, a biased random id, masks repeated across calls, a mutated input...
"""

from examples.my_masker import MyMasker
from mlm_ref import MaskingConfig
from verify import assert_masker_conforms


def test_my_masker_does_what_bert_prescribes():
    kw = dict(padding_token=0, mask_token=103, no_mask_tokens=(101, 102), n_tokens=30522)
    assert_masker_conforms(MyMasker(**kw), MaskingConfig(**kw), tokens=2_000_000)
