"""The token gate's batches on a CPU (`verify.token.inputs.SyntheticBatches` says what they
are): every random bit is SplitMix64 addressed by an index, so one C pass (`make_batch.c`)
makes a batch at about a nanosecond a position, where torch's generator took ~3 ns a draw and
the batch three draws a position plus a dozen full-size operations. The NumPy formulation here
gives the same ids where the C pass is not built (`tests/test_counts_compiled.py`), so a run's
inputs, and its report, do not depend on the machine having a compiler.

The bits (`make_batch.c` lays them out): position i's word is `G(i)` (row-major), column b's
`G(seq_len * batch + b)`, with `G(c) = mix(seed + (c + 1) * gamma)`. A column's word gives
whether it is full length, text-like and has three segments, and its length otherwise; a
position's word its Zipf grid point, whether it holds [MASK], and its uniform id (the top 32
bits times `n_tokens`, over 2**32: a bias below `n_tokens / 2**32` of an id's share, ~1e-5
for BERT's vocabulary, which the inputs can afford: every check is conditional on them).
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from . import compiled

__all__ = ["make_batch", "mask_below"]

_GAMMA, _M1, _M2 = (np.uint64(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9,
                                           0x94D049BB133111EB))


def mask_below(fraction: float) -> int:
    """The bound on a position's 16 [MASK] bits for a share `fraction` of [MASK] inputs."""
    return int(round(fraction * (1 << 16)))


def make_batch(config: MaskingConfig, seq_len: int, batch: int, seed: int, *,
               id_of: np.ndarray, mask_fraction: float, compiled_pass: bool = True) -> np.ndarray:
    """The batch `[seq_len, batch]` (int64) of `seed` (in `[0, 2**64)`): in C where built
    (`compiled_pass`), else in NumPy; the same ids either way.

    Args:
        config: the masking parameters (vocabulary, [MASK], padding, [CLS] and [SEP]: the first
            and last no-mask ids).
        id_of: the id of each of the 65536 Zipf grid points (int64).
        mask_fraction: the share of positions that hold [MASK] before padding.
    """
    below = mask_below(mask_fraction)
    id_of = np.ascontiguousarray(id_of, np.int64)
    if compiled_pass and compiled.library() is not None:
        return compiled.make_batch(config, seq_len, batch, seed, id_of=id_of, mask_below=below)
    return _numpy_batch(config, seq_len, batch, seed, id_of, below)


def _words(seed: int, start: int, count: int) -> np.ndarray:
    """SplitMix64 words `G(start) .. G(start + count - 1)` (uint64 arithmetic wraps)."""
    z = np.arange(start + 1, start + count + 1, dtype=np.uint64) * _GAMMA + np.uint64(seed)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _bits(w: np.ndarray, shift: int, width: int) -> np.ndarray:
    return ((w >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)


def _numpy_batch(config, seq_len: int, batch: int, seed: int, id_of: np.ndarray,
                 below: int) -> np.ndarray:
    n = seq_len * batch
    col = _words(seed, n, batch)                                              # [batch]
    text, cut = _bits(col, 1, 1).astype(bool), 2 + _bits(col, 2, 1)
    partial = (_bits(col, 32, 32).astype(np.uint64) * np.uint64(seq_len + 1)) >> np.uint64(32)
    length = np.where(_bits(col, 0, 1) == 1, seq_len, partial.astype(np.int64))
    w = _words(seed, 0, n).reshape(seq_len, batch)                             # [seq, batch]
    uniform = ((w >> np.uint64(32)) * np.uint64(config.n_tokens)) >> np.uint64(32)
    x = np.where(text, id_of[_bits(w, 0, 16)], uniform.astype(np.int64))
    x[_bits(w, 16, 16) < below] = config.mask_token
    if config.no_mask_tokens:
        # text columns: [CLS] at 0, then segments closed by [SEP] at 1/3, 2/3 (some), the end
        cls, sep = config.no_mask_tokens[0], config.no_mask_tokens[-1]
        x[0] = np.where(text, cls, x[0])
        k = np.arange(1, 4)[:, None]                                           # [3, 1]
        ends = length * k // cut                                               # [3, batch]
        at = (k <= cut) & (ends > 1) & text & (length >= 2)
        x[ends[at] - 1, np.broadcast_to(np.arange(batch), (3, batch))[at]] = sep
    x[np.arange(seq_len)[:, None] >= length] = config.padding_token
    return x
