"""User code that misbehaves in each of six ways, for each gate's plug-in interface: a token
masker factory, a whole-word masker factory, a pipeline and an NSP generator, and a factory
that misbehaves itself (`factory_*`; `tests.bad_imports` misbehave while being imported)
(`tests/test_guard.py`). `BEHAVIOURS` names the six ways."""

import sys
import threading

BEHAVIOURS = ("raises", "exit0", "exit3", "hangs", "junk", "interrupt")


def act(behaviour: str):
    """Misbehave as `behaviour` says; `junk` returns something of the wrong type."""
    if behaviour == "raises":
        raise RuntimeError("boom from user code")
    if behaviour == "exit0":
        sys.exit(0)
    if behaviour == "exit3":
        sys.exit(3)
    if behaviour == "hangs":
        threading.Event().wait()  # forever: only the gate's --timeout ends it
    if behaviour == "interrupt":
        raise KeyboardInterrupt
    return "junk"


def _masker_factory(behaviour: str):
    def factory(**kwargs):
        def masker(*args, **kw):
            return act(behaviour)
        return masker
    return factory


def _factory(behaviour: str):
    def factory(**kwargs):
        return act(behaviour)
    return factory


def _pipeline(behaviour: str):
    def pipeline(*, epoch, rank, world_size):
        return act(behaviour)
    return pipeline


def _generator(behaviour: str):
    def generator(documents, *, seed, epoch=0, **kwargs):
        return act(behaviour)
    return generator


for _b in BEHAVIOURS:
    globals()[f"masker_{_b}"] = _masker_factory(_b)
    globals()[f"factory_{_b}"] = _factory(_b)
    globals()[f"pipeline_{_b}"] = _pipeline(_b)
    globals()[f"generator_{_b}"] = _generator(_b)
