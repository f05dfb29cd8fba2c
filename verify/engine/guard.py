"""Every call into the user's code, guarded: whatever it does, the gate gets a verdict back.

A masker, a pipeline or a pair generator is code the gate does not control. It may raise
anything (`SystemExit` included), hang, or be interrupted by the user. `run` (any call),
`iterate` (each step of an iterable the user's code returned) and `call` (one masker call of
the token-level gate) turn each of these into something the gates and the command-line tools
handle:

* an `Exception` passes through unchanged, and `SystemExit` or any other `BaseException`
  becomes a `UserCodeError` (also spelled `MaskerError`), an ordinary `Exception` whose message
  names the call: every gate records either as its failed check "... runs without error"
  instead of stopping the whole run;
* with a `timeout`, a call that does not return in time becomes a `UserCodeError` too; the call
  runs in a daemon thread, so code stuck forever cannot keep the process alive, and the gate
  goes on at once;
* a `KeyboardInterrupt` is the user's Ctrl-C, `Interrupted` (still a `KeyboardInterrupt`,
  carrying how far the run had got), so a tool can say so and exit 130. Under `watch_ctrl_c`
  (every command-line tool) a Ctrl-C is told apart from user code that merely raises
  `KeyboardInterrupt`: only a real SIGINT is `Interrupted`; the other is a `UserCodeError`.

Without a timeout the call runs in the calling thread: no thread, no extra work per call.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

__all__ = ["UserCodeError", "MaskerError", "Interrupted", "run", "iterate", "call",
           "seconds_per_token", "watch_ctrl_c", "reason"]


class UserCodeError(Exception):
    """A call into the user's code raised, exited or did not return in time (the message says
    which, naming the call)."""


# the token-level gate's older spelling
MaskerError = UserCodeError


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a call into the user's code.

    Attributes:
        masker: the name of the code that was running.
        tokens: tokens it had been fed in calls that returned, or None when unknown.
    """

    def __init__(self, masker: str, tokens: int | None):
        super().__init__(f"interrupted during {masker!r}")
        self.masker, self.tokens = masker, tokens


class _CtrlC:
    """Whether a command-line tool watches SIGINT, and whether the user pressed Ctrl-C."""

    watching = False
    pressed = False


def _on_sigint(signum, frame):
    _CtrlC.pressed = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def watch_ctrl_c():
    """Within this block a real Ctrl-C (SIGINT) is told apart from user code that raises
    `KeyboardInterrupt` itself (the handler is restored afterwards; a no-op off the main
    thread, where no signal handler can be installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer = _CtrlC.watching, _CtrlC.pressed  # a tool may run another tool's main
    previous = signal.signal(signal.SIGINT, _on_sigint)
    _CtrlC.watching, _CtrlC.pressed = True, False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _CtrlC.watching, _CtrlC.pressed = outer


def _is_ctrl_c() -> bool:
    """A `KeyboardInterrupt` just caught: the user's Ctrl-C (True), or raised by user code."""
    return _CtrlC.pressed or not _CtrlC.watching


def reason(e: Exception) -> str:
    """What went wrong, on one line: a `UserCodeError`'s message (it names the call already),
    `Type: message` for anything else the user's code raised."""
    text = str(e) if isinstance(e, UserCodeError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split())


def _failure(what: str, e: BaseException) -> UserCodeError:
    if isinstance(e, SystemExit):
        return UserCodeError(f"{what} called sys.exit({e.code!r})")
    return UserCodeError(f"{what} raised {type(e).__name__}: {e}".rstrip(": "))


def _settle(what: str, name: str, tokens: int | None, error: BaseException):
    """Raise what `error`, caught from the user's code, becomes."""
    if isinstance(error, KeyboardInterrupt) and _is_ctrl_c():
        raise Interrupted(name, tokens) from None
    if isinstance(error, Exception):
        raise error
    raise _failure(what, error) from error


def run(fn, *args, what: str, timeout: float | None = None, name: str | None = None,
        tokens: int | None = None, **kwargs):
    """`fn(*args, **kwargs)`, with every way it can go wrong turned into an `Exception`.

    Args:
        fn: the user's callable.
        *args, **kwargs: its arguments.
        what: the call in words, for messages (`"the masker"`, `"pipeline(epoch=0, ...)"`).
        timeout: seconds the call may take; None waits forever (and runs it in this thread).
        name: the user's code by name, for `Interrupted` (default: `what`).
        tokens: how far the run had got, for `Interrupted`.

    Raises:
        Exception: what the call raised, unchanged.
        UserCodeError: the call raised a `BaseException` that is not an `Exception` (a
            `KeyboardInterrupt` only when it was no Ctrl-C) or overran `timeout`.
        Interrupted: Ctrl-C.
    """
    name = what if name is None else name
    if timeout is None:
        try:
            return fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 (SystemExit from user code is its failure)
            _settle(what, name, tokens, e)
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = e

    # a daemon thread: code that never returns must not keep the interpreter alive
    worker = threading.Thread(target=work, name=f"user code: {what}", daemon=True)
    worker.start()
    try:
        worker.join(timeout)
    except KeyboardInterrupt:
        raise Interrupted(name, tokens) from None
    if worker.is_alive():
        raise UserCodeError(f"{what} did not return within {timeout:g} s")
    if "error" in outcome:
        _settle(what, name, tokens, outcome["error"])
    return outcome["value"]


def iterate(iterable, *, what: str, timeout: float | None = None, name: str | None = None):
    """Each item of `iterable` (what the user's code returned), every step under `run`: making
    the iterator and each `next` may raise, exit or hang like any call. Exceptions as `run`'s;
    `what` names the item (`"... item 3"`)."""
    iterator = run(iter, iterable, what=what, timeout=timeout, name=name)
    index = 0
    while True:
        try:
            yield run(next, iterator, what=f"{what}, item {index}", timeout=timeout, name=name)
        except StopIteration:
            return
        index += 1


def call(adapter, x, seed: int, *, index: int = 0, timeout: float | None = None):
    """One masker call of the token-level gate, `adapter(x, seed)` under `run`.

    Args:
        adapter: the masker behind the harness's interface (`verify.token.adapters.Adapter`).
        x: the batch, a torch tensor `[seq_len, batch]`.
        seed: the call's seed.
        index: the call's number in this masker's run (for messages).
        timeout: seconds the call may take; None waits forever.

    Raises:
        As `run`.
    """
    return run(adapter, x, seed, what=f"the masker (call {index})", timeout=timeout,
               name=getattr(adapter, "name", repr(adapter)), tokens=index * x.numel())


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
