"""`python -m verify.exact`: exact mode must give identical masks in every backend and device.

Masks many batches with the same keys in every available backend (NumPy; PyTorch on CPU and
CUDA; JAX on CPU and GPU) and compares each output element by element with the NumPy
reference. On the first difference it prints the position and the three values (input, masked,
label) from both sides, and exits 1. Exit 0: all identical; exit 2: usage error; exit 130:
interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from mlm_ref import threefry
from . import cli
from .cli import progress
from .engine.frameworks import BACKENDS, Backend

# Configurations that stress every branch: defaults, exclusions (few and many), edge probs.
CONFIGS = [
    dict(padding_token=0, mask_token=103, no_mask_tokens=[101, 102], n_tokens=30522),
    dict(padding_token=0, mask_token=4, no_mask_tokens=[1, 2], n_tokens=50,
         masking_prob=0.5, randomize_prob=0.3, no_change_prob=0.3, random_exclude=[0, 1, 2, 4]),
    dict(padding_token=3, mask_token=0, n_tokens=5000, masking_prob=0.9, randomize_prob=0.5,
         no_change_prob=0.0, random_exclude=list(range(7, 200, 3))),
    dict(padding_token=1, mask_token=2, n_tokens=2, masking_prob=1.0, randomize_prob=1.0,
         no_change_prob=0.0),
]
SHAPES = [(128, 32), (1,), (7, 3, 5), (512, 61)]


def targets(device: str) -> list[tuple[Backend, str]]:
    """(backend, device) pairs that can run here; `device` is cpu, cuda or auto."""
    found = []
    for backend in BACKENDS.values():
        if not backend.available():
            continue
        accelerators = [] if backend.name == "numpy" or device == "cpu" else \
            _accelerators(backend)
        # cuda: accelerators where a backend has one, else its CPU; auto: both
        devices = accelerators if device == "cuda" and accelerators else ["cpu"] + accelerators
        found += [(backend, d) for d in devices]
    return found


def _accelerators(backend: Backend) -> list[str]:
    try:
        if backend.name == "torch":
            import torch
            return ["cuda"] if torch.cuda.is_available() else []
        import jax
        return ["cuda"] if jax.devices()[0].platform == "gpu" else []
    except Exception:  # a framework without a usable accelerator runs on the CPU only
        return []


def batch(rng: np.random.Generator, shape, cfg: dict, dtype) -> np.ndarray:
    """Ids with specials, padding and ids beyond the vocabulary mixed in."""
    specials = [cfg["padding_token"], cfg["mask_token"], *cfg.get("no_mask_tokens", [])]
    x = rng.integers(0, cfg["n_tokens"] + 3, size=shape)
    x = np.where(rng.random(shape) < 0.2, rng.choice(specials, size=shape), x)
    return x.astype(dtype)


def first_difference(want: np.ndarray, got: np.ndarray):
    diff = np.argwhere(want != got)
    return None if diff.size == 0 else tuple(int(i) for i in diff[0])


def compare(reference, others, x, key, where: str) -> bool:
    """Mask `x` with `key` everywhere; print the first difference, return whether all agree."""
    (ref_backend, _), ref_mlm = reference
    want = ref_backend.mask(ref_mlm, x, key=key)[:2]
    for (backend, device), mlm in others:
        got = backend.mask(mlm, x, key=key, device=device)[:2]
        for name, w, g in zip(("x_masked", "y"), want, got):
            pos = first_difference(w, g)
            if pos is not None:
                print(f"MISMATCH {where} key={key}: {name} differs at {pos}: input {x[pos]}, "
                      f"numpy/cpu gives ({want[0][pos]}, {want[1][pos]}), "
                      f"{backend.name}/{device} gives ({got[0][pos]}, {got[1][pos]})")
                return False
    return True


def run(batches: int, seed: int, device: str) -> int:
    found = targets(device)
    names = ", ".join(f"{b.name}/{d}" for b, d in found[1:])
    print(f"exact mode: comparing {names or 'nothing'} against the numpy/cpu reference")
    if len(found) < 2:
        print("only one backend is installed: nothing to compare against (install torch or jax)")
        return 0
    rng, start, done = np.random.default_rng(seed), time.perf_counter(), [0]
    bar = progress(len(CONFIGS) * batches, unit="batch")
    try:
        return _compare_configs(found, batches, seed, rng, bar, start, done)
    except KeyboardInterrupt:
        return cli.interrupted("verify.exact", tokens=done[0])
    finally:
        bar.close()


def _compare_configs(found, batches, seed, rng, bar, start, done) -> int:
    """Every configuration and batch; `done[0]` counts the tokens compared so far (for the
    Ctrl-C message)."""
    tokens = 0
    for c, cfg in enumerate(CONFIGS):
        maskers = [((b, d), b.mlm(**cfg)) for b, d in found]
        for i in range(batches):
            bar.update()
            shape, dtype = SHAPES[i % len(SHAPES)], (np.int32, np.int64)[i % 2]
            x = batch(rng, shape, cfg, dtype)
            # raw uint32[2] keys derived per (config, batch), as a training loop derives steps
            key = [int(k) for k in threefry.derive_key(seed, c, i)] if i % 3 else seed + i
            if not compare(maskers[0], maskers[1:], x, key, f"config {c} batch {i}"):
                return 1
            tokens += x.size
            done[0] = tokens
    print(f"identical: {len(CONFIGS) * batches} batches, {tokens} tokens per target, "
          f"{len(found)} targets, {time.perf_counter() - start:.1f} s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m verify.exact", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 identical, 1 a difference (printed), 2 usage error, "
               "130 interrupted (Ctrl-C).")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="cpu: CPU only; cuda: accelerators (falls back to the CPU where "
                             "a backend has none); auto: every device present (default)")
    parser.add_argument("--batches", type=int, default=24,
                        help="batches per configuration (default 24)")
    parser.add_argument("--seed", type=cli.seed, default=0,
                        help="base seed, in [0, 2**63 - batches] (default 0)")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error("--batches must be >= 1")
    if args.seed + args.batches > cli.MAX_SEED + 1:
        # batch i of the run uses the int key seed + i, which must fit in int64 too
        parser.error(f"--seed must be at most 2**63 - batches, "
                     f"{cli.MAX_SEED + 1 - args.batches}")
    try:
        return run(args.batches, args.seed, args.device)
    except KeyboardInterrupt:
        return cli.interrupted("verify.exact")


if __name__ == "__main__":
    sys.exit(main())
