"""On-device accumulation of everything the checks need, one batch at a time (each position's
outcome code is described in `host_counts`).

The contract says every probability holds conditionally on everything observable, so the
codes are tabulated against every stratum a masker could get wrong, each `[stratum, code]`:
position, batch column, call, segment (`[SEP]`s before the position), coarse id range, token
id, and how often the position's id occurs in its call. Pairs of codes are tabulated for
neighbouring positions, neighbouring columns, the same position in a replayed call (same input,
new seed) and in the next fresh call. Visible random ids are histogrammed per id, per id range,
and per id range against the original's range and against the position. Dispersion sums
(observed vs binomial variance of a count) are kept for the selected count per position of a
call (across its columns) and per id within a call. Nothing is read back until the run ends;
nothing is per-token in Python.
"""

from __future__ import annotations

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

from .host_counts import (CODES, COARSE_BINS, DISPERSION_MIN, FULL_HISTOGRAM_MAX,
                          ID_TABLE_MAX, INVARIANTS, PATTERN_MIN, POS_BUCKETS, REPEAT_CLASSES,
                          SEGMENTS, HostCounts, mask_share, repeated_patterns)
from .inputs import is_replay
from .power.joint import JointCounts

__all__ = ["Counts", "HostCounts", "INVARIANTS", "COARSE_BINS", "FULL_HISTOGRAM_MAX",
           "ID_TABLE_MAX", "CODES", "POS_BUCKETS", "SEGMENTS", "REPEAT_CLASSES",
           "DISPERSION_MIN", "PATTERN_MIN", "mask_share"]

class Counts:
    """Running sums for one masker over a run of `calls` calls, on `device`.

    Args:
        config: the masking parameters (eligibility, the random-id range).
        seq_len: length of the sequences fed (dimension 0).
        batch: number of sequences per call (dimension 1).
        calls: how many calls the run makes.
        device: where the counters live (the masker's device).
        start: the index of the first call counted here (a distributed run's rank counts a
            block of calls, `verify.engine.distributed`).
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, calls: int, device,
                 start: int = 0):
        self.config, self.seq_len, self.batch, self.device = config, seq_len, batch, device
        v = config.n_tokens
        self.full = v <= FULL_HISTOGRAM_MAX
        self.id_table = v <= ID_TABLE_MAX
        self.coarse = min(COARSE_BINS, v)
        z = lambda *n: torch.zeros(n, dtype=torch.int64, device=device)  # noqa: E731
        self.invariants = z(len(INVARIANTS))
        # one combined table: [stratum offset + stratum index, code]
        self._strata = {"pos": seq_len, "col": batch, "seg": SEGMENTS, "idbin": self.coarse,
                        "repeat": REPEAT_CLASSES, "nbr": 4, "id": v if self.id_table else 0}
        self._offset, o = {}, 0
        for k, size in self._strata.items():
            self._offset[k], o = o, o + size
        self.table = z(o * CODES)
        self.by_call = z(calls, CODES)
        self.pairs = z(4, CODES * CODES)        # seq neighbours, col neighbours, replay, fresh
        self.other_hist = z(v + 1) if self.full else None       # [n_tokens + 1]
        self.orig_hist = z(v + 1) if self.full else None        # [n_tokens + 1]
        c1 = self.coarse + 1
        self.coarse_other, self.coarse_orig = z(c1), z(c1)
        self.other_by_orig = z(self.coarse * c1)                # [orig bin, other bin]
        self.other_by_pos = z(POS_BUCKETS * c1)                 # [pos bucket, other bin]
        self.orig_by_pos = z(POS_BUCKETS * c1)                  # [pos bucket, orig bin]
        self.replay_same_other = z(2)           # (both other, and the same id) in replays
        self.seq_hist = z((seq_len + 1) ** 2)   # [n_eligible * (seq_len + 1) + n_selected]
        # a 64-bit fingerprint of each sequence's selected positions (0: too few selected)
        self.patterns = z(calls, batch)
        g = torch.Generator().manual_seed(0x5EED)
        self._pattern_weights = torch.randint(-2**63, 2**63 - 1, (seq_len, 1), generator=g,
                                              dtype=torch.int64).to(device)
        # dispersion sums per call: [call, position / id / [MASK] per sequence, 3], summed in
        # call order on the host (the same float sum whatever ranks counted which calls)
        self.dispersion = torch.zeros(calls, 3, 3, dtype=torch.float64, device=device)
        self.host_problems: dict[str, list[str]] = {}
        self._prev = None  # codes and outputs of the previous call
        self._input = None  # (input, what depends on it alone): a replay reuses it
        self._call = start
        self._first = None  # (index, codes) of the first call counted
        self._ineligible = torch.tensor(config.ineligible_tokens, dtype=torch.int64, device=device)
        self._exclude = torch.tensor(config.random_exclude, dtype=torch.int64, device=device)
        top = max(config.ineligible_tokens) + 1
        self._eligible_id = None                                    # [top] where small enough
        if top <= ID_TABLE_MAX:
            self._eligible_id = torch.ones(top, dtype=torch.bool, device=device)
            self._eligible_id[list(config.ineligible_tokens)] = False
        self._pos = torch.arange(seq_len, device=device)[:, None].expand(seq_len, batch)
        self._col = torch.arange(batch, device=device)[None, :].expand(seq_len, batch)
        self._pos_base = (self._pos * CODES).to(torch.int32).contiguous()    # [seq_len, batch]
        self._col_base = (self._col * CODES).to(torch.int32).contiguous()    # [seq_len, batch]
        self._sep = config.no_mask_tokens[-1] if config.no_mask_tokens else None
        self._p = config.masking_prob
        self._q_mask = mask_share(config) or 0.0  # 0: no [MASK] dispersion to count
        self.joint = JointCounts(config, seq_len, device, collisions=self.full)

    def problem(self, check: str, message: str):
        """Record an invariant violation seen on the host (shape, dtype, device, determinism)."""
        self.host_problems.setdefault(check, []).append(message)

    def _is_eligible(self, x: torch.Tensor) -> torch.Tensor:
        if self._eligible_id is None:
            return ~torch.isin(x, self._ineligible)
        # a table lookup is cheaper than isin; every id past the table is eligible
        top = self._eligible_id.numel()
        return torch.where(x < top, self._eligible_id[x.clamp(0, top - 1)], True)

    def _drawable(self, t: torch.Tensor) -> torch.Tensor:
        ok = (t >= 0) & (t < self.config.n_tokens)
        return ok & ~torch.isin(t, self._exclude) if self._exclude.numel() else ok

    @torch.no_grad()
    def update(self, x: torch.Tensor, x_after: torch.Tensor, out: torch.Tensor, y: torch.Tensor):
        """Add one call: `x` the harness's copy of the input, `x_after` the caller's input as it
        is after the call, `(out, y)` the masker's outputs, all `[seq_len, batch]` here. What
        depends on the input alone is computed once per input object (a replay passes the same
        one again)."""
        cfg = self.config
        x, x_after, out, y = (t.to(self.device, torch.int64) for t in (x, x_after, out, y))
        inp = self._input_terms(x)
        eligible = inp["eligible"]                                    # [seq_len, batch]
        labelled = y != cfg.padding_token                             # [seq_len, batch]
        sel = labelled & eligible                                     # [seq_len, batch]
        is_mask, is_orig = out == cfg.mask_token, out == x
        drawable_out = self._drawable(out)
        self.invariants += torch.stack([
            (x_after != x).sum(), (labelled & (y != x)).sum(), (~labelled & (out != x)).sum(),
            (labelled & ~eligible).sum(), (labelled & ~is_mask & ~is_orig & ~drawable_out).sum()])
        # int32 codes: half the memory traffic of int64 through every table below
        outcome = torch.where(is_mask, 0, torch.where(is_orig, 1, 2)).to(torch.int32)
        code = torch.where(sel, outcome + inp["sel_base"], inp["unsel_code"])  # [seq_len, batch]
        at_col = self._tables(inp, code)
        # fingerprints of the sequences with >= PATTERN_MIN selected and unselected positions:
        # two independent draws coincide there with probability < p^20 q^20 max(p,q)^(n-40),
        # below 1e-24 for every p, so a repeat means the masks are not drawn afresh
        both = (at_col[:, 2:].sum(1) >= PATTERN_MIN) & (at_col[:, 1] >= PATTERN_MIN)
        fingerprint = (sel.long() * self._pattern_weights).sum(0)     # wraps modulo 2**64
        self.patterns[self._call] = torch.where(both, fingerprint, 0)
        self._pairs(code, out)
        self._random_ids(x, out, code, drawable_out)
        self._sequences(at_col)
        self.joint.update(x, out, code, drawable_out, tables=not is_replay(self._call))
        if self._first is None:
            self._first = (self._call, code)
        self._prev = (code, out)
        self._call += 1

    def _input_terms(self, x: torch.Tensor) -> dict:
        """Everything that depends on the input alone, cached for the same input object."""
        if self._input is not None and self._input[0] is x:
            return self._input[1]
        v = self.config.n_tokens
        eligible = self._is_eligible(x)
        drawable_x = self._drawable(x)
        xi = x.clamp(0, v - 1)   # ids past the vocabulary are special ones: code 0
        terms = {"eligible": eligible, "xi": xi,
                 "sel_base": 2 + 3 * (~drawable_x).to(torch.int32),   # code of a [MASK] outcome
                 "unsel_code": eligible.to(torch.int32)}
        # the neighbourhood: whether the left and the right neighbour are eligible (an edge of
        # the sequence counts as ineligible): boundaries are where off-by-ones live
        edge = torch.zeros_like(eligible[:1])
        left = torch.cat([edge, eligible[:-1]]).to(torch.int32)
        right = torch.cat([eligible[1:], edge]).to(torch.int32)
        strata = {"pos": self._pos_base, "col": self._col_base,
                  "nbr": (2 * left + right) * CODES}
        if self._sep is not None:
            is_sep = (x == self._sep).to(torch.int32)
            strata["seg"] = (torch.cumsum(is_sep, 0, dtype=torch.int32) - is_sep) \
                .clamp_(max=SEGMENTS - 1) * CODES
        if not self.id_table:  # else the id ranges are summed from the id table on the host
            strata["idbin"] = (xi * self.coarse // v).to(torch.int32) * CODES
        else:
            occurrences = torch.bincount(torch.where(eligible, xi, v).flatten(),
                                         minlength=v + 1)[:v]                # [n_tokens]
            # how much more often than a uniform id the id occurs in this call, in octaves
            share = occurrences.to(torch.float64) * (v / xi.numel())
            rep = (torch.log2(share.clamp_(min=1e-9)) + REPEAT_CLASSES // 2).to(torch.int32) \
                .clamp_(0, REPEAT_CLASSES - 1)                               # [n_tokens]
            strata["repeat"] = rep[xi] * CODES
            strata["id"] = xi.to(torch.int32) * CODES
            terms["occurrences"] = occurrences
        terms["strata"] = strata
        self._input = (x, terms)
        return terms

    def _tables(self, inp: dict, code):
        """Add the code counts of every stratum, each into its own slice of the table."""
        per_call = {}
        for name, base in inp["strata"].items():
            lo, size = self._offset[name] * CODES, self._strata[name] * CODES
            per_call[name] = torch.bincount((base + code).flatten(), minlength=size)
            self.table[lo:lo + size] += per_call[name]
        if "occurrences" in inp:  # selected count of each id vs Binomial(its occurrences, p)
            v = self.config.n_tokens
            k = torch.bincount(torch.where(code >= 2, inp["xi"], v).flatten(),
                               minlength=v + 1)[:v]
            self._dispersion_terms(k, inp["occurrences"], 1)
        at_pos = per_call["pos"].view(self.seq_len, CODES)               # [seq_len, CODES]
        self.by_call[self._call] += at_pos.sum(0)
        # selected count at each position across the call's columns vs Binomial(eligible, p)
        self._dispersion_terms(at_pos[:, 2:].sum(1), at_pos[:, 1:].sum(1), 0)
        return per_call["col"].view(self.batch, CODES)                   # [batch, CODES]

    def _dispersion_terms(self, k, m, index: int, p: float | None = None):
        """Add sum (k - m p)^2 / (m p q), the group count and the summed variance of the terms
        over groups with m >= DISPERSION_MIN, to dispersion row `index` (`p`: masking_prob
        unless given)."""
        p = self._p if p is None else p
        if p <= 0.0 or p >= 1.0:
            return
        k, m = k.double(), m.double()
        use = m >= DISPERSION_MIN
        npq = torch.where(use, m * p * (1 - p), 1.0)
        term = torch.where(use, (k - m * p) ** 2 / npq, 0.0)
        var = torch.where(use, 2 + (1 - 6 * p * (1 - p)) / npq, 0.0)
        self.dispersion[self._call, index] += torch.stack([term.sum(), use.sum().double(),
                                                           var.sum()])

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
        self.replay_same_other += torch.stack([both.sum(), (both & (prev_out == out)).sum()])

    def _add_pairs(self, kind: int, first, second):
        self.pairs[kind] += torch.bincount((first * CODES + second).flatten(),
                                           minlength=CODES * CODES)

    def _random_ids(self, x, out, code, drawable_out):
        v, c = self.config.n_tokens, self.coarse
        # only selected positions matter here (about masking_prob of them): compact first
        at = torch.nonzero((code >= 2).flatten()).squeeze(1)                # [n_selected]
        x, out, code = x.flatten()[at], out.flatten()[at], code.flatten()[at]
        drawable_out, pos = drawable_out.flatten()[at], self._pos.flatten()[at]
        other = (code == 4) & drawable_out  # a visible random id, drawable original
        orig = code <= 4                    # drawable originals that a random draw could hit
        visible = ((code == 4) | (code == 7)) & drawable_out
        if self.full:
            self.other_hist += torch.bincount(torch.where(visible, out, v), minlength=v + 1)
            self.orig_hist += torch.bincount(torch.where(orig, x, v), minlength=v + 1)
        out_bin = torch.where(visible, out.clamp(0, v - 1) * c // v, c)
        x_bin = x.clamp(0, v - 1) * c // v
        if not self.full:  # else summed from the per-id histograms on the host
            self.coarse_other += torch.bincount(out_bin, minlength=c + 1)
            self.coarse_orig += torch.bincount(torch.where(orig, x_bin, c), minlength=c + 1)
        c1 = c + 1
        other_bin = torch.where(other, out_bin, c)
        self.other_by_orig += torch.bincount(torch.where(other, x_bin, 0) * c1 + other_bin,
                                             minlength=c * c1)
        bucket = pos * POS_BUCKETS // self.seq_len
        self.other_by_pos += torch.bincount(bucket * c1 + other_bin, minlength=POS_BUCKETS * c1)
        self.orig_by_pos += torch.bincount(bucket * c1 + torch.where(other, x_bin, c),
                                           minlength=POS_BUCKETS * c1)

    def _sequences(self, at_col):
        """Per sequence (column): the selected count, and [MASK] among selected drawable
        originals vs the binomial; `at_col` holds the call's code counts `[batch, CODES]`."""
        n1 = self.seq_len + 1
        idx = at_col[:, 1:].sum(1) * n1 + at_col[:, 2:].sum(1)             # [batch]
        self.seq_hist += torch.bincount(idx, minlength=n1 * n1)
        self._dispersion_terms(at_col[:, 2], at_col[:, 2:5].sum(1), 2, self._q_mask)

    def tensors(self) -> list[torch.Tensor]:
        """Every counter, each a sum over calls (per-call rows, `by_call`, `dispersion` and the
        `patterns` fingerprints, are zero where not counted)."""
        return [t for t in (self.invariants, self.table, self.by_call, self.pairs,
                            self.other_hist, self.orig_hist, self.coarse_other, self.coarse_orig,
                            self.other_by_orig, self.other_by_pos, self.orig_by_pos,
                            self.replay_same_other, self.seq_hist, self.dispersion,
                            self.patterns, *self.joint.tensors())
                if t is not None]

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
            t.zero_()
        self.host_problems.clear()
        self._call, self._prev, self._first = 0, None, None

    def add_fresh_pair(self, prev_code: torch.Tensor, code: torch.Tensor):
        """Count the fresh consecutive-call pair (`prev_code` of the call before, `code`)."""
        self._add_pairs(3, prev_code, code)

    def host(self) -> "HostCounts":
        """Everything, read back once, as NumPy arrays."""
        get = lambda t: None if t is None else t.cpu().numpy()  # noqa: E731
        c1, v = self.coarse + 1, self.config.n_tokens
        table = get(self.table).reshape(-1, CODES)
        strata = {k: table[self._offset[k]:self._offset[k] + size]
                  for k, size in self._strata.items() if size}
        coarse_other, coarse_orig = get(self.coarse_other), get(self.coarse_orig)
        # in call order, one call at a time: the sum a single running total would give
        dispersion = np.cumsum(get(self.dispersion), axis=0)[-1] if len(self.dispersion) \
            else np.zeros((3, 3))
        if self.full:
            edges = np.append(np.arange(v) * self.coarse // v, self.coarse)   # the last: rest
            coarse_other = np.bincount(edges, get(self.other_hist), c1).astype(np.int64)
            coarse_orig = np.bincount(edges, get(self.orig_hist), c1).astype(np.int64)
        if self.id_table:
            bins = np.arange(v) * self.coarse // v
            strata["idbin"] = np.stack([np.bincount(bins, strata["id"][:, c], self.coarse)
                                        for c in range(CODES)], axis=1).astype(np.int64)
        return HostCounts(
            invariants={k: int(v) for k, v in zip(INVARIANTS, get(self.invariants))},
            strata=strata, by_call=get(self.by_call)[:self._call],
            pairs=dict(zip(("seq", "col", "replay", "fresh"), get(self.pairs).reshape(
                4, CODES, CODES))),
            other_hist=get(self.other_hist), orig_hist=get(self.orig_hist),
            coarse_other=coarse_other, coarse_orig=coarse_orig,
            other_by_orig=get(self.other_by_orig).reshape(self.coarse, c1),
            other_by_pos=get(self.other_by_pos).reshape(POS_BUCKETS, c1),
            orig_by_pos=get(self.orig_by_pos).reshape(POS_BUCKETS, c1),
            replay_same_other=tuple(int(v) for v in get(self.replay_same_other)),
            repeated_patterns=repeated_patterns(get(self.patterns)[:self._call]),
            seq_hist=get(self.seq_hist).reshape(self.seq_len + 1, self.seq_len + 1),
            dispersion={level: tuple(float(v) for v in dispersion[i]) for i, level in
                        enumerate(("position in call", "id in call", "[MASK] per sequence"))},
            host_problems={k: list(v) for k, v in self.host_problems.items()},
            joint=self.joint.host())
