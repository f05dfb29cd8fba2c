"""Maskers that misbehave as a process, not statistically: they raise, exit, hang or are
interrupted. Each is a factory with the module description's keywords (`MODULE:ATTR`), built
on the correct masker of `tests.broken_maskers`, for the command-line reliability tests."""

from __future__ import annotations

import os
import signal
import threading
import time

import torch

from tests.broken_maskers import Correct


def factory_raises(**kw):
    raise RuntimeError("no GPU left for masking")


class _Nth(Correct):
    """Correct until its `after`-th call (counting from 1); from then on each call runs
    `self.act()` first."""

    after = 1

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        if self.calls >= self.after:
            self.act()
        return super().__call__(x)


class Exits(_Nth):
    def act(self):
        raise SystemExit(3)


class Hangs(_Nth):
    def act(self):
        threading.Event().wait()  # forever


class InterruptedOnFifthCall(_Nth):
    """Ctrl-C mid-run (a real SIGINT, as the terminal sends it): calls 1 and 2 are the time
    estimate's, 3 and 4 the run's first call and its determinism repeat, 5 the run's second
    call (after 65,536 tokens)."""

    after = 5

    def act(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal handler interrupts this at once


class SlowAndInterrupted(InterruptedOnFifthCall):
    """A tenth of a second per call: a long run at 3e7 tokens, stopped at call 5."""

    def __call__(self, x):
        time.sleep(0.1)
        return super().__call__(x)


def closure(**kw):
    masker = Correct(**kw)

    def f(x):
        return masker(x)
    return f


class RaisesOnCallTwo(Correct):
    """Raises on the run's call 2 (seed 0), recognised by its seed: the same call whichever
    process makes it (for the distributed tests)."""

    def __call__(self, x):
        from verify.token.inputs import derive_seed
        if torch.initial_seed() == derive_seed(0, "masker:tests.cli_maskers:RaisesOnCallTwo", 2):
            raise RuntimeError("call 2 refused")
        return super().__call__(x)
