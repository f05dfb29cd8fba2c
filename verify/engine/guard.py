"""One masker call, guarded: whatever the masker does, the harness gets a verdict back.

A masker is code the harness does not control. It may raise anything (`SystemExit` included),
hang, or be interrupted by the user. `call` turns each of these into something the runner and
the command-line tools handle:

* an `Exception` passes through unchanged, and `SystemExit` or any other `BaseException`
  becomes a `MaskerError`, an ordinary `Exception`: the runner records either as the failed
  check "masker runs without error" instead of stopping the whole run;
* with a `timeout`, a call that does not return in time becomes a `MaskerError` too; the call
  runs in a daemon thread, so a masker stuck forever cannot keep the process alive;
* `KeyboardInterrupt` (Ctrl-C, or a masker raising it) becomes `Interrupted`, still a
  `KeyboardInterrupt`, carrying how far the masker had got, so a tool can say so and exit 130.
"""

from __future__ import annotations

import threading
import time

__all__ = ["MaskerError", "Interrupted", "call", "seconds_per_token"]


class MaskerError(Exception):
    """A masker call raised, exited or did not return in time (the message says which)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a masker call.

    Attributes:
        masker: the masker's name.
        tokens: tokens the masker had been fed in calls that returned (call index times batch
            size), or None when unknown.
    """

    def __init__(self, masker: str, tokens: int | None):
        super().__init__(f"interrupted during masker {masker!r}")
        self.masker, self.tokens = masker, tokens


def call(adapter, x, seed: int, *, index: int = 0, timeout: float | None = None):
    """`adapter(x, seed)`, with every way it can go wrong turned into an `Exception`.

    Args:
        adapter: the masker behind the harness's interface (`verify.token.adapters.Adapter`).
        x: the batch, a torch tensor `[seq_len, batch]`.
        seed: the call's seed.
        index: the call's number in this masker's run (for messages).
        timeout: seconds the call may take; None waits forever.

    Raises:
        Exception: what the masker raised, unchanged.
        MaskerError: the masker raised a `BaseException` that is not an `Exception` (other than
            `KeyboardInterrupt`) or overran `timeout`.
        Interrupted: Ctrl-C (or a `KeyboardInterrupt` from the masker).
    """
    name = getattr(adapter, "name", repr(adapter))
    tokens_before = index * x.numel()
    if timeout is None:
        try:
            return adapter(x, seed)
        except KeyboardInterrupt:
            raise Interrupted(name, tokens_before) from None
        except Exception:
            raise
        except BaseException as e:  # noqa: BLE001 (SystemExit from a masker is its failure)
            raise _failure(e) from e
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = adapter(x, seed)
        except BaseException as e:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = e

    # a daemon thread: a masker that never returns must not keep the interpreter alive
    worker = threading.Thread(target=work, name=f"masker {name} call {index}", daemon=True)
    worker.start()
    try:
        worker.join(timeout)
    except KeyboardInterrupt:
        raise Interrupted(name, tokens_before) from None
    if worker.is_alive():
        raise MaskerError(f"call {index} did not return within {timeout:g} s")
    error = outcome.get("error")
    if isinstance(error, KeyboardInterrupt):
        raise Interrupted(name, tokens_before) from None
    if isinstance(error, Exception):
        raise error
    if error is not None:
        raise _failure(error) from error
    return outcome["value"]


def _failure(e: BaseException) -> MaskerError:
    if isinstance(e, SystemExit):
        return MaskerError(f"the masker called sys.exit({e.code!r})")
    return MaskerError(f"the masker raised {type(e).__name__}: {e}")


def seconds_per_token(adapter, x, seed: int, *, timeout: float | None = None) -> float | None:
    """Time one call on `x` after a warm-up call (compilation, caches); None when the masker
    fails (the run itself reports how). Ctrl-C propagates as a plain `KeyboardInterrupt` (no
    tokens of the run were fed yet)."""
    try:
        call(adapter, x.clone(), seed, timeout=timeout)
        start = time.perf_counter()
        call(adapter, x.clone(), seed, timeout=timeout)
    except Interrupted:
        raise KeyboardInterrupt from None
    except Exception:  # noqa: BLE001 (the run reports the failure; no estimate for it)
        return None
    return (time.perf_counter() - start) / x.numel()
