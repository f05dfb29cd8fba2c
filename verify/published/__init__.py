"""Published maskers (the registry's `labml`, `hf-torch`, `hf-numpy`) behind the module
description's contract, unchanged in what they do.

Every factory here takes the module description's constructor keywords (`padding_token`,
`mask_token`, `no_mask_tokens`, `n_tokens`, `masking_prob`, `randomize_prob`,
`no_change_prob`) and returns a callable on a torch long tensor `[seq_len, batch]` that
returns `(x_masked, y)` with `y == padding_token` where nothing was selected: the published
labml module's own contract, so `python -m verify.stats --masker MODULE:ATTR` checks them as it
would any third-party masker.

* labml's `MLM` (the `labml-nn` package) already has that contract:
  `labml_nn.transformers.mlm:MLM` is used as it is.
* The audited maskers (docs/conformance.md, "The audit"), one module each: `megatron`
  (Megatron-core's own code), `keras_hub` (Keras Hub's own code), `google_bert` and `fairseq`
  (re-implemented from the published sources, labelled so); `columns` is what they share.
* Hugging Face's `DataCollatorForLanguageModeling` masks `[batch, seq]` with `-100` labels and
  learns the special ids, the `[MASK]` id and the vocabulary size from a tokenizer. The adapters
  give it a real `PreTrainedTokenizerFast` whose vocabulary has exactly `n_tokens` ids, with
  `[PAD]`, `[MASK]` and the `no_mask_tokens` as its special tokens, hand it the transposed view
  of the caller's tensor (so that its in-place writes reach the caller, as they would in a
  pipeline), and map its `-100` labels to `padding_token`. The collator runs on the CPU, as it
  does in a DataLoader worker.
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

__all__ = ["collator", "hf_tokenizer", "hf_torch", "hf_numpy"]


def hf_tokenizer(config: MaskingConfig):
    """A `PreTrainedTokenizerFast` over `n_tokens` word ids whose special ids are exactly
    `padding_token`, `mask_token` and `no_mask_tokens` (those below `n_tokens`)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    names = {i: f"tok{i}" for i in range(config.n_tokens)}
    extra = [t for t in config.no_mask_tokens if t < config.n_tokens]
    for t in extra:
        names[t] = f"[SPECIAL{t}]"
    for token, name in ((config.padding_token, "[PAD]"), (config.mask_token, "[MASK]")):
        if token >= config.n_tokens:
            raise ValueError(f"Hugging Face's collator needs {name} inside the vocabulary: "
                             f"{name} = {token} but n_tokens = {config.n_tokens}")
        names[token] = name
    words = Tokenizer(WordLevel({name: i for i, name in names.items()}))
    tok = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="[PAD]",
                                  mask_token="[MASK]",
                                  additional_special_tokens=[names[t] for t in extra])
    assert len(tok) == config.n_tokens and tok.mask_token_id == config.mask_token
    return tok


def collator(return_tensors: str, config: MaskingConfig):
    from transformers import DataCollatorForLanguageModeling
    return DataCollatorForLanguageModeling(
        tokenizer=hf_tokenizer(config), mlm_probability=config.masking_prob,
        mask_replace_prob=config.mask_token_prob, random_replace_prob=config.randomize_prob,
        return_tensors=return_tensors)


def hf_torch(**kwargs):
    """`DataCollatorForLanguageModeling.torch_mask_tokens` as a `[seq_len, batch]` masker.

    Seeded, like any `MODULE:ATTR` masker, by `torch.manual_seed` (it draws from torch's
    global generator).
    """
    import torch
    config = MaskingConfig(**kwargs)
    hf = collator("pt", config)

    def mask(x: torch.Tensor):
        device = x.device
        inputs = x.T if device.type == "cpu" else x.T.cpu()            # [batch, seq_len]
        x_masked, labels = hf.torch_mask_tokens(inputs)
        y = labels.masked_fill(labels == -100, config.padding_token)
        return x_masked.T.to(device), y.T.to(device)

    return mask


def hf_numpy(**kwargs):
    """`DataCollatorForLanguageModeling.numpy_mask_tokens` as a `[seq_len, batch]` masker.

    Its generator is reseeded before each call from torch's global generator (through the
    collator's own `generator` attribute), so `torch.manual_seed` seeds it like the others.
    """
    import torch
    config = MaskingConfig(**kwargs)
    hf = collator("np", config)

    def mask(x: torch.Tensor):
        device = x.device
        seed = int(torch.randint(0, 2**62, (1,)))
        hf.generator = np.random.default_rng(seed)
        inputs = (x if device.type == "cpu" else x.cpu()).numpy().T    # [batch, seq_len] view
        x_masked, labels = hf.numpy_mask_tokens(inputs)
        y = np.where(labels == -100, config.padding_token, labels)
        return (torch.from_numpy(np.ascontiguousarray(x_masked.T)).to(device),
                torch.from_numpy(np.ascontiguousarray(y.T)).to(device))

    return mask
