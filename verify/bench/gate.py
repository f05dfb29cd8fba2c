"""The token gate's own speed: `python -m verify.stats --masker torch --tokens N` end to end, in a
fresh process as a user runs it (imports, the run, the seeded-once and call-shape runs, the
checks and the report), and the same at a small N: the difference is the run's marginal rate,
tokens per second once the fixed costs are paid. Its power per CI minute is this rate."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

__all__ = ["time_gate", "short", "GATE_TOKENS", "FIXED_TOKENS"]

GATE_TOKENS, FIXED_TOKENS = 10**8, 10**6


def _wall(masker: str, device: str, tokens: int) -> tuple[float, str]:
    """Seconds of one `verify.stats` run in a fresh process, and its verdict."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "report.json")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "verify.stats", "--masker", masker,
                               "--device", device, "--tokens", str(tokens), "--no-progress",
                               "--json", path], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        verdict = {0: "PASS", 1: "FAIL", 3: "INCONCLUSIVE"}.get(done.returncode)
        if verdict is None:
            raise RuntimeError(f"verify.stats exited {done.returncode}: "
                               f"{done.stderr.strip()[-300:]}")
    return seconds, verdict


def time_gate(device: str, masker: str = "torch", tokens: int = GATE_TOKENS,
              fixed_tokens: int = FIXED_TOKENS) -> dict:
    """The gate run at `tokens` and at `fixed_tokens`, timed end to end, alternated, twice each
    (a shared machine's noise shows as the spread); the rates from the best of each."""
    runs = {tokens: [], fixed_tokens: []}
    verdicts = set()
    for _ in range(2):
        for n in (tokens, fixed_tokens):
            seconds, verdict = _wall(masker, device, n)
            runs[n].append(seconds)
            verdicts.add(verdict)
    big, small = min(runs[tokens]), min(runs[fixed_tokens])
    from ..token.tally import compiled
    return {"masker": masker, "device": device, "tokens": tokens, "seconds": runs[tokens],
            "tokens_per_s": tokens / big, "fixed_tokens": fixed_tokens,
            "fixed_seconds": runs[fixed_tokens],
            "marginal_tokens_per_s": (tokens - fixed_tokens) / max(big - small, 1e-9),
            "verdicts": sorted(verdicts),
            "counting": compiled.status().split(" into ")[0] if device == "cpu" else "torch",
            "command": f"python -m verify.stats --masker {masker} --device {device} "
                       f"--tokens {short(tokens)}"}


def short(n: int) -> str:
    """`100000000` as `1e8` where that is exact, else as it is."""
    mantissa, _, exponent = f"{n:.0e}".partition("e")
    return f"{mantissa}e{int(exponent)}" if float(f"{mantissa}e{exponent}") == n else str(n)
