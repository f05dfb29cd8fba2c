"""Joint laws of whole-word masking: draws of different words independent, counted and checked.

The WWM contract draws selection and category *per word, independently*: whatever one word
got says nothing about another word of the same sequence, of another sequence of the call, or
about a word that carries the same word id elsewhere. The marginal checks of `wwm_checks` pool
words, so a draw shared by many words (one category per sequence, one selection per row of a
call broadcast over its columns) keeps every marginal exact and passes them at any size. The
checks here look at the joint law:

* **concordance within groups**: for a group of words (a sequence; the words of one call that
  start at the same position; the words of one call with the same index in their sequence),
  the pairs of words with the same outcome, against what independent words give. Each pair's
  indicator is split (Hoeffding) into what the two outcomes' marginal laws explain and a
  degenerate remainder h2 = [c_i = c_j] - p_j(c_i) - p_i(c_j) + p_i . p_j, whose terms have
  mean 0, are uncorrelated between pairs and have an exact variance under independence. The
  laws p are estimated per stratum of words that share one law under the contract (length
  class, and for categories whether every piece is drawable), from the *other* calls of the run
  (so they are independent of the call's outcomes), and the estimate's O(1/n) bias is taken
  out. The sum of h2 over all pairs is tested as a normal score, two-sided: a shared draw gives
  too many concordant pairs, a draw forced to a quota (exactly 80% `[MASK]` per sequence) too
  few; a wrong marginal law (every word `[MASK]`) moves it only at second order and is left to
  the split checks.
* **same word id elsewhere**: a word and the next word of its sequence holding the same word id
  (a pair's segment B restarts the numbering; a word split by `[SEP]`) are different words:
  2 x 2 independence of their selections.
* **random pieces equal their original / show [MASK] at 1/V'**: a word with a piece showing
  an id other than `[MASK]` and its original is a random word for certain; each *other* piece
  of it is then an independent uniform draw, which equals its original (or `[MASK]`) with
  probability exactly 1/V' (0 for an original that cannot be drawn). Exact binomial,
  two-sided: a draw that avoids the original (or `[MASK]`) fails, so does one that favours it.
  (Which pieces are tested depends on the other pieces' outcomes; the mean is exact, the
  binomial variance holds up to a relative O(1/V'); `wwm_cells` tests these counts.)
* **category by stratum**: a selected word's category law is the same at every first
  position, in every call, and whether or not the eligible word before it was selected:
  `k x 3` homogeneity of (all `[MASK]`, all original, other or mixed).
* **replays**: a call's replay (same input, new seed) draws anew: a word selected in both
  calls has independent categories (the concordance above over these pairs), and a piece
  showing a random id in both shows the same id with probability 1/K, K the ids a visible
  draw can take (exact binomial, two-sided).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from mlm_ref.config import MaskingConfig

from ..engine.primitives import Check, chi2_check, contingency, rows_homogeneity
from .wwm_cells import cell_check
from .word_batches import SelectedPieces, WordLayout, segment_sums

__all__ = ["JointCounts", "joint_checks", "concordance_sums", "concordance_moments",
           "JOINT_STATISTICAL"]

JOINT_STATISTICAL = (
    "word categories independent within a sequence",
    "word categories independent across the sequences of a call (same first position)",
    "word categories independent across the sequences of a call (same word index)",
    "word selection independent across the sequences of a call (same first position)",
    "word selection independent across the sequences of a call (same word index)",
    "word selection independent of the next word with the same word id",
    "random pieces of a word equal their original at rate 1/V'",
    "random pieces of a word show [MASK] at rate 1/V'",
    "word categories independent of a replayed call (same input, new seed)",
    "random ids of a word differ between replays (same input, new seed)",
    "word category homogeneous over positions", "word category homogeneous over calls",
    "word category independent of the neighbouring word's selection")


def concordance_sums(group, stratum, cls, n_groups: int, n_strata: int,
                     n_classes: int) -> dict:
    """One call's sufficient sums for the concordance statistic of items in groups.

    Returns `observed` (same-class pairs within groups), `a[c, s]` (ordered pairs i != j of one
    group with `cls[i] = c`, `stratum[j] = s`), `b[s, s']` (ordered pairs i != j of one group by
    the strata of i and j) and `n[s, c]` (items per stratum and class)."""
    g, st, c = (np.asarray(v, np.int64) for v in (group, stratum, cls))
    k = _table(g, c, n_groups, n_classes)
    m = _table(g, st, n_groups, n_strata)
    n = _table(st, c, n_strata, n_classes)
    return {"observed": float((k * (k - 1) / 2).sum()), "a": k.T @ m - n.T,
            "b": m.T @ m - np.diag(n.sum(1)), "n": n}


def _table(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """Counts of (row, col) pairs as a float `[n_rows, n_cols]` table."""
    flat = np.bincount(rows * n_cols + cols, minlength=n_rows * n_cols)
    return flat.reshape(n_rows, n_cols).astype(np.float64)


def concordance_moments(calls: list[dict], total=None) -> tuple[float, float, float]:
    """(T, variance, pairs): T the sum over pairs of the degenerate remainder h2 with each
    call's laws estimated from the other calls (bias removed), its variance under independence
    (laws estimated from the whole run), and the number of pairs.

    Args:
        calls: `concordance_sums` per call; an entry's optional `exclude[s, c]` is what to
            leave out of the laws for it (default its own `n`).
        total: `[S, C]` counts the laws are estimated from (default the sum of the `n`)."""
    if not calls:
        return 0.0, 0.0, 0.0
    total = sum(c["n"] for c in calls) if total is None else total
    p_all = _laws(total)
    d_all = p_all @ p_all.T
    cube = (p_all ** 2) @ p_all.T                                   # sum_c p_sc^2 p_s'c
    v = d_all + d_all ** 2 - cube - cube.T                          # Var h2 by strata
    t, var, pairs = 0.0, 0.0, 0.0
    for c in calls:
        rest = total - c.get("exclude", c["n"])
        p = np.where(rest.sum(1, keepdims=True) > 0, _laws(rest), p_all)
        size = np.maximum(np.where(rest.sum(1) > 0, rest.sum(1), total.sum(1)), 1)
        dot = p @ p.T                                               # [S, S] p_s . p_s'
        bias = 0.5 * (np.diag(c["b"]) * (p * (1 - p)).sum(1) / size).sum()
        t += c["observed"] - (c["a"] * p.T).sum() + 0.5 * (c["b"] * dot).sum() - bias
        var += 0.5 * (c["b"] * v).sum()
        pairs += 0.5 * c["b"].sum()
    return t, var, pairs


def _laws(n: np.ndarray) -> np.ndarray:
    """Rows of counts as probability rows (zero rows stay zero)."""
    return n / np.maximum(n.sum(1, keepdims=True), 1)


class JointCounts:
    """Running sums of the joint-law checks over a WWM run (fed by `WordCounts.update`).

    Args:
        config: the masking parameters.
        length_classes: how many word length classes the strata use (`wwm_counts`).
    """

    GROUPS = ("sequence", "position", "index")

    def __init__(self, config: MaskingConfig, length_classes: int):
        self.config, self.length_classes = config, length_classes
        self.category = {k: [] for k in self.GROUPS}         # per call: concordance_sums
        self.selection = {k: [] for k in self.GROUPS[1:]}
        self.same_id = np.zeros((2, 2), np.int64)
        self.cell = {"original": np.zeros(3, np.int64),   # tests, hits, impossible hits
                     "mask": np.zeros(3, np.int64)}
        self.replay: list[dict] = []                          # concordance_sums per replay
        self.replay_ids = np.zeros(2, np.int64)               # (pieces random in both, equal)
        self._prev = None                                     # the last call's outcomes
        # selected words by (all [MASK], all original, other or mixed): per position bucket,
        # per call, and by whether the previous eligible word of the column was selected
        self.cat_by_pos, self.cat_by_call = np.zeros((16, 3), np.int64), []
        self.cat_by_nbr = np.zeros((2, 3), np.int64)

    def update(self, layout: WordLayout, sel: np.ndarray, cls: np.ndarray,
               pieces: SelectedPieces, call: int = 0, out=None):
        """Add one call (fed by `WordCounts.update`).

        Args:
            layout: the input's `WordLayout` (words in column-major run order).
            sel: per word, whether it was selected.
            cls: per selected word, its outcome class (0 all [MASK], 1 all original, 2 all
                other, 3 mixed).
            pieces: the selected words' pieces and their outcomes.
            call: the call's index (odd calls replay the one before).
            out: the outputs per position (column-major), for the replay's random ids.
        """
        lay, lcs = layout, self.length_classes
        stratum = lay.stratum
        if sel.any():
            for name, key in lay.keys.items():
                self.category[name].append(concordance_sums(
                    key[sel], stratum[sel], cls, lay.key_sizes[name], 2 * lcs, 4))
        if lay.eligible.any():
            for name in self.GROUPS[1:]:
                self.selection[name].append(_selection_sums(lay, name, sel))
        self.same_id += _pair_table(sel[lay.same_id[0]], sel[lay.same_id[1]])
        per_word = np.zeros(lay.n_words, np.int64)
        per_word[sel] = cls
        self._category_strata(lay, sel, np.minimum(cls, 2))
        self._cells(pieces)
        random = np.zeros(lay.run.size, bool)
        random[pieces.at[(pieces.code == 2) & pieces.drawable]] = True
        now = {"call": call, "sel": sel, "cls": per_word, "stratum": stratum, "out": out,
               "random": random, "n": _table(stratum[sel], cls, 2 * lcs, 4)}
        if self._prev is not None and call % 2 == 1 and self._prev["call"] == call - 1 \
                and self._prev["sel"].shape == sel.shape:
            self._replayed(self._prev, now)
        self._prev = now

    def _category_strata(self, lay: WordLayout, sel, three):
        """Outcomes of selected words (mixed merged with all other: their sum is the random
        share, the same for every length) by position, call and the previous word's selection
        (`three` per selected word)."""
        n = 16
        self.cat_by_pos += _rows(lay.start[sel] * n // lay.seq_len, three, n)
        self.cat_by_call.append(np.bincount(three, minlength=3)[:3])
        before = lay.prev_eligible[sel]               # the previous eligible word, or -1
        keep = before >= 0
        self.cat_by_nbr += _rows(sel[before[keep]].astype(np.int64), three[keep], 2)

    def _replayed(self, a: dict, b: dict):
        """A word selected in a call and in its replay: its two categories are independent
        draws (groups of two); a piece random in both shows equal ids at chance."""
        both = np.flatnonzero(a["sel"] & b["sel"])
        if both.size:
            group = np.repeat(np.arange(both.size), 2)
            take = lambda d, k: d[k][both]  # noqa: E731
            stratum = np.stack([take(a, "stratum"), take(b, "stratum")], 1).ravel()
            cls = np.stack([take(a, "cls"), take(b, "cls")], 1).ravel()
            sums = concordance_sums(group, stratum, cls, both.size, 2 * self.length_classes, 4)
            sums["exclude"] = a["n"] + b["n"]         # laws from calls other than these two
            self.replay.append(sums)
        if a["out"] is not None and b["out"] is not None:
            twice = a["random"] & b["random"]
            self.replay_ids += [int(twice.sum()), int((twice & (a["out"] == b["out"])).sum())]

    def _cells(self, p: SelectedPieces):
        """Pieces of selected words that another piece of theirs shows as an id other than
        [MASK] and its original (a random word for certain): equal to their original, or
        [MASK]."""
        other = p.code == 2
        certified = np.repeat(segment_sums(other, p.first), p.length) - other >= 1
        d, k = p.drawable, p.code
        self.cell["original"] += [_nz(certified & d), _nz(certified & d & (k == 1)),
                                  _nz(certified & ~d & (k == 1))]
        self.cell["mask"] += [_nz(certified), _nz(certified & (k == 0)), 0]


def _selection_sums(lay: WordLayout, key: str, sel: np.ndarray) -> dict:
    """`concordance_sums` of the eligible words grouped by `key`, stratified by length class,
    classes (not selected, selected): the tables of groups and strata come from the layout,
    the selected words are counted here."""
    m, per_group, per_stratum = lay.eligible_tables(key)
    size, lcs = lay.key_sizes[key], len(per_stratum)
    hit = np.bincount(lay.keys[key][sel], minlength=size)
    k = np.stack([per_group - hit, hit], axis=1).astype(np.float64)
    hit = np.bincount(lay.lc[sel], minlength=lcs)
    n = np.stack([per_stratum - hit, hit], axis=1).astype(np.float64)
    return {"observed": float((k * (k - 1) / 2).sum()), "a": k.T @ m - n.T,
            "b": m.T @ m - np.diag(n.sum(1)), "n": n}


def _pair_table(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`[2, 2]` counts of (a, b) for flags of pairs."""
    return np.bincount(a.astype(np.int64) * 2 + b, minlength=4).reshape(2, 2)


def _nz(flags: np.ndarray) -> int:
    return int(np.count_nonzero(flags))


def joint_checks(j: JointCounts, cfg: MaskingConfig, subject: str) -> dict:
    """{name: Check or None} of every joint-law check of one masker."""
    what = {"sequence": "of one sequence", "position": "of one call starting at the same row",
            "index": "of one call with the same index in their sequence"}
    names = iter(JOINT_STATISTICAL)
    made = {}
    for key in JointCounts.GROUPS:
        made[next(names)] = (j.category[key], f"selected words {what[key]}")
    for key in JointCounts.GROUPS[1:]:
        made[next(names)] = (j.selection[key], f"eligible words {what[key]} (selected or not)")
    made = {name: concordance_check(name, subject, sums, label)
            for name, (sums, label) in made.items()}
    made[JOINT_STATISTICAL[5]] = _same_id_check(j.same_id, subject)
    q = 1.0 / cfg.n_random
    made[JOINT_STATISTICAL[6]] = cell_check(JOINT_STATISTICAL[6], subject, *j.cell["original"],
                                            q, "pieces equal to their original")
    qm = q if cfg.is_random_id(cfg.mask_token) else 0.0
    made[JOINT_STATISTICAL[7]] = cell_check(JOINT_STATISTICAL[7], subject, *j.cell["mask"],
                                            qm, "pieces showing [MASK]")
    made[JOINT_STATISTICAL[8]] = concordance_check(
        JOINT_STATISTICAL[8], subject, j.replay, "a word selected in a call and in its replay",
        total=sum(c["n"] for c in j.category["sequence"]) if j.category["sequence"] else None)
    k = cfg.n_random - 1 - (1 if cfg.is_random_id(cfg.mask_token) else 0)
    made[JOINT_STATISTICAL[9]] = None if k < 2 else cell_check(
        JOINT_STATISTICAL[9], subject, *j.replay_ids, 0, 1.0 / k,
        "pieces showing a random id in a call and in its replay, equal ids", "increase")
    for name, table, what in (
            (JOINT_STATISTICAL[10], j.cat_by_pos, "buckets of the word's first position"),
            (JOINT_STATISTICAL[11], np.array(j.cat_by_call or np.zeros((0, 3))), "calls"),
            (JOINT_STATISTICAL[12], j.cat_by_nbr, "rows (previous eligible word not selected, "
                                                  "selected)")):
        made[name] = rows_homogeneity(name, subject, table, what + "; columns all [MASK], "
                                      "all original, other or mixed")
    return made


def concordance_check(name: str, subject: str, calls: list, what: str,
                      total=None) -> Check | None:
    """The summed degenerate remainder of same-outcome pairs (`concordance_moments`) as a
    normal score, two-sided. MDE: the absolute excess share of same-outcome pairs detected
    with 50% power."""
    t, variance, pairs = concordance_moments(calls, total)
    if pairs == 0 or variance <= 0:
        return None
    sd = math.sqrt(variance)
    z = t / sd
    observed = sum(c["observed"] for c in calls)

    def two(a):
        crit = float(stats.norm.isf(a / 2))
        return -crit, crit
    return Check.statistical(
        name, subject, z, two, float(min(1.0, 2 * stats.norm.sf(abs(z)))),
        lambda a: two(a)[1] * sd / pairs, "absolute share of same-outcome pairs", n=int(pairs),
        detail=f"pairs of {what}: same outcome {observed:.0f} of {pairs:.0f}, "
               f"{t:+.1f} beyond what independent words give (expected 0 +- {sd:.1f})")


def _rows(row: np.ndarray, col: np.ndarray, n_rows: int) -> np.ndarray:
    """`[n_rows, 3]` counts of (row, outcome) pairs."""
    return _table(np.asarray(row, np.int64), np.asarray(col, np.int64), n_rows, 3).astype(
        np.int64)


def _same_id_check(table: np.ndarray, subject: str) -> Check | None:
    stat, df, n = contingency(table)
    if df == 0:
        return None
    expected = table[1].sum() * table[:, 1].sum() / max(n, 1)
    return chi2_check(JOINT_STATISTICAL[5], subject, stat, df, n,
                      f"both selected {table[1, 1]} of {n} pairs, expected {expected:.1f}")
