"""Test support for whole-word masking: one call for every backend, word-id strategies, and a
plain Python oracle of Google's budget walk (one word at a time, as Google writes it)."""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import strategies as st

from mlm_ref import MaskingConfig


def wwm_call(backend, mlm, x: np.ndarray, w: np.ndarray, *, seed=None, key=None):
    """`mlm(x, word_ids=w, ...)` in `backend`'s own arrays; NumPy in, `(x_masked, y, x', w')`
    out, where `x'`, `w'` are the native inputs after the call (to check they are untouched)."""
    if backend.name == "numpy":
        xs, ws = np.array(x), np.array(w)
        out = mlm(xs, word_ids=ws, **({"key": key} if key is not None else {"rng": seed}))
        return out[0], out[1], xs, ws
    if backend.name == "torch":
        import torch
        xs, ws = torch.from_numpy(np.array(x)), torch.from_numpy(np.array(w))
        if key is not None:
            out = mlm(xs, word_ids=ws, key=key)
        else:
            out = mlm(xs, word_ids=ws, generator=torch.Generator().manual_seed(seed or 0))
        return out[0].numpy(), out[1].numpy(), xs.numpy(), ws.numpy()
    import jax
    import jax.numpy as jnp
    wide = np.dtype(x.dtype).itemsize == 8 or np.dtype(w.dtype).itemsize == 8
    with jax.enable_x64(True) if wide else contextlib.nullcontext():
        xs, ws = jnp.asarray(x), jnp.asarray(w)
        out = mlm(xs, word_ids=ws, key=key if key is not None else (seed or 0))
        return np.asarray(out[0]), np.asarray(out[1]), np.asarray(xs), np.asarray(ws)


@st.composite
def word_ids_like(draw, x: np.ndarray):
    """Word ids shaped like `x`: runs of several lengths, gaps (-1), equal values on both sides
    of a gap, and repeated values far apart; int8 .. int64 or uint8."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["runs", "pool"]))
    if kind == "runs":   # increasing ids: P(new word) per position
        w = np.cumsum(rng.random(x.shape) < draw(st.sampled_from([0.2, 0.5, 1.0])), axis=0)
    else:                # a small pool: adjacent repeats, restarts, [3, -1, 3]
        w = rng.integers(0, 3, x.shape)
    gaps = rng.random(x.shape) < draw(st.sampled_from([0.0, 0.1, 0.5]))
    dtype = draw(st.sampled_from([np.int8, np.int32, np.int64, np.uint8]))
    if np.issubdtype(dtype, np.unsignedinteger):
        return (w % 200).astype(dtype)            # unsigned: every position is in a word
    return np.where(gaps, -1, w % 100).astype(dtype)


def words_of(w: np.ndarray):
    """Every word as `(column, rows)` of the `[seq_len, batch]` reshaped ids (plain loops)."""
    seq_len = w.shape[0]
    w2 = w.reshape(seq_len, -1) if seq_len else w.reshape(0, 0)
    for b in range(w2.shape[1]):
        rows: list[int] = []
        for s in range(seq_len):
            v = int(w2[s, b])
            if v >= 0 and rows and int(w2[rows[-1], b]) == v and rows[-1] == s - 1:
                rows.append(s)
                continue
            if rows:
                yield b, rows
            rows = [s] if v >= 0 else []
        if rows:
            yield b, rows


def budget_oracle(x2: np.ndarray, w2: np.ndarray, u2: np.ndarray, cfg: MaskingConfig):
    """Google's walk, one word at a time, on `[seq_len, batch]` arrays: True where selected.

    `u2` holds exact mode's selection uniforms; the walking order is ascending `u` at the first
    piece, ties by row, as docs/exact-mode.md defines it.
    """
    selected = np.zeros(x2.shape, dtype=bool)
    words: dict[int, list[list[int]]] = {}
    for b, rows in words_of(w2):
        if not np.isin(x2[rows, b], cfg.ineligible_tokens).any():
            words.setdefault(b, []).append(rows)
    for b, ws in words.items():
        budget = cfg.wwm_budget(int(np.count_nonzero(x2[:, b] != cfg.padding_token)))
        taken = 0
        for rows in sorted(ws, key=lambda r: (u2[r[0], b], r[0])):
            if taken >= budget:
                break
            if taken + len(rows) > budget:
                continue                      # would overflow: skipped, the walk goes on
            selected[rows, b] = True
            taken += len(rows)
    return selected
