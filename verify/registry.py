"""The one registry of maskers: every masker this package knows, under one name everywhere.

The harness (`verify.stats`), the benchmark (`verify.bench`), the conformance page
(`verify.conformance`) and the plots all read this table; none keeps a list of its own. A masker
is named here once (`numpy`, `torch`, `jax`, `labml`, `hf-torch`, `hf-numpy`) and that name is
what the report, the benchmark JSON and the docs print.

Each entry says how to build the masker from a `MaskingConfig` (`factory`, `MODULE:ATTR`), which
framework it runs in, a label for people, and what must be installed for it to run. Nothing is
imported until a masker is built, so reading the registry is free.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util

__all__ = ["MaskerInfo", "REGISTRY", "WWM_REGISTRY", "OURS", "PUBLISHED", "BERT", "get", "load",
           "split_spec", "attribute"]

# BERT-base's special ids and vocabulary: what the published maskers are used with.
BERT = dict(padding_token=0, mask_token=103, no_mask_tokens=(101, 102), n_tokens=30522)


@dataclasses.dataclass(frozen=True)
class MaskerInfo:
    """One masker.

    Args:
        name: the one name used on the command line, in reports and in benchmark results.
        framework: `numpy`, `torch` or `jax`: the arrays it takes.
        factory: `MODULE:ATTR`, called with the module description's keywords (ours also take
            `random_exclude`).
        label: who wrote it and what it is, for people.
        needs: importable packages it needs (besides NumPy).
        ours: whether this project implements it (ours are seeded explicitly; the published
            ones draw from torch's global generator, seeded by `torch.manual_seed`).
    """

    name: str
    framework: str
    factory: str
    label: str
    needs: tuple[str, ...] = ()
    ours: bool = False

    def missing(self) -> list[str]:
        """The packages in `needs` that are not installed."""
        return [m for m in self.needs if importlib.util.find_spec(m) is None]

    def available(self) -> bool:
        return not self.missing()


REGISTRY: dict[str, MaskerInfo] = {m.name: m for m in (
    MaskerInfo("numpy", "numpy", "mlm_ref:MLM", "ours: `mlm_ref.MLM` (NumPy reference)",
               ours=True),
    MaskerInfo("torch", "torch", "mlm_torch:MLM", "ours: `mlm_torch.MLM` (PyTorch)",
               ("torch",), ours=True),
    MaskerInfo("jax", "jax", "mlm_jax:MLM", "ours: `mlm_jax.MLM` (JAX)", ("jax",), ours=True),
    MaskerInfo("labml", "torch", "labml_nn.transformers.mlm:MLM",
               "labml-nn's `labml_nn.transformers.mlm.MLM`, the widely copied published module",
               ("torch", "labml_nn")),
    MaskerInfo("hf-torch", "torch", "verify.published:hf_torch",
               "Hugging Face `DataCollatorForLanguageModeling.torch_mask_tokens`",
               ("torch", "transformers")),
    MaskerInfo("hf-numpy", "numpy", "verify.published:hf_numpy",
               "Hugging Face `DataCollatorForLanguageModeling.numpy_mask_tokens`",
               ("torch", "transformers")),
    # The audit (docs/conformance.md): published maskers in wide use, `verify.audit`.
    MaskerInfo("megatron", "torch", "verify.published.megatron:megatron",
               "NVIDIA Megatron-core's BERT masking (`MaskedWordPieceDataset`, the package's "
               "own code, `pretrain_bert.py` settings)", ("torch", "megatron.core")),
    MaskerInfo("keras-hub", "torch", "verify.published.keras_hub:keras_hub",
               "Keras Hub's `MaskedLMMaskGenerator` with its defaults (the package's own code, "
               "Python path)", ("torch", "keras_hub")),
    MaskerInfo("keras-hub-configured", "torch", "verify.published.keras_hub:keras_hub_configured",
               "Keras Hub's `MaskedLMMaskGenerator` told the special ids "
               "(`unselectable_token_ids`)", ("torch", "keras_hub")),
    MaskerInfo("keras-hub-tf", "torch", "verify.published.keras_hub:keras_hub_tf",
               "Keras Hub's `MaskedLMMaskGenerator` on its TF path (TensorFlow Text's "
               "`RandomItemSelector`, as inside `tf.data`), told the special ids",
               ("torch", "keras_hub", "tensorflow_text")),
    MaskerInfo("google-bert", "torch", "verify.published.google_bert:google_bert",
               "Google BERT's `create_pretraining_data.py` masking (re-implemented from the "
               "published source)", ("torch",)),
    MaskerInfo("fairseq", "torch", "verify.published.fairseq:fairseq",
               "fairseq's `MaskTokensDataset` (re-implemented from the published source)",
               ("torch",)),
)}
# Whole-word maskers (`python -m verify.stats --wwm`): ours take `word_ids=` beside the ids;
# a published one is a factory returning `fn(x, word_ids=w, seed=s)` on NumPy arrays
# (`verify.words.wwm_adapters`). Kept apart from REGISTRY, whose maskers are token-level.
WWM_REGISTRY: dict[str, MaskerInfo] = {m.name: m for m in (
    *(REGISTRY[n] for n in ("numpy", "torch", "jax")),
    MaskerInfo("hf-wwm", "torch", "verify.published.whole_word:hf_wwm",
               "Hugging Face `DataCollatorForLanguageModeling(whole_word_mask=True)`",
               ("torch", "transformers")),
    MaskerInfo("megatron-wwm", "numpy", "verify.published.megatron:megatron_wwm",
               "NVIDIA Megatron-core's BERT masking with whole words from `##` pieces (the "
               "package's own code)", ("torch", "megatron.core")),
    MaskerInfo("google-bert-wwm", "numpy", "verify.published.google_bert:google_bert_wwm",
               "Google BERT's `create_pretraining_data.py --do_whole_word_mask` "
               "(re-implemented from the published source)"),
)}
OURS = tuple(n for n, m in REGISTRY.items() if m.ours)
PUBLISHED = tuple(n for n, m in REGISTRY.items() if not m.ours)


def get(name: str) -> MaskerInfo:
    """The entry called `name`.

    Raises:
        ValueError: no masker has that name (the message lists them).
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown masker {name!r}: choose from {', '.join(REGISTRY)} or give "
                         f"MODULE:ATTR") from None


def split_spec(spec) -> tuple[str, str]:
    """`(module, attr)` of `MODULE:ATTR`.

    Raises:
        ValueError: `spec` is not `MODULE:ATTR` (no module, no attribute, or not a string).
    """
    module, _, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not module or not attr:
        raise ValueError(f"expected MODULE:ATTR, got {spec!r}")
    return module, attr


def attribute(obj, module: str, attr: str):
    """`obj.attr` for a dotted `attr` (`obj` is the imported `module`).

    Raises:
        ValueError: an attribute on the way does not exist.
    """
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load(spec: str):
    """The object named by `MODULE:ATTR` (ATTR may be dotted). `verify.engine.resolve.load`
    is the same lookup (`split_spec`, `attribute`) with the user's import under the guard.

    Raises:
        ValueError: `spec` is not `MODULE:ATTR`, or the attribute does not exist.
        ImportError: the module cannot be imported (its own error is chained).
    """
    module, attr = split_spec(spec)
    return attribute(importlib.import_module(module), module, attr)
