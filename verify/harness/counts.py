"""On-device accumulation of everything the checks need, one batch at a time.

Each call adds a handful of reductions and `bincount`s over the batch to int64 tensors that
live on the masker's device; nothing is read back to the host until the run ends, and nothing
is per-token in Python. So 1e9 tokens cost 1e9 / chunk updates of ~40 small kernels each, and
the memory held is a few histograms (vocabulary-sized at most), not the tokens.

What is decoded from the outputs (the harness is black-box): a position is *selected* when its
label is not `padding_token` (padding is never eligible, so a selected position's label, its
original token, cannot be padding). Its *outcome* is `mask` when the output is `mask_token`,
`original` when the output equals the input, `other` otherwise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

__all__ = ["Counts", "HostCounts", "SCALARS", "INVARIANTS", "COARSE_BINS", "FULL_HISTOGRAM_MAX"]

# Scalar counters, one int64 vector on the device. Pairs: (both eligible, first selected,
# second selected, both selected) for neighbours along the sequence, neighbouring batch
# columns, and the same position in consecutive calls.
SCALARS = ("tokens", "eligible", "selected",
           "seq_pairs", "seq_a", "seq_b", "seq_ab",
           "col_pairs", "col_a", "col_b", "col_ab",
           "call_pairs", "call_a", "call_b", "call_ab")
# Exact invariants counted on the device: the number of positions that violate each.
INVARIANTS = {
    "input not mutated": "positions of the caller's input changed by the call",
    "labels are padding or the original": "labels neither padding_token nor the input token",
    "unselected positions unchanged": "positions with a padding label whose output changed",
    "ineligible positions never selected": "padding/[MASK]/no-mask positions with a label",
    "replacements are [MASK], original or a drawable id":
        "selected outputs outside {mask_token, original} and outside the random-id range",
}
COARSE_BINS = 64
# Above this vocabulary size the per-id histogram (and the all-bins and per-id tests) is
# skipped; coarse bins still cover the whole range.
FULL_HISTOGRAM_MAX = 1 << 22


class Counts:
    """Running sums for one masker over a run, on `device`.

    Args:
        config: the masking parameters (eligibility, the random-id range).
        seq_len: length of the sequences fed (dimension 0).
        batch: number of sequences per call (dimension 1).
        device: where the counters live (the masker's device).
    """

    def __init__(self, config: MaskingConfig, seq_len: int, batch: int, device):
        self.config, self.seq_len, self.batch, self.device = config, seq_len, batch, device
        v = config.n_tokens
        self.full = v <= FULL_HISTOGRAM_MAX
        self.coarse = min(COARSE_BINS, v)
        z = lambda n: torch.zeros(n, dtype=torch.int64, device=device)  # noqa: E731
        self.scalars = z(len(SCALARS))
        self.invariants = z(len(INVARIANTS))
        self.pos_elig, self.pos_sel = z(seq_len), z(seq_len)     # [seq_len]
        self.col_elig, self.col_sel = z(batch), z(batch)         # [batch]
        self.outcomes = z(7)  # [drawable original?][mask, original, other] + unselected bin
        self.other_hist = z(v + 1) if self.full else None        # [n_tokens + 1]
        self.orig_hist = z(v + 1) if self.full else None         # [n_tokens + 1]
        self.coarse_other, self.coarse_orig = z(self.coarse + 1), z(self.coarse + 1)
        self.seq_hist = z((seq_len + 1) ** 2)  # [n_eligible * (seq_len + 1) + n_selected]
        self.host_problems: dict[str, list[str]] = {}
        self._prev = None  # (selected, eligible) of the previous call, for the call pairs
        self._ineligible = torch.tensor(config.ineligible_tokens, dtype=torch.int64, device=device)
        self._exclude = torch.tensor(config.random_exclude, dtype=torch.int64, device=device)

    def problem(self, check: str, message: str):
        """Record an invariant violation seen on the host (shape, dtype, device, determinism)."""
        self.host_problems.setdefault(check, []).append(message)

    def _drawable(self, t: torch.Tensor) -> torch.Tensor:
        ok = (t >= 0) & (t < self.config.n_tokens)
        return ok & ~torch.isin(t, self._exclude) if self._exclude.numel() else ok

    @torch.no_grad()
    def update(self, x: torch.Tensor, x_after: torch.Tensor, out: torch.Tensor, y: torch.Tensor):
        """Add one call: `x` the harness's copy of the input, `x_after` the caller's input as it
        is after the call, `(out, y)` the masker's outputs, all `[seq_len, batch]` here."""
        cfg = self.config
        x, x_after, out, y = (t.to(self.device, torch.int64) for t in (x, x_after, out, y))
        eligible = ~torch.isin(x, self._ineligible)                   # [seq_len, batch]
        labelled = y != cfg.padding_token                             # [seq_len, batch]
        sel = labelled & eligible                                     # [seq_len, batch]
        is_mask, is_orig = out == cfg.mask_token, out == x
        drawable_out = self._drawable(out)
        self.invariants += torch.stack([
            (x_after != x).sum(), (labelled & (y != x)).sum(), (~labelled & (out != x)).sum(),
            (labelled & ~eligible).sum(), (labelled & ~is_mask & ~is_orig & ~drawable_out).sum()])
        self._rates(eligible, sel)
        self._outcomes(x, out, sel, is_mask, is_orig, drawable_out)
        self._sequences(eligible, sel)

    def _rates(self, eligible, sel):
        e, s = eligible, sel                                          # [seq_len, batch]
        seq = _pairs(s[:-1], e[:-1], s[1:], e[1:])                    # along the sequence
        col = _pairs(s[:, :-1], e[:, :-1], s[:, 1:], e[:, 1:])        # across the batch
        # the same position in the previous call (the first call has no previous one)
        call = _pairs(*self._prev, s, e) if self._prev is not None else torch.zeros_like(seq)
        totals = torch.stack([torch.tensor(e.numel(), device=e.device), e.sum(), s.sum()])
        self.scalars += torch.cat([totals, seq, col, call])
        self.pos_elig += e.sum(1)
        self.pos_sel += s.sum(1)
        self.col_elig += e.sum(0)
        self.col_sel += s.sum(0)
        self._prev = (s, e)

    def _outcomes(self, x, out, sel, is_mask, is_orig, drawable_out):
        v, c = self.config.n_tokens, self.coarse
        category = torch.where(is_mask, 0, torch.where(is_orig, 1, 2))
        drawable_x = self._drawable(x)
        idx = torch.where(sel, drawable_x.long() * 3 + category, 6)
        self.outcomes += torch.bincount(idx.flatten(), minlength=7)
        other = sel & (category == 2) & drawable_out  # a random id that is visible as such
        orig = sel & drawable_x  # originals that a random draw could have hit
        if self.full:
            self.other_hist += torch.bincount(torch.where(other, out, v).flatten(), minlength=v + 1)
            self.orig_hist += torch.bincount(torch.where(orig, x, v).flatten(), minlength=v + 1)
        self.coarse_other += torch.bincount(torch.where(other, out * c // v, c).flatten(),
                                            minlength=c + 1)
        self.coarse_orig += torch.bincount(torch.where(orig, x * c // v, c).flatten(),
                                           minlength=c + 1)

    def _sequences(self, eligible, sel):
        n1 = self.seq_len + 1
        idx = eligible.sum(0) * n1 + sel.sum(0)  # [batch]
        self.seq_hist += torch.bincount(idx, minlength=n1 * n1)

    def host(self) -> "HostCounts":
        """Everything, read back once, as int64 NumPy arrays."""
        get = lambda t: None if t is None else t.cpu().numpy()  # noqa: E731
        return HostCounts(
            scalars={k: int(v) for k, v in zip(SCALARS, get(self.scalars))},
            invariants={k: int(v) for k, v in zip(INVARIANTS, get(self.invariants))},
            pos_elig=get(self.pos_elig), pos_sel=get(self.pos_sel),
            col_elig=get(self.col_elig), col_sel=get(self.col_sel),
            outcomes=get(self.outcomes)[:6].reshape(2, 3),
            other_hist=get(self.other_hist), orig_hist=get(self.orig_hist),
            coarse_other=get(self.coarse_other), coarse_orig=get(self.coarse_orig),
            seq_hist=get(self.seq_hist).reshape(self.seq_len + 1, self.seq_len + 1),
            host_problems={k: list(v) for k, v in self.host_problems.items()})


@dataclasses.dataclass
class HostCounts:
    """One masker's counts over a run, on the host: what every check and plot reads.

    Args:
        scalars: the counters of `SCALARS` by name (tokens, eligible, selected, and for each
            kind of pair: pairs with both eligible, first selected, second selected, both).
        invariants: positions that break each exact invariant of `INVARIANTS`.
        pos_elig, pos_sel: eligible and selected counts per position `[seq_len]`.
        col_elig, col_sel: the same per batch column `[batch]`.
        outcomes: selected positions by `[original drawable?, (mask, original, other)]`.
        other_hist: visible random replacements per id `[n_tokens + 1]` (None when the
            vocabulary is above `FULL_HISTOGRAM_MAX`); the last bin collects the rest.
        orig_hist: selected drawable originals per id, same layout.
        coarse_other, coarse_orig: the same over `COARSE_BINS` equal id ranges (+1 bin).
        seq_hist: sequences by `[n_eligible, n_selected]`.
        host_problems: breaches seen on the host (shape, dtype, determinism, errors), by check.
        seconds, shape, calls: how the run went (filled in by the runner).
    """

    scalars: dict[str, int]
    invariants: dict[str, int]
    pos_elig: np.ndarray
    pos_sel: np.ndarray
    col_elig: np.ndarray
    col_sel: np.ndarray
    outcomes: np.ndarray
    other_hist: np.ndarray | None
    orig_hist: np.ndarray | None
    coarse_other: np.ndarray
    coarse_orig: np.ndarray
    seq_hist: np.ndarray
    host_problems: dict[str, list[str]]
    seconds: float = 0.0
    shape: tuple[int, int] = (0, 0)
    calls: int = 0


def _pairs(sa, ea, sb, eb) -> torch.Tensor:
    """(pairs with both eligible, first selected, second selected, both selected)."""
    both = ea & eb
    return torch.stack([both.sum(), (sa & eb).sum(), (sb & ea).sum(), (sa & sb).sum()])
