"""Keras Hub's `MaskedLMMaskGenerator`, run as published (`pip install keras-hub`).

The layer (keras_hub.layers.MaskedLMMaskGenerator) has two paths. Called eagerly, outside a
`tf.data` pipeline, it takes its Python path: every position whose id is not in
`unselectable_token_ids` is selected by its own Bernoulli(`mask_selection_rate`) draw from
Python's global `random`, then replaced by `[MASK]` with `mask_token_rate`, by a random id
over the **whole vocabulary** (special ids included) with `random_token_rate`, else kept.
Inside `tf.data` it runs TensorFlow Text's `RandomItemSelector` and `MaskValuesChooser`
instead: each row's selectable positions are shuffled and the first `ceil(rate * count)` kept
(capped by `mask_selection_length`), a fixed count; `keras_hub_tf` runs that path (the layer's
`_call_tf`, what `tf.data` calls), seeded by `tf.random.set_seed`. The default
`unselectable_token_ids=[0]` leaves `[CLS]` and `[SEP]` selectable: `keras_hub` audits the defaults a user gets,
`keras_hub_configured` the layer told the special ids (`unselectable_token_ids` = padding,
`no_mask_tokens` and `[MASK]`), which is how to make it conform.

The gate's batch is handed over as it is, padding included (padding is id 0 in BERT's
vocabulary, unselectable by default), as the layer receives packed sequences in Keras Hub's
preprocessors; Python's `random` is seeded from torch's global generator before each call.
"""

from __future__ import annotations

import random

import numpy as np

from mlm_ref.config import MaskingConfig

from .columns import call_seed, like, to_numpy

__all__ = ["keras_hub", "keras_hub_configured", "keras_hub_tf"]


def _generator(config: MaskingConfig, unselectable):
    from keras_hub.layers import MaskedLMMaskGenerator
    return MaskedLMMaskGenerator(
        vocabulary_size=config.n_tokens, mask_selection_rate=config.masking_prob,
        mask_token_id=config.mask_token, unselectable_token_ids=list(unselectable),
        mask_token_rate=config.mask_token_prob, random_token_rate=config.randomize_prob)


def _masker(config: MaskingConfig, layer, tf_path: bool = False):
    def mask(x):
        xn = to_numpy(x)                                        # [seq_len, batch]
        seed = call_seed()
        if tf_path:
            import tensorflow as tf
            tf.random.set_seed(seed)
            result = layer._call_tf(tf.constant(xn.T))          # what tf.data runs
            result = {k: _listed(v) for k, v in result.items()}
        else:
            random.seed(seed)
            result = layer(xn.T.tolist())                       # its Python path, rows
        out = np.asarray(result["token_ids"], dtype=np.int64).T
        y = np.full_like(xn, config.padding_token)
        positions = np.asarray(result["mask_positions"], dtype=object)
        for row, cols in enumerate(positions):                  # ragged: one list per row
            cols = np.asarray(cols, dtype=np.int64)
            y[cols, row] = xn[cols, row]
        return like(out, x), like(y, x)

    return mask


def _listed(value):
    """A TF tensor (dense or ragged) as NumPy or nested lists; anything else as it is."""
    if hasattr(value, "to_list"):
        return value.to_list()
    return value.numpy() if hasattr(value, "numpy") else value


def keras_hub(**kwargs):
    """The layer with its defaults (`unselectable_token_ids=[0]`)."""
    config = MaskingConfig(**kwargs)
    return _masker(config, _generator(config, [0]))


def keras_hub_configured(**kwargs):
    """The layer told the special ids: padding, `no_mask_tokens` and `[MASK]` unselectable."""
    config = MaskingConfig(**kwargs)
    return _masker(config, _generator(config, _specials(config)))


def keras_hub_tf(**kwargs):
    """The layer's TF path (TensorFlow Text's selector), told the special ids."""
    config = MaskingConfig(**kwargs)
    return _masker(config, _generator(config, _specials(config)), tf_path=True)


def _specials(config: MaskingConfig) -> list[int]:
    return [config.padding_token, *config.no_mask_tokens, config.mask_token]
