"""Whole-word masking (WWM), the readable NumPy reference.

A tokenizer cuts a rare word into pieces: "unaffable" becomes `un ##aff ##able`. Token-level
masking hides each piece on its own coin flip, so the model is often asked to predict `##aff`
while it can see `un` and `##able`: a spelling exercise, not language. Whole-word masking
decides once per *word*: either every piece of a word is hidden, or none is.

**What a word is.** The caller says, with `word_ids` (an integer array shaped like `x`), which
word each position belongs to. Along the sequence axis (axis 0 of `[seq_len, batch]`; any
further axes are batch axes), a word is a maximal run of equal non-negative values; a negative
value marks a position that belongs to no word (`[CLS]`, `[SEP]`, padding) and is never
selected. `mlm_ref.words` builds `word_ids` from a tokenizer's output.

**Eligibility.** A word is eligible when none of its pieces is ineligible (padding, `[MASK]`,
`no_mask_tokens`): masking the rest of a word around a `[SEP]` would not be whole-word masking.

**Selection.** Each eligible word is selected with probability `masking_prob`, by one draw
made at its *first piece*: the draw of every other piece is ignored. So the *number of words*
selected is binomial, and the number of pieces follows.

**Category.** One three-way draw per word, again the one at its first piece: all pieces become
`[MASK]` (`1 - r - n`), or every piece shows a random id drawn for that piece (`r`), or all stay
(`n`). Google's original code draws the category per piece instead; `wwm_category="piece"`
does that.

**Google's budget.** Google's `create_pretraining_data.py` does not flip a coin per word. It
fixes a budget of `num_to_predict` pieces per sequence (`MaskingConfig.wwm_budget`), walks the
words in a random order and takes each word that still fits, skipping one that would overflow.
`wwm_selection="budget"` does that: the random order is the order of the first pieces' draws,
and the walk is done in *phases* rather than word by word. In a phase, the words still
undecided that fit the remaining budget on their own are the candidates; the longest prefix
(in walking order) of candidates that fits is taken, and the first candidate that overflows is
where the phase ends. A word that once did not fit never fits again (the budget only shrinks),
and each phase leaves less budget than the piece count of the word that ended it, so the phases
are few: the walk and this loop take exactly the same words.

**Vectorised.** Nothing here loops over words or positions. A position finds its word's first
piece with a running maximum of the rows where runs start; a word's facts (blocked? how many
pieces?) are scattered onto its first piece and gathered back. The PyTorch and JAX backends
(`mlm_torch.wwm`, `mlm_jax.wwm`) follow the same plan in their own ops.
"""

from __future__ import annotations

import numpy as np

from . import threefry
from .config import MaskingConfig
from .validation import as_generator, check_input, check_word_ids, special_ids

__all__ = ["mask_words", "mask_words_exact", "first_pieces", "mask_words_from_draws"]


def first_pieces(word_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each position's word starts, along axis 0 of `[seq_len, batch]` ids.

    Returns:
        `(in_word, start, first)`, all `[seq_len, batch]`: whether a position belongs to a
        word, whether it is a word's first piece, and the row of its word's first piece
        (meaningful only where `in_word`).
    """
    in_word = word_ids >= 0 if np.issubdtype(word_ids.dtype, np.signedinteger) \
        else np.ones(word_ids.shape, dtype=bool)
    start = in_word.copy()
    start[1:] &= word_ids[1:] != word_ids[:-1]          # a new value starts a new run
    rows = np.arange(word_ids.shape[0])[:, None]        # [seq_len, 1]
    first = np.maximum.accumulate(np.where(start, rows, 0), axis=0)
    return in_word, start, first


def _budget_words(key: np.ndarray, length: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Google's walk: which words the budget takes (module docstring, "Google's budget").

    Args:
        key: `[seq_len, batch]` walking order: words are taken in ascending key (ties by row);
            2.0 where no eligible word starts.
        length: `[seq_len, batch]` piece counts at first pieces.
        budget: `[batch]` pieces to predict per sequence.

    Returns:
        `[seq_len, batch]` bool, True at the first pieces of the words taken.
    """
    order = np.argsort(key, axis=0, kind="stable")                  # rows in walking order
    lens = np.take_along_axis(np.where(key < 2.0, length, 0), order, axis=0)
    left = budget.astype(np.int64)                                  # [batch]
    undecided, taken = lens > 0, np.zeros(lens.shape, dtype=bool)
    while True:  # one phase per pass; a handful of passes for text
        fits = undecided & (lens <= left)
        take = fits & (np.cumsum(np.where(fits, lens, 0), axis=0) <= left)
        if not take.any():
            break
        left -= np.where(take, lens, 0).sum(axis=0)
        undecided &= ~take
        taken |= take
    chosen = np.zeros(lens.shape, dtype=bool)
    np.put_along_axis(chosen, order, taken, axis=0)                 # back to rows
    return chosen


def mask_words_from_draws(x: np.ndarray, word_ids: np.ndarray, u, c, t: np.ndarray,
                          config: MaskingConfig, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Whole-word masking given each position's draws (both modes end here).

    Args:
        x, word_ids: checked ids and word ids of the same shape; axis 0 is the sequence.
        u, c: uniforms in [0, 1) like `x` (selection and category); only first pieces' `u`
            count, and only first pieces' `c` unless `wwm_category="piece"`.
        t: a random id for every position, like `x` (already past `random_exclude`).
        thresholds: `(select, random, random_or_unchanged)` compared with `u` and `c`.

    Returns:
        `(x_masked, y)`, new arrays like `x`.
    """
    shape, seq_len = x.shape, x.shape[0]
    batch = int(np.prod(shape[1:], dtype=np.int64))
    x2, w2 = x.reshape(seq_len, batch), word_ids.reshape(seq_len, batch)   # [seq_len, batch]
    u2, c2, t2 = (a.reshape(seq_len, batch) for a in (u, c, t))
    p_select, p_random, p_random_or_keep = thresholds
    cols = np.arange(batch)[None, :]                                        # [1, batch]

    # 1. Words: each position's first piece, and which words an ineligible piece blocks.
    in_word, start, first = first_pieces(w2)
    special = np.array(special_ids(config, np.iinfo(x.dtype).max), dtype=x.dtype)
    bad = in_word & np.isin(x2, special)
    blocked = np.zeros((seq_len, batch), dtype=bool)
    blocked[first[bad], np.broadcast_to(cols, bad.shape)[bad]] = True      # onto first pieces
    ok_start = start & ~blocked                                             # eligible words

    # 2. Selection, decided at first pieces: a coin per word, or Google's budget.
    if config.wwm_selection == "bernoulli":
        chosen = ok_start & (u2 < p_select)
    else:
        length = np.zeros((seq_len, batch), dtype=np.int64)
        np.add.at(length, (first[in_word], np.broadcast_to(cols, in_word.shape)[in_word]), 1)
        n_tokens = np.count_nonzero(x2 != x.dtype.type(config.padding_token)
                                    if config.padding_token <= np.iinfo(x.dtype).max
                                    else np.ones_like(in_word), axis=0)    # [batch]
        budget = config.wwm_budget_table(seq_len)[n_tokens]
        chosen = _budget_words(np.where(ok_start, u2, 2.0), length, budget)
    selected = in_word & np.take_along_axis(chosen, first, axis=0)          # spread to pieces

    # 3. Category: the first piece's draw for the whole word, or each piece's own.
    cat = c2 if config.wwm_category == "piece" else np.take_along_axis(c2, first, axis=0)
    to_random = selected & (cat < p_random)
    to_mask = selected & (cat >= p_random_or_keep)

    # 4. Outputs, as at token level; a random piece shows its own id.
    x_masked = np.where(to_mask, x.dtype.type(config.mask_token),
                        np.where(to_random, t2.astype(x.dtype), x2))
    y = np.where(selected, x2, x.dtype.type(config.padding_token))
    return x_masked.reshape(shape), y.reshape(shape)


def _shift_past_excluded(t: np.ndarray, config: MaskingConfig) -> np.ndarray:
    t = t.astype(np.int64)
    for excluded in config.random_exclude:  # sorted: the t-th id not in random_exclude
        t += t >= excluded
    return t


def mask_words(x, word_ids, config: MaskingConfig, *, rng=None):
    """Whole-word masking with NumPy's generator (native mode).

    The stream: `rng.random(x.shape)` (selection), `rng.random(x.shape)` (category), then
    `rng.integers(0, n_random, x.shape)` (random ids), all in row-major order.

    Args:
        x: integer token ids, rank >= 1, axis 0 the sequence.
        word_ids: integer word ids shaped like `x` (negative: no word).
        config: the masking parameters, `wwm_*` options included.
        rng: a `numpy.random.Generator`, a non-negative int seed or None.

    Returns:
        `(x_masked, y)`, new arrays with the dtype and shape of `x`.
    """
    x = check_input(x, config)
    w = check_word_ids(word_ids, x, config)
    rng = as_generator(rng)
    u, c = rng.random(x.shape), rng.random(x.shape)
    t = _shift_past_excluded(rng.integers(0, config.n_random, x.shape), config)
    r, n = config.randomize_prob, config.no_change_prob
    return mask_words_from_draws(x, w, u, c, t, config, (config.masking_prob, r, r + n))


def mask_words_exact(x, word_ids, config: MaskingConfig, *, key):
    """Whole-word masking in exact mode (docs/exact-mode.md, "Whole-word masking").

    The draws are token-level exact mode's: `k_sel, k_cat, k_tok = split(key, 3)` and `u`,
    `c`, `t` at every position. Unlike token level, a word's outcome depends on its first
    piece's draws, so the whole batch's draws are held at once (two float32 uniforms and an
    int64 id a position, with their intermediates).

    Args:
        x: integer token ids, rank >= 1, axis 0 the sequence.
        word_ids: integer word ids shaped like `x` (negative: no word).
        config: the masking parameters, `wwm_*` options included.
        key: an int seed or raw threefry key data `uint32[2]` (the rule of `mlm_ref.keys`).

    Returns:
        `(x_masked, y)` with the dtype and shape of `x`.
    """
    x = check_input(x, config)
    w = check_word_ids(word_ids, x, config)
    k_sel, k_cat, k_tok = threefry.split(threefry.key_data(key), 3)
    u, c = threefry.uniform(k_sel, x.shape), threefry.uniform(k_cat, x.shape)  # float32
    t = _shift_past_excluded(threefry.randint(k_tok, x.shape, 0, config.n_random), config)
    return mask_words_from_draws(x, w, u, c, t, config, config.exact_thresholds())
