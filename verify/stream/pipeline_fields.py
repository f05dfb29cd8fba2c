"""The model inputs a batch carries besides `input_ids` and `labels`, checked where it carries
them (exact; docs/pipelines.md, "What a pipeline promises"):

* `attention_mask` is 1 exactly on the real tokens (original not `padding_token`) and 0 on
  padding;
* `token_type_ids` are segment ids: 0 or 1, 0 on padding, never falling along a row's real
  tokens, and changing only just after a no-mask token (`[SEP]` closes segment A);
* `token_type_ids` and `attention_mask` are the same at every sighting of an example (they
  belong to the example, not to its mask).

A check whose key no batch carries is not applicable; a key carried by some batches only is a
failure of "batches carry the same keys".
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from .collect import Rows, Stream
from ..engine.primitives import Check

__all__ = ["field_checks", "FIELD_CHECKS"]

FIELD_CHECKS = ("batches carry the same keys",
                "attention_mask is 1 exactly on real tokens",
                "token_type_ids are segment ids (0, then 1 after a [SEP]; 0 on padding)",
                "attention_mask and token_type_ids are the same at every sighting")


def _padded(stream: Stream, rows: Rows, key: str) -> np.ndarray:
    """The key's values as rows `[rows, seq]`, -1 beyond each batch's width."""
    out = np.full(rows.orig.shape, -1, np.int64)
    for i, b in enumerate(stream.batches):
        start, n = rows.start[i]
        value = b.fields[key]
        out[start:start + n, :value.shape[1]] = value
    return out


def field_checks(stream: Stream, rows: Rows, config: MaskingConfig, subject: str) -> list[Check]:
    """The exact checks of `attention_mask` and `token_type_ids` (see the module)."""
    carried = {k: sum(k in b.fields for b in stream.batches)
               for k in ("attention_mask", "token_type_ids")}
    partial = [k for k, c in carried.items() if 0 < c < len(stream.batches)]
    out = [Check.exact(FIELD_CHECKS[0], subject, len(partial),
                       f"{', '.join(partial)} in some batches only" if partial else "")]
    width = np.zeros(rows.orig.shape, bool)
    for i, b in enumerate(stream.batches):
        start, n = rows.start[i]
        width[start:start + n, :b.input_ids.shape[1]] = True
    real = width & (rows.orig != config.padding_token)
    values = {k: _padded(stream, rows, k) for k, c in carried.items() if c and k not in partial}
    if "attention_mask" in values:
        bad = width & (values["attention_mask"] != real)
        out.append(_located(FIELD_CHECKS[1], subject, rows, bad, "positions whose "
                            "attention_mask is not 1 on a real token and 0 on padding"))
    else:
        out.append(Check.not_applicable(FIELD_CHECKS[1], subject, kind="exact"))
    if "token_type_ids" in values:
        out.append(_located(FIELD_CHECKS[2], subject, rows,
                            _bad_segments(values["token_type_ids"], real, width, rows, config),
                            "positions where token_type_ids are not 0 or 1, not 0 on padding, "
                            "fall, or change other than just after a no-mask token"))
    else:
        out.append(Check.not_applicable(FIELD_CHECKS[2], subject, kind="exact"))
    out.append(_stable(values, real, rows, subject) if values else
               Check.not_applicable(FIELD_CHECKS[3], subject, kind="exact"))
    return out


def _bad_segments(tt, real, width, rows, config) -> np.ndarray:
    """Positions breaking the segment-id rules."""
    bad = width & ~np.isin(tt, (0, 1))
    bad |= width & ~real & (tt != 0)
    prev = np.concatenate([np.zeros((tt.shape[0], 1), np.int64), tt[:, :-1]], axis=1)
    inside = real & np.concatenate([np.zeros((tt.shape[0], 1), bool), real[:, :-1]], axis=1)
    bad |= inside & (tt < prev)
    after_sep = np.concatenate([np.zeros((tt.shape[0], 1), bool),
                                np.isin(rows.orig[:, :-1], list(config.no_mask_tokens))], axis=1)
    bad |= inside & (tt != prev) & ~after_sep
    bad |= real & ~inside & (tt != 0)            # the first real token is in segment A
    return bad


def _located(name, subject, rows: Rows, bad: np.ndarray, what: str) -> Check:
    count = int(bad.sum())
    if not count:
        return Check.exact(name, subject, 0)
    row, col = (int(v[0]) for v in np.nonzero(bad))
    return Check.exact(name, subject, count, f"{count} {what}; first at {rows.locate(row)}, "
                                             f"position {col}")


def _stable(values: dict, real: np.ndarray, rows: Rows, subject) -> Check:
    """Rows of one example agree with its first sighting on every carried key, on its real
    tokens (the padding differs with the batch's width)."""
    order = np.lexsort((np.arange(rows.example.size), rows.example))
    first = np.zeros(rows.example.size, np.int64)
    starts = np.concatenate([[True], np.diff(rows.example[order]) != 0])
    first[order] = order[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    differ = np.zeros(rows.example.size, bool)
    for v in values.values():
        v = np.where(real, v, 0)
        differ |= (v != v[first]).any(axis=1)
    count = int(differ.sum())
    if not count:
        return Check.exact(FIELD_CHECKS[3], subject, 0)
    row = int(np.flatnonzero(differ)[0])
    return Check.exact(FIELD_CHECKS[3], subject, count,
                       f"{count} rows differ from their example's first sighting, e.g. "
                       f"{rows.locate(row)} and {rows.locate(int(first[row]))}")
