"""Whole-word masking in JAX: a pure, jit-compiled function of the ids, the word ids and a key.

The algorithm is the one taught in `mlm_ref.wwm`, written with JAX's own ops: a position finds
its word's first piece with `lax.cummax` over the rows where runs of equal word ids start; a
word's facts (an ineligible piece? how many pieces?) are added onto its first piece with a
scatter-add (`.at[].add`) and gathered back; selection and category are the first piece's draws.
The draws are token-level exact mode's (`split(key, 3)`, then `u`, `c`, `t` over the whole
shape), so the masks are bit-identical to `mlm_ref.wwm.mask_words_exact` and `mlm_torch.wwm`.

Google's budget mode (`wwm_selection="budget"`) sorts each sequence's words by their first
piece's `u` and walks them in phases inside a `lax.while_loop`, so it stays inside `jit` too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlm_ref.config import MaskingConfig
from mlm_ref.validation import check_word_ids_meta, special_ids

from .keys import TRACER, as_key
from .inputs import check_input, check_rows

__all__ = ["mask_words", "mask_words_jit", "mask_word_rows", "mask_word_rows_jit",
           "check_word_ids"]


def check_word_ids(word_ids, x: jax.Array, config: MaskingConfig) -> jax.Array:
    """`word_ids` checked against `x`, as a JAX array.

    Word ids only need to compare equal, so int64 ids that JAX would narrow to int32 (64-bit
    mode off) are accepted when their values fit in int32.

    Raises:
        TypeError: a torch tensor, or not an integer dtype.
        ValueError: not of `x`'s shape, or int64 values outside int32 with 64-bit mode off.
    """
    if type(word_ids).__module__.split(".")[0] == "torch":
        raise TypeError("word_ids is a torch tensor; mlm_jax takes JAX or NumPy arrays")
    dtype = np.dtype(word_ids.dtype) if hasattr(word_ids, "dtype") \
        else np.asarray(word_ids).dtype
    integer = dtype != np.bool_ and np.issubdtype(dtype, np.integer)
    check_word_ids_meta(np.shape(word_ids), tuple(x.shape), integer=integer,
                        dtype_name=str(dtype), config=config)
    w = jnp.asarray(word_ids)
    if w.dtype != dtype and not isinstance(word_ids, TRACER) and np.size(word_ids):
        host = np.asarray(word_ids)
        info = np.iinfo(w.dtype)
        if host.min() < info.min or host.max() > info.max:
            raise ValueError(f"word_ids of dtype {dtype} hold values outside {w.dtype}, "
                             f"which JAX narrows them to (64-bit mode is off)")
    return w


def _random_ids(key: jax.Array, shape, config: MaskingConfig) -> jax.Array:
    t = jax.random.randint(key, shape, 0, config.n_random, dtype=jnp.int32)
    for excluded in config.random_exclude:  # sorted: each excluded id at or below t pushes it
        t = t + (t >= excluded).astype(t.dtype)
    return t


def _budget_words(key: jax.Array, length: jax.Array, budget: jax.Array) -> jax.Array:
    """Google's walk in phases (`mlm_ref.wwm`): True at the first pieces of the words taken."""
    order = jnp.argsort(key, axis=0, stable=True)                   # rows in walking order
    lens = jnp.take_along_axis(jnp.where(key < 2.0, length, 0), order, axis=0)

    def phase(state):
        left, undecided, taken, _ = state
        fits = undecided & (lens <= left)
        take = fits & (jnp.cumsum(jnp.where(fits, lens, 0), axis=0) <= left)
        used = jnp.where(take, lens, 0).sum(0, dtype=left.dtype)   # keep the carry's dtype
        return left - used, undecided & ~take, taken | take, take.any()

    init = (budget.astype(lens.dtype), lens > 0, jnp.zeros(lens.shape, bool), jnp.array(True))
    taken = jax.lax.while_loop(lambda s: s[3], phase, init)[2]
    cols = jnp.arange(lens.shape[1])[None, :]
    return jnp.zeros(lens.shape, bool).at[order, cols].set(taken)   # back to rows


@functools.partial(jax.jit, static_argnames="config")
def mask_words_jit(x: jax.Array, word_ids: jax.Array, key: jax.Array, config: MaskingConfig):
    """The jit-compiled core of `mask_words`, without its checks (a typed key, `as_key`).

    Returns:
        `(x_masked, y)`: JAX arrays with the dtype and shape of `x`.
    """
    shape, seq_len = x.shape, x.shape[0]
    batch = int(np.prod(shape[1:], dtype=np.int64))
    k_sel, k_cat, k_tok = jax.random.split(key, 3)
    p_select, p_random, p_random_or_keep = config.exact_thresholds()
    u = jax.random.uniform(k_sel, shape, jnp.float32).reshape(seq_len, batch)
    c = jax.random.uniform(k_cat, shape, jnp.float32).reshape(seq_len, batch)
    t = _random_ids(k_tok, shape, config).astype(x.dtype).reshape(seq_len, batch)
    x2, w2 = x.reshape(seq_len, batch), word_ids.reshape(seq_len, batch)  # [seq_len, batch]

    # 1. Words: first pieces by a running maximum of run-start rows.
    signed = jnp.issubdtype(w2.dtype, jnp.signedinteger)
    in_word = w2 >= 0 if signed else jnp.ones(w2.shape, bool)
    start = in_word.at[1:].set(in_word[1:] & (w2[1:] != w2[:-1]))
    rows = jnp.arange(seq_len, dtype=jnp.int32)[:, None]
    first = jax.lax.cummax(jnp.where(start, rows, 0), axis=0)            # [seq_len, batch]
    cols = jnp.arange(batch, dtype=jnp.int32)[None, :]

    def per_word(values: jax.Array) -> jax.Array:
        """Sum `values` over each word's pieces, onto its first piece."""
        return jnp.zeros((seq_len, batch), jnp.int32).at[first, cols].add(values)

    special = jnp.asarray(special_ids(config, int(np.iinfo(x.dtype).max)), dtype=x.dtype)
    bad = in_word & jnp.isin(x2, special)
    ok_start = start & (per_word(bad.astype(jnp.int32)) == 0)

    # 2. Selection at first pieces.
    if config.wwm_selection == "bernoulli":
        chosen = ok_start & (u < p_select)
    else:
        length = per_word(in_word.astype(jnp.int32))
        if config.padding_token <= np.iinfo(x.dtype).max:
            n_tokens = (x2 != jnp.asarray(config.padding_token, x.dtype)).sum(0)
        else:
            n_tokens = jnp.full((batch,), seq_len)
        table = jnp.asarray(config.wwm_budget_table(seq_len), dtype=jnp.int32)
        chosen = _budget_words(jnp.where(ok_start, u, 2.0), length, table[n_tokens])
    selected = in_word & jnp.take_along_axis(chosen, first, axis=0)

    # 3. Category: the first piece's draw, or each piece's own.
    cat = c if config.wwm_category == "piece" else jnp.take_along_axis(c, first, axis=0)
    to_random = selected & (cat < p_random)
    to_mask = selected & (cat >= p_random_or_keep)

    x_masked = jnp.where(to_random, t, jnp.where(to_mask, jnp.asarray(config.mask_token,
                                                                       x.dtype), x2))
    y = jnp.where(selected, x2, jnp.asarray(config.padding_token, x.dtype))
    return x_masked.reshape(shape), y.reshape(shape)


def mask_words(x, word_ids, config: MaskingConfig, *, key, check_ids: bool = True):
    """Whole-word masking; the same key gives the same masks in every backend.

    Args:
        x: integer token ids (a JAX or NumPy array), rank >= 1, axis 0 the sequence.
        word_ids: integer word ids shaped like `x` (negative: no word).
        config: the masking parameters, `wwm_*` options included.
        key: a JAX PRNG key, an int seed or raw threefry key data `uint32[2]`.
        check_ids: raise on negative token ids (only possible when `x` is concrete).

    Returns:
        `(x_masked, y)`: JAX arrays with the dtype and shape of `x`.
    """
    x = check_input(x, config, check_ids=check_ids)
    w = check_word_ids(word_ids, x, config)
    return mask_words_jit(x, w, as_key(key), config)


@functools.partial(jax.jit, static_argnames="config")
def mask_word_rows_jit(x: jax.Array, word_ids: jax.Array, row_keys: jax.Array,
                       config: MaskingConfig):
    """`mask_word_rows` without its checks: `row_keys` uint32 [batch, 2]."""
    keys = jax.random.wrap_key_data(row_keys, impl="threefry2x32")      # [batch] typed keys
    return jax.vmap(lambda row, w, key: mask_words_jit(row, w, key, config))(x, word_ids, keys)


def mask_word_rows(x, word_ids, row_keys, config: MaskingConfig, *, check_ids: bool = True):
    """Whole-word masking of each row of a padded batch with its own key (one `vmap`).

    The whole-word counterpart of `mlm_jax.streams.mask_rows`: row `r` equals
    `mask_words(x[r], word_ids[r], config, key=row_keys[r])`; with word id -1 on padding, the
    first `n` positions of a row are masked as `x[r, :n]` alone.

    Args:
        x: token ids `[batch, seq]` (JAX or NumPy), padded with `config.padding_token`.
        word_ids: integer word ids `[batch, seq]` (negative: no word).
        row_keys: key data `[batch, 2]`, uint32 (or int32 bit patterns, or integers in
            `[0, 2**32)`).
        config: the masking parameters, `wwm_*` options included.
        check_ids: raise on negative token ids (only when `x` is concrete).

    Raises:
        ValueError: `x` not of rank 2, or `row_keys` not of shape `[batch, 2]`.
    """
    x, keys = check_rows(x, row_keys, config, check_ids=check_ids)
    w = check_word_ids(word_ids, x, config)
    return mask_word_rows_jit(x, w, keys, config)
