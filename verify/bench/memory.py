"""Peak extra memory of the maskers, as a multiple of the input's size (CPU).

For each backend, mode and dtype, one call on `n` token ids: the peak of the memory the call
holds beyond what was held before it (its two outputs included), divided by the input's bytes.
NumPy's allocations are counted with `tracemalloc` (NumPy reports its buffers to it); torch's
CPU allocations are not, so for torch the process's peak resident set (`VmHWM`, reset through
`/proc/self/clear_refs`, Linux only) is read around the call instead. The input is made a
tensor or a JAX array before the call. Each measurement follows a warm-up call (a small one;
JAX's on the full shape, as it compiles per shape), so that one-time costs (imports, caches,
thread pools, compilation) are not counted.

    python -m verify.bench.memory [--n 16777216] [--dtypes uint8,int64] [--json]

`python -m verify.bench` runs each measurement in a fresh process (`measure_isolated`).

docs/exact-mode.md and docs/contract.md state the bound these numbers are held to;
`tests/test_memory_bound.py` checks it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import tracemalloc

import numpy as np

def config_kwargs(dtype: str) -> dict:
    """BERT's special ids, and a vocabulary as large as BERT's or as `dtype` holds."""
    return dict(padding_token=0, mask_token=103, no_mask_tokens=(101, 102),
                n_tokens=min(30522, int(np.iinfo(dtype).max) + 1))


def _batch(n: int, dtype: str) -> np.ndarray:
    """`n` ids in `dtype`: random ids with some padding, contiguous."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, config_kwargs(dtype)["n_tokens"], size=n, dtype=np.int64).astype(dtype)
    x[::16] = 0
    return x


def _numpy_call(mode: str, dtype: str):
    import mlm_ref
    config = mlm_ref.MaskingConfig(**config_kwargs(dtype))
    if mode == "native":
        return lambda x: mlm_ref.mask_tokens(x, config, rng=0)
    return lambda x: mlm_ref.mask_tokens_exact(x, config, key=0)


def _torch_call(mode: str, dtype: str):
    import torch
    import mlm_torch
    config = mlm_torch.MaskingConfig(**config_kwargs(dtype))
    if mode == "native":
        return lambda x: mlm_torch.mask_tokens(x, config, generator=torch.Generator()
                                               .manual_seed(0))
    return lambda x: mlm_torch.mask_tokens_exact(x, config, key=0)


def _jax_call(mode: str, dtype: str):
    """JAX has one mode (exact); `native` is the same call. Ids go in as JAX arrays (made
    before the call, as torch's tensors are: `_jax_input`); int64 ones under JAX's 64-bit
    mode, switched on around the call only."""
    import jax
    import mlm_jax
    config = mlm_jax.MaskingConfig(**config_kwargs(dtype))

    def call(x):
        with jax.enable_x64(np.dtype(dtype).itemsize == 8):
            return jax.block_until_ready(mlm_jax.mask_tokens(x, config, key=0))
    return call


def _jax_input(x: np.ndarray):
    """`x` as a JAX array on the CPU (the conversion holds a host copy and a device copy of
    the ids for a moment: it is the caller's data pipeline, not the masking call)."""
    import jax
    with jax.enable_x64(x.dtype.itemsize == 8):
        return jax.block_until_ready(jax.numpy.asarray(x))


def _peak_tracemalloc(call, x) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = call(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return peak - before


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _peak_rss(call, x) -> int:
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:   # resets VmHWM to the current RSS
        f.write("5")
    before = _status_kib("VmRSS")
    out = call(x)
    peak = _status_kib("VmHWM")
    del out
    return (peak - before) * 1024


def rss_available() -> bool:
    """Whether the torch measurement can run here (Linux with a resettable VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


def measure(n: int = 2**24, dtypes=("uint8", "int64"), backends=("numpy", "torch"),
            modes=("native", "exact")) -> list[dict]:
    """Peak extra bytes of one masking call, per backend, mode and dtype, on the CPU.

    Returns:
        One dict per measurement: backend, mode, dtype, n, input_bytes, peak_extra_bytes,
        multiple (peak_extra_bytes / input_bytes; the two outputs alone make 2), method.
    """
    rows = []
    for backend in backends:
        if backend in ("torch", "jax"):
            try:
                importlib.import_module(backend)
            except ImportError:
                continue
            if not rss_available():
                continue
        if backend == "jax":
            modes_here = ("exact",)  # JAX's only mode
        else:
            modes_here = modes
        for mode in (m for m in modes if m in modes_here):
            for dtype in dtypes:
                call = {"numpy": _numpy_call, "torch": _torch_call, "jax": _jax_call}[backend](
                    mode, dtype)
                x = _batch(n, dtype)
                if backend == "torch":
                    import torch
                    x = torch.from_numpy(x)
                elif backend == "jax":
                    x = _jax_input(x)
                # warm-up: JAX compiles for the full shape (its compiler's memory is not the
                # call's); the others on a slice
                call(x if backend == "jax" else x[:4096])
                if backend == "numpy":
                    peak, method = _peak_tracemalloc(call, x), "tracemalloc"
                else:
                    peak, method = _peak_rss(call, x), "VmHWM"
                nbytes = int(x.nbytes) if backend != "torch" else x.numel() * x.element_size()
                rows.append(dict(backend=backend, mode=mode, dtype=dtype, n=n,
                                 input_bytes=nbytes, peak_extra_bytes=int(peak),
                                 multiple=round(peak / nbytes, 2), method=method))
                del x
    return rows


def measure_isolated(n: int, dtypes, backends, modes=("native", "exact")) -> list[dict]:
    """`measure`, each backend, mode and dtype in a fresh Python process.

    The peak resident set counts only pages the call newly touches: in a process that has
    already allocated and freed more than the call needs (a benchmark after its timing), the
    allocator serves the call from pages already resident and the peak reads as ~0. A fresh
    process has no such pages.
    """
    import json
    import subprocess
    import sys
    rows = []
    for backend in backends:
        for mode in modes if backend != "jax" else [m for m in modes if m == "exact"]:
            for dtype in dtypes:
                cmd = [sys.executable, "-m", "verify.bench.memory", "--n", str(n), "--dtypes",
                       dtype, "--backends", backend, "--modes", mode, "--json"]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows += json.loads(done.stdout)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify.bench.memory",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2**24, help="token ids per call")
    parser.add_argument("--dtypes", default="uint8,int64")
    parser.add_argument("--backends", default="numpy,torch,jax")
    parser.add_argument("--modes", default="native,exact")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    args = parser.parse_args(argv)
    rows = measure(args.n, args.dtypes.split(","), args.backends.split(","),
                   tuple(args.modes.split(",")))
    if args.json:
        import json
        print(json.dumps(rows))
        return 0
    print(f"{'backend':8} {'mode':7} {'dtype':7} {'n':>11} {'input MiB':>10} "
          f"{'peak extra MiB':>15} {'multiple':>9}  method")
    for r in rows:
        print(f"{r['backend']:8} {r['mode']:7} {r['dtype']:7} {r['n']:>11} "
              f"{r['input_bytes'] / 2**20:>10.1f} {r['peak_extra_bytes'] / 2**20:>15.1f} "
              f"{r['multiple']:>9.2f}  {r['method']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
