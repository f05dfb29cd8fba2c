"""Accumulation, where the masker ran, of everything the checks need, one batch at a time (each
position's outcome code is described in `host_counts`): torch tensors on a GPU; NumPy arrays on
a CPU (reading the tensors' own memory) and for a pipeline's stream.

The contract says every probability holds conditionally on everything observable, so the
codes are tabulated against every stratum a masker could get wrong, each `[stratum, code]`:
position, batch column, call, segment (`[SEP]`s before the position), coarse id range, token
id, and how often the position's id occurs in its call. Pairs of codes are tabulated for
neighbouring positions, neighbouring columns, the same position in a replayed call (same input,
new seed) and in the next fresh call. Visible random ids are histogrammed per id, per id range,
and per id range against the original's range and against the position. Dispersion sums
(observed vs binomial variance of a count) are kept for the selected count per position of a
call (across its columns) and per id within a call. Nothing is read back until the run ends;
nothing is per-token in Python; what derives from an input alone is counted once per input.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine.frameworks import array_namespace
from ..engine.moments import dispersion_terms
from .host_counts import (CODES, COARSE_BINS, DISPERSION_MIN, FULL_HISTOGRAM_MAX,
                          ID_TABLE_MAX, INVARIANTS, PATTERN_MIN, POS_BUCKETS, REPEAT_CLASSES,
                          SEGMENTS, HostCounts, is_replay, mask_share, read_back)
from .tally import compiled as compiled_counts
from .tally.input_terms import derive_input_terms
from .power.joint import JointCounts
from .random_ids import RandomIdCounts

__all__ = ["Counts", "HostCounts", "INVARIANTS", "COARSE_BINS", "FULL_HISTOGRAM_MAX",
           "ID_TABLE_MAX", "CODES", "POS_BUCKETS", "SEGMENTS", "REPEAT_CLASSES",
           "DISPERSION_MIN", "PATTERN_MIN", "mask_share"]

class Step(NamedTuple):
    """One call under way (`Counts.begin`): its arrays, and the two halves still to run."""

    arrays: dict
    halves: tuple


class Counts:
    """Running sums for one masker over a run of `calls` calls, on `device`.

    Args:
        config: the masking parameters (eligibility, the random-id range).
        seq_len, batch: the shape of every call (`[seq_len, batch]`).
        calls: how many calls the run makes.
        device: where the counters live (the masker's device).
        start: the index of the first call counted here (a distributed run's rank counts a
            block of calls, `verify.engine.distributed`).
        arrays: `"torch"` (tensors on `device`: the token gate on a GPU) or `"numpy"` (the
            token gate on a CPU; a pipeline's stream, counted without torch); one code counts
            both (`verify.engine.frameworks`).
        compiled: count NumPy arrays with the C pass where it is built (`compiled_counts`);
            False: the NumPy formulation (the same counts).
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, calls: int, device,
                 start: int = 0, arrays: str = "torch", compiled: bool = True):
        self.config, self.seq_len, self.batch, self.device = config, seq_len, batch, device
        self.xp = xp = array_namespace(arrays)
        v = config.n_tokens
        self.full, self.id_table, self.coarse = (v <= FULL_HISTOGRAM_MAX, v <= ID_TABLE_MAX,
                                                 min(COARSE_BINS, v))
        z = lambda *n: xp.zeros(n, xp.int64, device)  # noqa: E731
        self.invariants = z(len(INVARIANTS))
        # one combined table: [stratum offset + stratum index, code]
        self.strata_sizes = {"pos": seq_len, "col": batch, "seg": SEGMENTS, "idbin": self.coarse,
                        "repeat": REPEAT_CLASSES, "nbr": 4, "id": v if self.id_table else 0}
        self.offset, o = {}, 0
        for k, size in self.strata_sizes.items():
            self.offset[k], o = o, o + size
        self.table = z(o * CODES)
        self.by_call = z(calls, CODES)
        self.pairs = z(4, CODES * CODES)        # seq neighbours, col neighbours, replay, fresh
        self.random_ids = RandomIdCounts(config, seq_len, batch, device, xp)
        self.replay_same_other = z(2)           # (both other, and the same id) in replays
        self.seq_hist = z((seq_len + 1) ** 2)   # [n_eligible * (seq_len + 1) + n_selected]
        # a 64-bit fingerprint of each sequence's selected positions (0: too few selected)
        self.patterns = z(calls, batch)
        weights = np.random.default_rng(0x5EED).integers(-2**63, 2**63 - 1, (seq_len, 1))
        self._pattern_weights = xp.asarray(weights, xp.int64, device)
        # dispersion sums per call: [call, position / id / [MASK] per sequence, 3], summed in
        # call order on the host (the same float sum whatever ranks counted which calls)
        self.dispersion = xp.zeros((calls, 3, 3), xp.float64, device)
        self.host_problems: dict[str, list[str]] = {}
        self._prev = None  # codes and outputs of the previous call
        self._input = None  # (input, what depends on it alone): a replay reuses it
        self._call = start
        self._first = None  # (index, codes) of the first call counted
        self._ineligible = xp.asarray(list(config.ineligible_tokens), xp.int64, device)
        self._exclude = xp.asarray(list(config.random_exclude), xp.int64, device)
        # lookup tables where small enough: whether an id may be selected, [top + 1] (every id
        # from `top` on eligible, negative ones as id 0), and whether an id + 1 is drawable,
        # [n_tokens + 2] (the ends: below 0 or past the vocabulary)
        top = max(config.ineligible_tokens) + 1
        self.eligible_table = self.drawable_table = None
        if top <= ID_TABLE_MAX:
            self.eligible_table = xp.ones(top + 1, xp.bool, device)
            self.eligible_table[list(config.ineligible_tokens)] = False
        if self.id_table:
            drawable = np.zeros(config.n_tokens + 2, bool)
            drawable[1:-1] = True
            drawable[np.asarray(config.random_exclude, np.int64) + 1] = False
            self.drawable_table = xp.asarray(drawable, xp.bool, device)
        self.sep = config.no_mask_tokens[-1] if config.no_mask_tokens else None
        self._p = config.masking_prob
        self._q_mask = mask_share(config) or 0.0  # 0: no [MASK] dispersion to count
        self.joint = JointCounts(config, seq_len, device, collisions=self.full, xp=xp)
        # the per-position passes in C where they can run (`compiled_counts`; same counts)
        self.compiled = (compiled and xp.name == "numpy" and self.drawable_table is not None
                          and self.eligible_table is not None
                          and compiled_counts.library() is not None)
        self._seen = (np.zeros(v, np.int64), np.zeros(v, np.int64)) if self.compiled else None

    def problem(self, check: str, message: str):
        """Record an invariant violation seen on the host (shape, dtype, device, determinism)."""
        self.host_problems.setdefault(check, []).append(message)

    def is_eligible(self, x):
        if self.eligible_table is None:
            return ~self.xp.isin(x, self._ineligible)
        return self.xp.lookup(self.eligible_table, x)  # a table lookup is cheaper than isin

    def drawable(self, t):
        if self.drawable_table is not None:
            return self.xp.lookup(self.drawable_table, t + 1)
        ok = (t >= 0) & (t < self.config.n_tokens)
        return ok & ~self.xp.isin(t, self._exclude) if self.xp.numel(self._exclude) else ok

    def update(self, x, x_after, out, y, terms: dict | None = None):
        """Add one call: `x` the harness's copy of the input, `x_after` the caller's input as it
        is after the call, `(out, y)` the masker's outputs, all `[seq_len, batch]` here, as
        the counters' arrays. `terms`: `input_terms(x)` of a counter of this shape and config
        (maskers fed one input share them; default: computed, kept for a replay's input)."""
        step = self.begin(x, x_after, out, y, terms)
        for half in step.halves:
            half()
        self.end(step)

    def begin(self, x, x_after, out, y, terms: dict | None = None) -> Step:
        """`update` in three parts: this one, the call's codes; then the two `halves` of the
        returned step, which add them to disjoint counters (in any order, or at once on two
        threads); then `end(step)`. A counter takes one call at a time."""
        cfg, xp = self.config, self.xp
        x, x_after, out, y = (xp.asarray(t, xp.int64, self.device) for t in (x, x_after, out, y))
        inp = self.input_terms(x) if terms is None else terms
        if self.compiled:
            c = self._count_compiled(*map(np.ascontiguousarray, (x, x_after, out, y)), inp)
            return Step(c, (functools.partial(self._by_stratum, c),
                            functools.partial(self._by_selected, c)))
        labelled = y != cfg.padding_token                                  # [seq_len, batch]
        sel = labelled & inp["eligible"]                                   # [seq_len, batch]
        is_mask, is_orig = out == cfg.mask_token, out == x
        # int32 codes: half the memory traffic of int64 through every table below; outcome
        # 0 [MASK], 1 the original, 2 other, as (2 - is_orig)(1 - is_mask): no branches
        outcome = (2 - xp.astype(is_orig, xp.int32)) * (1 - xp.astype(is_mask, xp.int32))
        code = xp.select(sel, outcome + inp["sel_base"], inp["unsel_code"])  # [seq_len, batch]
        c = dict(x=x, x_after=x_after, out=out, y=y, inp=inp, labelled=labelled, sel=sel,
                 is_mask=is_mask, is_orig=is_orig, drawable_out=self.drawable(out), code=code,
                 at=xp.flatnonzero(sel))                                   # [n_selected]
        return Step(c, (functools.partial(self._by_stratum, c),
                        functools.partial(self._by_selected, c)))

    def _count_compiled(self, x, x_after, out, y, inp: dict) -> dict:
        """`begin` in C: the codes, invariants, pairs, fingerprints and stratum moves of the
        call, and its selected positions (`compiled_counts.count_call`)."""
        kind = 0 if self._prev is None else 2 if is_replay(self._call) else 3
        r = compiled_counts.count_call(
            x=x, x_after=x_after, out=out, y=y, terms=inp, drawable=self.drawable_table,
            prev=self._prev, prev_kind=kind, weights=self._pattern_weights.reshape(-1),
            offsets=tuple(self.offset[k] * CODES for k in ("pos", "col", "id", "repeat")),
            table_size=self.table.size, config=self.config, invariants=self.invariants,
            pairs=self.pairs, replay_same=self.replay_same_other)
        chosen = {k: r.pop(k) for k in ("at", "x", "out", "drawable_out")}
        chosen["code"] = r.pop("code_sel")
        return dict(inp=inp, out=out, at=chosen["at"], chosen=chosen, **r)

    def _by_stratum(self, c: dict) -> None:
        """The invariants, the stratum tables, the sequences: every position."""
        xp = self.xp
        if "moved" not in c:  # the NumPy formulation (else the C pass counted these)
            x, y, is_orig, labelled, count = c["x"], c["y"], c["is_orig"], c["labelled"], \
                xp.count_nonzero
            self.invariants += xp.stack([
                count(c["x_after"] != x), count(labelled & (y != x)),
                count(~labelled & ~is_orig), count(labelled & ~c["inp"]["eligible"]),
                count(labelled & ~c["is_mask"] & ~is_orig & ~c["drawable_out"])])
            c["moved"] = self._moved(c["inp"], c["code"], c["at"])
            c["fingerprint"] = (xp.astype(c["sel"], xp.int64) * self._pattern_weights).sum(0)
        at_col = self._add_table(c["inp"], c["moved"])
        # fingerprints of the sequences with >= PATTERN_MIN selected and unselected positions:
        # two independent draws coincide there with probability < p^20 q^20 max(p,q)^(n-40),
        # below 1e-24 for every p, so a repeat means the masks are not drawn afresh
        both = (at_col[:, 2:].sum(1) >= PATTERN_MIN) & (at_col[:, 1] >= PATTERN_MIN)
        self.patterns[self._call] = xp.where(both, c["fingerprint"], 0)  # sums mod 2**64
        self._sequences(at_col)

    def _by_selected(self, c: dict) -> None:
        """The pairs of codes, then the random-id and joint tables: the selected alone."""
        xp, code, at = self.xp, c["code"], c["at"]                           # at: [n_selected]
        if "chosen" in c:  # the C pass counted the pairs and picked the selected: C again
            compiled_counts.count_selected(
                chosen=c["chosen"], codes=code, columns=c["columns"],
                col_eligible=c["inp"]["col_eligible"], count_class=self.joint.count_class,
                random_ids=self.random_ids, joint=self.joint, scratch=self._seen,
                tables=not is_replay(self._call), pos_buckets=POS_BUCKETS)
            return
        self._pairs(code, c["out"])
        chosen = {"at": at, **{k: xp.take(c[k], at) for k in ("x", "out", "code",
                                                              "drawable_out")}}
        self.random_ids.update(**chosen)
        self.joint.update(code, tables=not is_replay(self._call), **chosen)

    def end(self, step: Step) -> None:
        """Close the call `step` began (after both halves)."""
        code, out = step.arrays["code"], step.arrays["out"]
        if self._first is None:
            self._first = (self._call, code)
        self._prev = (code, out)
        self._call += 1

    def input_terms(self, x) -> dict:
        """What the counts derive from the input `x` (int64) alone, kept for this object."""
        if self._input is not None and self._input[0] is x:
            return self._input[1]
        terms = derive_input_terms(self, x)
        self._input = (x, terms)
        return terms

    def _moved(self, inp: dict, code, at):
        """The call's moves in every stratum (each its own rows of the table), from the
        selected positions `at` alone: a selected position moves its row's count from code 1
        (eligible, unselected) to its code."""
        xp, code = self.xp, self.xp.take(code, at)                           # [n_selected]
        rows = [at // self.batch * CODES, at % self.batch * CODES]         # position, column
        rows += [xp.take(base, at) for base in inp["strata"].values()]
        names = ["pos", "col", *inp["strata"]]
        if "xi" in inp:
            xi = xp.take(inp["xi"], at)
            rows += [xi * CODES, xp.take(inp["rep"], xi) * CODES]
            names += ["id", "repeat"]
        rows = xp.concatenate([r + (self.offset[name] * CODES + code)
                               for name, r in zip(names, rows)])          # [strata * n_sel]
        return xp.bincount(rows, minlength=xp.numel(self.table))

    def _add_table(self, inp: dict, moved):
        """Add the call's code counts of every stratum: the input's unselected table plus the
        `moved` counts; then the dispersion sums they give. Returns `[batch, CODES]`."""
        xp, moved = self.xp, moved.reshape(-1, CODES)
        call = inp["unselected"] + moved                                    # [rows, CODES]
        call[:, 1] -= moved[:, 2:].sum(1)
        self.table += call.reshape(-1)
        if "occurrences" in inp:  # selected count of each id vs Binomial(its occurrences, p)
            o = self.offset["id"]
            self._dispersion_terms(moved[o:o + self.config.n_tokens, 2:].sum(1),
                                   inp["occurrences"], 1)
        o = self.offset["pos"]
        at_pos = call[o:o + self.seq_len]                                   # [seq_len, CODES]
        self.by_call[self._call] += at_pos.sum(0)
        # selected count at each position across the call's columns vs Binomial(eligible, p)
        self._dispersion_terms(at_pos[:, 2:].sum(1), at_pos[:, 1:].sum(1), 0)
        return call[self.offset["col"]:self.offset["col"] + self.batch]  # [batch, CODES]

    def _dispersion_terms(self, k, m, index: int, p: float | None = None):
        """Add the dispersion sum of counts `k` of `m` trials (`moments.dispersion_terms`, groups
        of DISPERSION_MIN trials or more) to row `index` (`p`: masking_prob unless given)."""
        p = self._p if p is None else p
        if 0.0 < p < 1.0:
            self.dispersion[self._call, index] += dispersion_terms(self.xp, k, m, p,
                                                                   DISPERSION_MIN)

    def _pairs(self, code, out):
        self._add_pairs(0, code[:-1], code[1:])              # neighbouring positions
        self._add_pairs(1, code[:, :-1], code[:, 1:])        # neighbouring columns
        if self._prev is None:
            return
        prev_code, prev_out = self._prev
        if not is_replay(self._call):
            self.add_fresh_pair(prev_code, code)
            return
        self._add_pairs(2, prev_code, code)
        both = (prev_code == 4) & (code == 4)
        count = self.xp.count_nonzero
        self.replay_same_other += self.xp.stack([count(both), count(both & (prev_out == out))])

    def _add_pairs(self, kind: int, first, second):
        self.pairs[kind] += self.xp.bincount((first * CODES + second).reshape(-1),
                                             minlength=CODES * CODES)

    def _sequences(self, at_col):
        """Per sequence: the selected count, and [MASK] among selected drawable originals vs
        the binomial, from the call's code counts per column `at_col` `[batch, CODES]`."""
        n1 = self.seq_len + 1
        idx = at_col[:, 1:].sum(1) * n1 + at_col[:, 2:].sum(1)             # [batch]
        self.seq_hist += self.xp.bincount(idx, minlength=n1 * n1)
        self._dispersion_terms(at_col[:, 2], at_col[:, 2:5].sum(1), 2, self._q_mask)

    def tensors(self) -> list:
        """Every counter, each a sum over calls (per-call rows, `by_call`, `dispersion` and the
        `patterns` fingerprints, are zero where not counted)."""
        return [self.invariants, self.table, self.by_call, self.pairs, self.replay_same_other,
                self.seq_hist, self.dispersion, self.patterns, *self.random_ids.tensors(),
                *self.joint.tensors()]

    @property
    def calls_counted(self) -> int:
        """The index after the last call counted (the run's calls so far, on this rank)."""
        return self._call

    @calls_counted.setter
    def calls_counted(self, value: int) -> None:
        self._call = int(value)

    @property
    def first_counted(self):
        """`(index, codes)` of the first call counted here, or None."""
        return self._first

    @property
    def last_codes(self):
        """The codes `[seq_len, batch]` of the last call counted here, or None."""
        return None if self._prev is None else self._prev[0]

    def restart(self) -> None:
        """Forget everything counted (a rank whose block lies after a stopped call)."""
        for t in self.tensors():
            t[...] = 0
        self.host_problems.clear()
        self._call, self._prev, self._first = 0, None, None

    def add_fresh_pair(self, prev_code, code):
        """Count the fresh consecutive-call pair (`prev_code` of the call before, `code`)."""
        self._add_pairs(3, prev_code, code)

    def host(self) -> HostCounts:
        """Everything, read back once, as NumPy arrays (`host_counts.read_back`)."""
        return read_back(self, {k: (self.offset[k], size) for k, size in self.strata_sizes.items()
                                if size})

