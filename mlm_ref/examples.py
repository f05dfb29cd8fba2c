"""Tokenized examples to a padded batch of NumPy arrays, checked once: what the collators share.

`mlm_torch.collate.MLMCollator` and `mlm_jax.collate` take what tokenizers and datasets hand
over: a list of mappings with `input_ids` and, optionally, `attention_mask`, `token_type_ids`,
`special_tokens_mask`, `word_ids` (ints, `None` outside words), the example's `index` and
`epoch`, and any other keys. `collect` checks them all in one pass and pads them, so both
collators accept and refuse the same inputs with the same messages, each naming the example,
the key and what was expected:

* ids are integers (Python, NumPy or torch, in lists, tuples or 1-d arrays); a float, a string,
  a bool or an id beyond the output's integer type is refused, never truncated;
* every known per-token key has one entry per `input_ids` entry, and a key is on every example
  or on none;
* an incoming `attention_mask` is kept and must agree with the padding it describes (0 only
  where `input_ids` holds the padding token): examples padded by the tokenizer
  (`padding="max_length"`) and ragged ones are handled alike;
* any other key is passed through: padded with 0 when it is per-token (a sequence as long as
  `input_ids` in every example) and numeric, stacked when every value is a number or a numeric
  array of one shape, left alone (the list of the values) otherwise.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import operator
from collections.abc import Mapping

import numpy as np

__all__ = ["Collected", "collect", "check_epoch", "PER_TOKEN", "CONSUMED", "INT64_MAX",
           "INT32_MAX"]

INT64_MAX, INT32_MAX = 2**63 - 1, 2**31 - 1
# the per-token keys the collators read (and their fill on padding)
PER_TOKEN = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0,
             "special_tokens_mask": 1, "word_ids": -1}
# keys the collators use up: they say how to mask, and are not model inputs
CONSUMED = ("special_tokens_mask", "word_ids", "index", "epoch")
_INDEX_HELP = ("each example needs its 'index' in the dataset (the key of its masks). "
               "transformers.Trainer drops columns its model does not take: pass "
               "TrainingArguments(remove_unused_columns=False), or wrap the dataset in "
               "mlm_torch.collate.WithIndex (docs/pipelines.md)")


@dataclasses.dataclass
class Collected:
    """The checked, padded batch (int64 `[batch, seq]` unless said otherwise).

    Attributes:
        input_ids: the ids, padded with the padding token.
        attention_mask: the examples' own, or 1 over each example's length.
        special: bool, where `special_tokens_mask` flags a token (None without it).
        token_type_ids, word_ids: None when the examples have none (`word_ids` -1 on padding
            and where the example said `None`).
        index: int64 `[batch]`.
        epochs: int64 `[batch]`, the examples' own epochs (None when they carry none).
        extra: the other keys: `[batch, seq]` or `[batch, ...]` arrays, or lists.
    """
    input_ids: np.ndarray
    attention_mask: np.ndarray
    special: np.ndarray | None
    token_type_ids: np.ndarray | None
    word_ids: np.ndarray | None
    index: np.ndarray
    epochs: np.ndarray | None
    extra: dict


def check_epoch(epoch, name: str = "epoch") -> int:
    """An epoch as an int in `[0, 2**32)`; integral floats (`Trainer`'s `state.epoch`, 1.0)
    are accepted, any other float, a bool or a string refused.

    Raises:
        TypeError: not a number. ValueError: fractional, or out of range.
    """
    if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(epoch).__name__} {epoch!r}")
    if not isinstance(epoch, numbers.Integral):
        if not (math.isfinite(epoch) and float(epoch).is_integer()):
            raise ValueError(f"{name} must be a whole number, got {epoch!r}")
        epoch = int(epoch)
    if not 0 <= epoch < 2**32:
        raise ValueError(f"{name} must lie in [0, 2**32), got {epoch!r}")
    return int(epoch)


def collect(examples, padding_token: int, *, pad_to_multiple_of: int | None = None,
            int_max: int = INT64_MAX) -> Collected:
    """Check `examples` and pad them into a `Collected` batch (see the module docstring).

    Args:
        examples: a non-empty list of mappings, each with `input_ids` and `index`.
        padding_token: what `input_ids` is padded with.
        pad_to_multiple_of: round the padded length up to a multiple of this.
        int_max: the largest integer the caller's arrays hold (`INT32_MAX` for JAX).

    Raises:
        TypeError: not a list of mappings, or a value of the wrong type.
        ValueError: a missing or uneven key, a length, a range or an `attention_mask` that
            disagrees with the padding.
    """
    keys = _check_structure(examples)
    ids, lengths = _flat(examples, "input_ids", int_max, None)
    if len(ids) and ids.min() < 0:
        _fail_at("input_ids", ids, np.flatnonzero(ids < 0)[0], lengths,
                 "a non-negative token id")
    seq = int(lengths.max())
    if pad_to_multiple_of:
        seq = -(-seq // pad_to_multiple_of) * pad_to_multiple_of
    filled = np.arange(seq) < lengths[:, None]                           # [batch, seq]
    out = {}
    for key, fill in PER_TOKEN.items():
        if key == "input_ids":
            out[key] = _pad(ids, filled, padding_token)
        elif key in keys:
            flat, _ = _flat(examples, key, int_max, lengths)
            out[key] = _pad(flat, filled, fill)
            if key in ("attention_mask", "special_tokens_mask"):
                _check_binary(key, flat, lengths)
    if "attention_mask" in out:
        attended = out["attention_mask"].astype(bool)
        wrong = filled & ~attended & (out["input_ids"] != padding_token)
        if wrong.any():
            r, c = np.argwhere(wrong)[0]
            raise ValueError(f"example {r}: 'attention_mask' is 0 at position {c}, where "
                             f"'input_ids' holds {out['input_ids'][r, c]}, not the padding "
                             f"token {padding_token}: the mask must agree with the padding")
    else:
        out["attention_mask"] = filled.astype(np.int64)
    stm = out.get("special_tokens_mask")
    return Collected(
        input_ids=out["input_ids"], attention_mask=out["attention_mask"],
        special=None if stm is None else (stm != 0) & filled,
        token_type_ids=out.get("token_type_ids"), word_ids=out.get("word_ids"),
        index=_scalars(examples, "index", 2**32 - 1),
        epochs=np.array([check_epoch(e["epoch"], f"example {r}: 'epoch'")
                         for r, e in enumerate(examples)]) if "epoch" in keys else None,
        extra={k: _extra(examples, k, lengths, filled) for k in keys
               if k not in PER_TOKEN and k not in CONSUMED})


def _check_structure(examples) -> list:
    """The keys every example has (in the first example's order); raise on anything else."""
    if isinstance(examples, (Mapping, str, bytes)) or not hasattr(examples, "__len__"):
        raise TypeError(f"examples must be a list of mappings (one per example), got "
                        f"{type(examples).__name__}")
    if len(examples) == 0:
        raise ValueError("cannot collate an empty list of examples")
    for r, e in enumerate(examples if set(map(type, examples)) != {dict} else ()):
        if not isinstance(e, Mapping):
            raise TypeError(f"example {r} is a {type(e).__name__}, not a mapping with "
                            f"'input_ids' and 'index'")
    first = examples[0]
    for name in ("input_ids", "index"):
        if name not in first:
            raise ValueError(f"example 0 has no {name!r}: " + (
                _INDEX_HELP if name == "index" else "the collator needs the token ids"))
    if "labels" in first:
        raise ValueError("example 0 has 'labels': the collator makes the labels from the "
                         "masking; drop the key from the examples")
    names = first.keys()
    for r, e in enumerate(examples):
        if e.keys() != names:
            extra, missing = set(e.keys()) - set(names), set(names) - set(e.keys())
            key, where = (min(missing), "has no") if missing else (min(extra), "has")
            raise ValueError(f"example {r} {where} {key!r} but example 0 "
                             f"{'has' if missing else 'has not'}: a key must be on every "
                             f"example or on none")
    return list(names)


def _flat(examples, key: str, int_max: int, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Every example's `key` concatenated: int64 `[total]`, and the lengths `[batch]`."""
    rows = [e[key] for e in examples]
    if set(map(type, rows)) == {list}:
        n = np.fromiter(map(len, rows), np.int64, count=len(rows))
        # the common case, lists of Python ints: one pass to see that they are, one to copy
        # (NumPy's own type inference would read a bool among ints as an int)
        flat = None
        if set(map(type, itertools.chain.from_iterable(rows))) <= {int}:
            try:
                flat = np.fromiter(itertools.chain.from_iterable(rows), np.int64,
                                   count=int(n.sum()))
            except OverflowError:                        # beyond int64: the slow path says
                pass
        if flat is not None:
            _check_lengths(key, n, lengths)
            if len(flat) and flat.max() > int_max:
                _fail_at(key, flat, np.flatnonzero(flat > int_max)[0], n,
                         f"an integer at most {int_max}"
                         + (" (JAX's int32)" if int_max == INT32_MAX else ""))
            return flat, n
    parts = [_row(r, key, rows[r], int_max) for r in range(len(rows))]
    n = np.fromiter(map(len, parts), np.int64, count=len(parts))
    _check_lengths(key, n, lengths)
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), n


def _row(r: int, key: str, row, int_max: int) -> np.ndarray:
    """One example's integer sequence as int64, every value checked."""
    where = f"example {r}: {key!r}"
    if isinstance(row, (str, bytes, Mapping)) or not hasattr(row, "__len__"):
        raise TypeError(f"{where} must be a sequence of integers, got {type(row).__name__}")
    if hasattr(row, "__array__") and not isinstance(row, (list, tuple)):
        a = np.asarray(row)
        if a.ndim != 1:
            raise ValueError(f"{where} must be one-dimensional, got shape {a.shape}")
        if a.dtype.kind not in "iu" and not (a.dtype == np.bool_ and key in
                                             ("attention_mask", "special_tokens_mask")):
            raise TypeError(f"{where} must hold integers, got dtype {a.dtype}")
        if a.size and a.max() > int_max:
            raise ValueError(f"{where} holds {a.max()}, beyond the largest integer {int_max}"
                             + (" (JAX's int32)" if int_max == INT32_MAX else ""))
        return a.astype(np.int64)
    values = list(row)
    out = np.empty(len(values), np.int64)
    binary = key in ("attention_mask", "special_tokens_mask")
    for j, v in enumerate(values):
        if v is None and key == "word_ids":
            v = -1                                   # a fast tokenizer's word id of a special
        as_int = int(v) if binary and isinstance(v, (bool, np.bool_)) else _as_int(v)
        if as_int is None:
            raise TypeError(f"{where}[{j}] is {type(v).__name__} {v!r}; expected an "
                            f"integer" + (" or None" if key == "word_ids" else ""))
        if not -2**63 <= as_int <= int_max:
            raise ValueError(f"{where}[{j}] is {as_int}, beyond the largest integer {int_max}"
                             + (" (JAX's int32)" if int_max == INT32_MAX else ""))
        out[j] = as_int
    return out


def _check_lengths(key: str, n: np.ndarray, lengths) -> None:
    if lengths is not None and (n != lengths).any():
        r = int(np.flatnonzero(n != lengths)[0])
        raise ValueError(f"example {r}: {key!r} has {n[r]} entries, 'input_ids' "
                         f"{lengths[r]}: one per token expected")


def _fail_at(key: str, flat: np.ndarray, pos: int, lengths, expected: str):
    """Raise naming the example and position of flat position `pos`."""
    r = int(np.searchsorted(np.cumsum(lengths), pos, side="right"))
    j = int(pos - (np.cumsum(lengths)[r - 1] if r else 0))
    raise ValueError(f"example {r}: {key!r}[{j}] is {flat[pos]}; expected {expected}")


def _check_binary(key: str, flat: np.ndarray, lengths) -> None:
    bad = (flat != 0) & (flat != 1)
    if bad.any():
        _fail_at(key, flat, np.flatnonzero(bad)[0], lengths, "0 or 1")


def _pad(flat: np.ndarray, filled: np.ndarray, fill: int) -> np.ndarray:
    out = np.full(filled.shape, fill, dtype=np.int64)                    # [batch, seq]
    out[filled] = flat
    return out


def _scalars(examples, key: str, high: int) -> np.ndarray:
    """One integer per example in `[0, high]`: int64 `[batch]`."""
    values = [e[key] for e in examples]
    if set(map(type, values)) <= {int}:                                  # the common case
        try:
            out = np.fromiter(values, np.int64, count=len(values))
            if out.min() >= 0 and out.max() <= high:
                return out
        except OverflowError:
            pass
    out = np.empty(len(values), np.int64)
    for r, v in enumerate(values):
        as_int = _as_int(v)
        if as_int is None:
            raise TypeError(f"example {r}: {key!r} is {type(v).__name__} {v!r}; expected an "
                            f"integer")
        if not 0 <= as_int <= high:
            raise ValueError(f"example {r}: {key!r} is {v!r}; expected an integer in "
                             f"[0, {high}]")
        out[r] = as_int
    return out


def _as_int(value) -> int | None:
    """`value` as an int if it is an integer (Python, NumPy, a one-element torch integer
    tensor), else None (floats, strings and bools included)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _extra(examples, key: str, lengths: np.ndarray, filled: np.ndarray):
    """A key the collator does not read: padded, stacked or left alone (module docstring)."""
    values = [e[key] for e in examples]
    arrays = [np.asarray(v) if _numeric(v) else None for v in values]
    if any(a is None for a in arrays):
        return values
    if all(a.ndim == 1 for a in arrays) and all(len(a) == n for a, n in zip(arrays, lengths)):
        flat = np.concatenate(arrays)
        out = np.zeros(filled.shape, dtype=flat.dtype)                   # [batch, seq]
        out[filled] = flat
        return out
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return values


def _numeric(value) -> bool:
    """Whether `value` is a number or an array-like of numbers (bools included)."""
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        return False
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except (ValueError, TypeError):
        return False
