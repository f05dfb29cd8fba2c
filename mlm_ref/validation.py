"""The input rules of the contract (docs/contract.md), written once for every backend.

Each rule is a function of plain metadata (a dtype's name, its largest value, a rank, the
smallest id), so the NumPy, PyTorch and JAX backends apply the same rule, with the same
exception type and message, to their own arrays. Each backend keeps only the checks that are
about its own array type (a `torch.Tensor`, a generator's device, JAX's 64-bit mode).

Also here: the argument checks of the threefry ports (shapes, 32-bit words, int32 bounds), which
`mlm_ref.threefry` and `mlm_torch.threefry` share, the rule for NumPy's `rng=` seeds, and
the input rules of `mlm_ref.nsp` (documents of sentences of ids, its parameters).
"""

from __future__ import annotations

import numbers

import numpy as np

from .config import MaskingConfig, non_negative_int

__all__ = ["check_ids_meta", "check_lowest_id", "check_input", "check_seed", "check_shape",
           "check_word", "check_int32", "check_count", "special_ids", "check_word_ids_meta",
           "check_word_ids", "check_no_compat", "as_generator", "check_documents",
           "check_nsp_params"]

MASK32 = 0xFFFFFFFF
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def check_ids_meta(dtype_name: str, *, integer: bool, max_value: int | None, ndim: int,
                   config: MaskingConfig) -> None:
    """Check what can be checked about token ids without reading them.

    Args:
        dtype_name: the dtype as the caller's framework spells it (used in messages).
        integer: whether the dtype is an integer dtype (booleans are not).
        max_value: the dtype's largest value (ignored when `integer` is False).
        ndim: the rank.
        config: the masking parameters.

    Raises:
        TypeError: not an integer dtype, or one too small to hold every id an output may hold.
        ValueError: rank 0.
    """
    if not integer:
        raise TypeError(f"x must hold integer token ids, got dtype {dtype_name}")
    if ndim == 0:
        raise ValueError("x must have rank >= 1 (documented layout [seq_len, batch]), "
                         "got a scalar")
    if max_value < config.max_output_id:
        raise TypeError(f"x dtype {dtype_name} cannot hold token id {config.max_output_id} "
                        f"(n_tokens={config.n_tokens}, mask_token={config.mask_token}, "
                        f"padding_token={config.padding_token})")


def check_lowest_id(lowest: int) -> None:
    """Raise `ValueError` if the smallest token id is negative."""
    if lowest < 0:
        raise ValueError(f"x must hold non-negative token ids, found {lowest}")


def check_input(x, config: MaskingConfig) -> np.ndarray:
    """Return `x` as an ndarray after checking it against the contract's input rules.

    Raises:
        TypeError: not an integer array (booleans included), or a dtype too small for the ids.
        ValueError: rank 0, or negative token ids.
    """
    x = np.asarray(x)
    integer = x.dtype != np.bool_ and np.issubdtype(x.dtype, np.integer)
    check_ids_meta(str(x.dtype), integer=integer,
                   max_value=int(np.iinfo(x.dtype).max) if integer else None,
                   ndim=x.ndim, config=config)
    if x.size and np.issubdtype(x.dtype, np.signedinteger):
        check_lowest_id(int(x.min()))
    return x


def check_word_ids_meta(shape: tuple, x_shape: tuple, *, integer: bool, dtype_name: str,
                        config: MaskingConfig) -> None:
    """Check whole-word masking's `word_ids` against `x` without reading its values.

    Args:
        shape, x_shape: the shapes of `word_ids` and of `x`.
        integer: whether `word_ids` has an integer dtype (booleans are not).
        dtype_name: its dtype as the caller's framework spells it (used in messages).
        config: the masking parameters.

    Raises:
        TypeError: not an integer dtype.
        ValueError: a shape other than `x`'s.
    """
    del config  # every config takes word ids; the argument keeps the rule's signature stable
    if not integer:
        raise TypeError(f"word_ids must hold integer word indices (negative: no word), "
                        f"got dtype {dtype_name}")
    if tuple(shape) != tuple(x_shape):
        raise ValueError(f"word_ids must have x's shape {tuple(x_shape)}, got {tuple(shape)}")


def check_no_compat(config: MaskingConfig) -> None:
    """Refuse a whole-word compatibility option on a call without `word_ids`.

    Without words there is nothing to give one category per word or a word budget to, and
    silently masking tokens instead would be a wrong answer that looks right.

    Raises:
        ValueError: `wwm_category` or `wwm_selection` is not its default.
    """
    if config.wwm_compat:
        raise ValueError(f"wwm_category={config.wwm_category!r} and wwm_selection="
                         f"{config.wwm_selection!r} are whole-word masking options: pass "
                         f"word_ids=, or build the masker without them")


def check_word_ids(word_ids, x: np.ndarray, config: MaskingConfig) -> np.ndarray:
    """`word_ids` as an ndarray after checking it against `x` (NumPy arrays).

    Raises:
        TypeError: not an integer array (booleans included).
        ValueError: not of `x`'s shape.
    """
    if word_ids is None:
        raise TypeError("word_ids is required for whole-word masking")
    w = np.asarray(word_ids)
    integer = w.dtype != np.bool_ and np.issubdtype(w.dtype, np.integer)
    check_word_ids_meta(w.shape, x.shape, integer=integer, dtype_name=str(w.dtype),
                        config=config)
    return w


def special_ids(config: MaskingConfig, max_value: int) -> list[int]:
    """The ineligible ids that a dtype whose largest value is `max_value` can hold.

    Larger ones cannot occur in such an array, and cannot be compared with it without a cast.
    """
    return [t for t in config.ineligible_tokens if t <= max_value]


def check_seed(seed, name: str = "rng") -> int:
    """A seed for a native generator: a non-negative integer (not a bool, not a float).

    Raises:
        TypeError: not an integer (`1.5`, `"0"`, `True`).
        ValueError: negative.
    """
    return non_negative_int(name, seed, "seed")


def as_generator(rng) -> np.random.Generator:
    """A `numpy.random.Generator` from a generator, a non-negative int seed or None.

    Raises:
        TypeError: anything else (`1.5`, `"0"`, `True`).
        ValueError: a negative seed.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    try:
        return np.random.default_rng(check_seed(rng, "rng"))
    except TypeError:
        raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, "
                        f"got {type(rng).__name__}") from None


def check_shape(shape) -> tuple[int, ...]:
    """`shape` as a tuple of non-negative ints; like JAX, a sequence is required, not an int."""
    if isinstance(shape, (numbers.Integral, str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}")
    shape = tuple(shape)
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_))
               and d >= 0 for d in shape):
        raise ValueError(f"shape must hold non-negative ints, got {shape!r}")
    return tuple(int(d) for d in shape)


def _integer_in(value, name: str, low: int, high: int | None, what: str) -> int:
    """`value` as an int in `[low, high]` (no upper bound when `high` is None)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_word(value, name: str) -> int:
    """`value` as an int in [0, 2**32) (JAX refuses other Python ints with OverflowError)."""
    return _integer_in(value, name, 0, MASK32, "an integer in [0, 2**32)")


def check_int32(value, name: str) -> int:
    """`value` as an int in the int32 range (`randint`'s bounds in JAX's 32-bit mode)."""
    return _integer_in(value, name, INT32_MIN, INT32_MAX, "an int in the int32 range")


def check_count(value, name: str) -> int:
    """`value` as a non-negative int (e.g. `split`'s number of keys)."""
    return _integer_in(value, name, 0, None, "a non-negative int")


_INT64_MAX = int(np.iinfo(np.int64).max)


def check_documents(documents) -> list[list[np.ndarray]]:
    """The documents of `mlm_ref.nsp` as lists of non-empty int64 sentences (empty sentences
    dropped; an empty document stays as an empty list, so indices keep their meaning).

    Raises:
        TypeError: not a list of lists of lists of integer ids (bools included).
        ValueError: a negative id, an id past int64 (a uint64 from 2**63 on), or a sentence
            that is not flat.
    """
    if isinstance(documents, (str, bytes, np.ndarray)) or not hasattr(documents, "__len__"):
        raise TypeError("documents must be a list of documents, each a list of sentences, "
                        f"each a list of token ids; got {type(documents).__name__}")
    out = []
    for d, doc in enumerate(documents):
        if isinstance(doc, (str, bytes)) or not hasattr(doc, "__len__"):
            raise TypeError(f"document {d} must be a list of sentences, got {type(doc).__name__}")
        sentences = _clean_document(doc)
        out.append(_document_sentences(d, doc) if sentences is None else sentences)
    return out


def _clean_document(doc) -> list[np.ndarray] | None:
    """A document's sentences when it breaks no rule, checked with one minimum for the whole
    document rather than one per sentence (most of the time of checking); None when it may
    break one: then `_document_sentences` goes sentence by sentence and raises the first."""
    try:
        arrays = [ids for ids in map(np.asarray, doc) if ids.size]
    except Exception:  # noqa: BLE001 (raised again, in its place, sentence by sentence)
        return None
    if not all(ids.ndim == 1 and ids.dtype.kind in "iu" for ids in arrays):
        return None
    if arrays:
        every = np.concatenate(arrays)     # mixed signed and uint64: float64, enough to find
        if every.min() < 0 or every.max().item() > _INT64_MAX:   # those that may break one
            return None
    return [ids.astype(np.int64) for ids in arrays]


def _document_sentences(d: int, doc) -> list[np.ndarray]:
    """Document d's sentences, checked one by one: the first that breaks a rule raises."""
    sentences = []
    for s, sentence in enumerate(doc):
        ids = np.asarray(sentence)
        if ids.size == 0:
            continue
        if ids.dtype == np.bool_ or ids.dtype.kind not in "iu":
            raise TypeError(f"document {d}, sentence {s}: token ids must be integers, "
                            f"got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"document {d}, sentence {s}: a sentence must be a flat list "
                             f"of ids, got shape {ids.shape}")
        if ids.min() < 0:
            raise ValueError(f"document {d}, sentence {s}: negative token id {ids.min()}")
        if ids.max().item() > _INT64_MAX:   # a uint64 past int64 would wrap to a negative id
            raise ValueError(f"document {d}, sentence {s}: token id {ids.max()} is past int64's "
                             f"largest, {_INT64_MAX}")
        sentences.append(ids.astype(np.int64))
    return sentences


def check_nsp_params(max_seq_len, short_seq_prob) -> None:
    """`mlm_ref.nsp.make_pairs`'s `max_seq_len` (an int >= 5) and `short_seq_prob` (in [0, 1])."""
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, numbers.Integral):
        raise TypeError(f"max_seq_len must be an int, got {max_seq_len!r}")
    if max_seq_len < 5:
        raise ValueError(f"max_seq_len must be >= 5 ([CLS] A [SEP] B [SEP] with A and B of at "
                         f"least one token, and a target length of at least 2), got {max_seq_len}")
    if isinstance(short_seq_prob, bool) or not isinstance(short_seq_prob, numbers.Real):
        raise TypeError(f"short_seq_prob must be a real number, got {short_seq_prob!r}")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"short_seq_prob must lie in [0, 1], got {short_seq_prob}")
