"""The masker as users call it: seeded once and called many times, with nearby seeds.

The main run seeds every call afresh from a hashed seed. Users do otherwise: they seed once
(`torch.manual_seed(s)`, one `numpy.random.Generator`, one `torch.Generator`, one JAX key split
per step) and call the masker on batch after batch, and they seed ranks and workers with nearby
integers `s, s + 1, ...`. The contract's draws are independent in every call, so

* consecutive calls on one seeding (the same batch twice, as a second epoch would feed it, and
  then the next batch) must give independent selections, and
* the seedings `s` and `s + 1` must give independent selections on the same batches,

at every shift: a masker whose stream for seed `s + 1` is the stream of `s` moved by a few
positions (a seed used as a counter offset), or that restarts its stream on every call, has
correlation 1 at that shift. The correlations of the standardised selection indicators of two
calls at every shift of their flat order (the masker's own layout) come from summed cross
spectra (`spectra`, `lags_from_spectrum`: one FFT per call, one inverse per run); the checks
take the largest |z| over the shifts (Bonferroni).

How each kind of masker is seeded once: `numpy` gets one `numpy.random.Generator(PCG64(s))`
(`rng=`), `torch` one `torch.Generator` on the device (`generator=`), `jax` one
`jax.random.key(s)` split before each call (`key=`), any other masker one
`torch.manual_seed(s)` before its first call and none after.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mlm_ref.config import MaskingConfig

from ...engine.guard import call as guarded_call
from ..inputs import SyntheticBatches, derive_seed
from .joint import position_codes

__all__ = ["UsageCounts", "usage_run", "spectra", "lags_from_spectrum", "SEEDINGS", "USAGE_SEQ",
           "USAGE_BATCH", "extra_tokens", "flat_order", "standardised_selection",
           "changed_positions", "masked_copy", "first_broken"]

SEEDINGS = 4            # nearby seeds s, s + 1, s + 2, s + 3
USAGE_SEQ, USAGE_BATCH = 128, 31  # one of the call shapes too (a compiling masker: once)
USAGE_BLOCK = 64        # calls coded at once (memory bounded whatever the run's length)
EXTRA_SHARE, EXTRA_MIN = 32, 1 << 16


def extra_tokens(tokens: int) -> int:
    """Tokens of each extra run (seeded once, call shapes): 1/32 of the main run's, at least
    65,536, so that `make verify` grows by about 6%."""
    return max(tokens // EXTRA_SHARE, EXTRA_MIN)


@dataclasses.dataclass
class UsageCounts:
    """What the checks read of the usage run.

    Args:
        codes: `[2, CODES]` code counts: calls right after seeding, later calls (both summed
            over the seedings).
        same_num, same_var, same_lags: summed products and null variances of the selection
            correlations of consecutive calls on one seeding, per shift (`same_lags`).
        near_num, near_var, near_lags: the same for seeds `s` and `s + 1`, call by call.
        calls: calls made; problems: what went wrong (the run stops at the first).
        mutated: positions of the caller's inputs changed by these calls (added to "input not
            mutated"); mutated_at: the first call that changed its input, in words.
    """

    codes: np.ndarray
    same_num: np.ndarray
    same_var: np.ndarray
    near_num: np.ndarray
    near_var: np.ndarray
    lags: np.ndarray
    calls: int
    problems: list[str]
    mutated: int = 0
    mutated_at: str = ""


class _Seeded:
    """One seeding of a masker, called like an adapter (`(x, seed) -> (x_after, out, y,
    problems)`) but drawing from the state it was seeded with once."""

    def __init__(self, adapter, seed: int, device):
        self.adapter, self.name = adapter, adapter.name
        b = adapter.backend
        self.kind = "external" if b is None else b.name
        if self.kind == "numpy":
            self.state = np.random.default_rng(seed)
        elif self.kind == "torch":
            self.state = torch.Generator(device=torch.device(device)).manual_seed(seed)
        elif self.kind == "jax":
            import jax
            self.state = jax.random.key(seed)
        else:
            torch.manual_seed(seed)
            self.state = None

    def __call__(self, x: torch.Tensor, seed: int):
        a = self.adapter
        x_in = x.T.contiguous() if a.layout == "batch-seq" else x
        if self.kind == "external":
            result = a.masker(x_in)
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                raise TypeError(f"{a.name} must return (x_masked, y), got "
                                f"{type(result).__name__}")
            out, y = result
            problems = _torch_problems(out, y, x_in)
            after = x_in
        else:
            out, y, after, problems = self._ours(x_in)
        if problems:
            return x, out, y, problems
        back = (lambda t: t.T) if a.layout == "batch-seq" else (lambda t: t)
        return back(after), back(out), back(y), []

    def _ours(self, x):
        b, mlm = self.adapter.backend, self.adapter.masker
        native = b.from_torch(x)
        if self.kind == "numpy":
            out, y = b.call(mlm, native, seed=self.state)          # rng= the one Generator
        elif self.kind == "torch":
            out, y = mlm(native, generator=self.state)
        else:
            import jax
            self.state, sub = jax.random.split(self.state)
            out, y = b.call(mlm, native, key=sub)
        problems = b.problems(out, y, native)
        if problems:
            return out, y, x, problems
        return (b.to_torch(out, x.device), b.to_torch(y, x.device),
                b.to_torch(native, x.device), [])


def _torch_problems(out, y, x) -> list[str]:
    from ...engine.frameworks import BACKENDS
    return BACKENDS["torch"].problems(out, y, x)


def changed_positions(x_ref: torch.Tensor, x_after) -> int:
    """Positions of the input `x_ref` that the call changed in the caller's copy `x_after`
    (all of them when the copy lost its shape)."""
    if not isinstance(x_after, torch.Tensor) or x_after.shape != x_ref.shape:
        return int(x_ref.numel())
    return int((x_after.to(x_ref.device, torch.int64) != x_ref).sum())


def masked_copy(fn, x_ref: torch.Tensor, seed: int, dtype, *, index: int, timeout):
    """One guarded call of `fn` (an adapter or a `_Seeded`) on a copy of `x_ref`: `(out, y,
    problems, changed)`, `changed` the positions of the copy it wrote into; a raise is a
    problem (the masker's failure, reported as such). Without problems, `out` and `y` are the
    harness's own int64 copies on `x_ref`'s device: a masker may hand back the same buffers
    on every call, and the runs keep several calls' outputs to count them together."""
    try:
        x_after, out, y, bad = guarded_call(fn, x_ref.to(dtype, copy=True), seed, index=index,
                                            timeout=timeout)
    except Exception as e:  # noqa: BLE001
        return None, None, [f"{type(e).__name__}: {e}"], 0
    if not bad:
        out, y = (t.to(x_ref.device, torch.int64, copy=True) for t in (out, y))
    return out, y, bad, changed_positions(x_ref, x_after)


def first_broken(config: MaskingConfig, calls, ineligible) -> int | None:
    """The first of `calls` (`(x, out, y)` each) whose outputs break an invariant, or None;
    for runs that code their calls together and find one only when the whole broke one."""
    return next((j for j, (x, out, y) in enumerate(calls)
                 if int(position_codes(config, x, out, y, ineligible)[1].sum())), None)


def flat_order(t: torch.Tensor, layout: str) -> torch.Tensor:
    """`t` (`[..., seq_len, batch]`: one call, or a leading axis of calls) flattened in the
    order the masker saw each call: `[n]`, or `[calls, n]`."""
    return (t.transpose(-1, -2) if layout == "batch-seq" else t).flatten(-2)


def standardised_selection(code: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(selected - p) / sqrt(p q) at eligible positions, 0 elsewhere; and the eligible mask, as
    float64 vectors."""
    eligible = (code >= 1).double()
    sel = (code >= 2).double()
    return (sel - p * eligible) / np.sqrt(p * (1 - p)), eligible


def spectra(z: torch.Tensor, e: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Fourier transforms of `z` and `e` along their last axis (a row per call), zero-padded
    to `size` (at least twice their length, so that correlations do not wrap around)."""
    return torch.fft.rfft(z, size), torch.fft.rfft(e, size)


def lags_from_spectrum(spectrum: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """sum_i a_i b_{i+L} for L = -(n-1) .. n-1 from the summed `conj(A) * B` of length-`n`
    vectors padded to `size`: one inverse transform for all the pairs summed."""
    c = torch.fft.irfft(spectrum, size)
    return torch.cat([c[size - n + 1:], c[:n]])


def _seeding(seeded, refs: list, config: MaskingConfig, ineligible, *, first_index: int,
             timeout):
    """One seeding's calls on the batches `refs`, made in order, then coded at once: `(codes
    [calls counted, seq, batch] or None, changed positions of each call through the one that
    stopped, stop)`, `stop` None or `(call, what went wrong)`: the first call that raised or
    broke an invariant, as if the calls after it had not been made."""
    outs, changes, stop = [], [], None
    for j, x_ref in enumerate(refs):
        out, y, bad, changed = masked_copy(seeded, x_ref, 0, seeded.adapter.dtype,
                                           index=first_index + j, timeout=timeout)
        changes.append(changed)
        if bad:
            stop = (j, bad[0])
            break
        outs.append((out, y))
    if not outs:
        return None, changes, stop
    code, broken = position_codes(config, torch.stack(refs[:len(outs)]),      # [calls, ...]
                                  *(torch.stack(t) for t in zip(*outs)), ineligible)
    if int(broken.sum()):  # writing into the input: "input not mutated" says it
        first = first_broken(config, ((x, *o) for x, o in zip(refs, outs)), ineligible)
        stop = (first, "outputs break the contract's invariants")
    counted = len(outs) if stop is None else stop[0]
    return code[:counted], changes[:counted + 1], stop


def usage_run(adapter, config: MaskingConfig, *, tokens: int, seed: int, device,
              timeout: float | None = None) -> UsageCounts | None:
    """Seed `adapter` once per nearby seed and call it on the same batches; None when
    `masking_prob` leaves nothing random to compare. A seeding's calls are made in order and
    coded and transformed `USAGE_BLOCK` at a time (the first call that raised or broke an
    invariant ends the run there, as if the calls after it had not been made)."""
    p = config.masking_prob
    if not 0 < p < 1:
        return None
    n = USAGE_SEQ * USAGE_BATCH
    calls = max(2, 2 * round(extra_tokens(tokens) / (SEEDINGS * n * 2)))
    batches = SyntheticBatches(config, USAGE_SEQ, USAGE_BATCH, device,
                               derive_seed(seed, "usage inputs", 0))
    ineligible = torch.tensor(config.ineligible_tokens, dtype=torch.int64, device=device)
    base = derive_seed(seed, "usage seed", 0) & 0x7FFFFFFF
    size = 1 << (2 * n - 1).bit_length()
    codes = np.zeros((2, 8), np.int64)
    # summed cross spectra (selection products, eligible pairs) of the pairs compared
    same = [torch.zeros(size // 2 + 1, dtype=torch.complex128, device=device) for _ in range(2)]
    near = [torch.zeros_like(same[0]) for _ in range(2)]
    problems, made, previous = [], 0, [None] * calls      # previous: the last seeding's spectra
    mutated, mutated_at = 0, ""
    for s in range(SEEDINGS):
        seeded, where, last = _Seeded(adapter, base + s, device), f"seed {base + s}", None
        for start in range(0, calls, USAGE_BLOCK):  # a block of calls at a time: bounded memory
            refs = [batches.reference(j) for j in range(start, min(calls, start + USAGE_BLOCK))]
            code, changes, stop = _seeding(seeded, refs, config, ineligible, first_index=made,
                                           timeout=timeout)
            for j, changed in enumerate(changes, start):
                if changed:     # every call the gate makes keeps the caller's input
                    mutated += changed
                    mutated_at = mutated_at or f"{where} set once, call {j} after it"
            counted = 0 if code is None else len(code)
            if counted:
                parts = ((0, code[:1]), (1, code[1:])) if start == 0 else ((1, code),)
                for row, part in parts:                        # right after seeding, later
                    codes[row] += np.bincount(part.flatten().cpu().numpy(), minlength=8)[:8]
                fz, fe = spectra(*standardised_selection(flat_order(code, adapter.layout), p),
                                 size)
                for j in range(counted):  # in call order: the sums of one call at a time
                    now = (fz[j], fe[j])
                    for sums, other in ((same, last), (near, previous[start + j])):
                        if other is not None:              # the call before, the seed before
                            sums[0] += torch.conj(other[0]) * now[0]
                            sums[1] += torch.conj(other[1]) * now[1]
                    last = previous[start + j] = now
                made += counted
            if stop is not None:
                problems.append(f"{where} set once, call {start + stop[0]} after it: {stop[1]}")
                break
        if problems:
            break
    same_num, same_var, near_num, near_var = (lags_from_spectrum(t, n, size)
                                              for t in (*same, *near))
    same_var, near_var = torch.round(same_var), torch.round(near_var)
    get = lambda t: t.cpu().numpy()  # noqa: E731
    return UsageCounts(codes=codes, same_num=get(same_num), same_var=get(same_var),
                       near_num=get(near_num), near_var=get(near_var),
                       lags=np.arange(-(n - 1), n), calls=made, problems=problems,
                       mutated=mutated, mutated_at=mutated_at)
