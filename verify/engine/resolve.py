"""One resolver for the user's code named on a command line, `MODULE:ATTR`, for every gate.

Two kinds of failure are told apart. A spec that names nothing is a usage error (exit 2,
before any check runs): not `MODULE:ATTR` or no such attribute (`ValueError`), or a module that
is not installed, or imports one that is not (`Unavailable`). Anything the user's own code does
while being imported or while its factory is called (raise, `sys.exit`, a `KeyboardInterrupt`
that is no Ctrl-C, overrunning `timeout`) is a failure of that code: `load` and `build` then
return a `Failed` stand-in, whose every call raises `guard.UserCodeError` with a one-line
reason naming the call, so that each gate records it as its failed check "... runs without
error" (exit 1) exactly as it records a call that fails later. A real Ctrl-C propagates
(`guard.Interrupted`).
"""

from __future__ import annotations

import copy
import functools
import importlib

from mlm_ref.config import MaskingConfig

from .. import registry
from . import guard

__all__ = ["by_config", "Unavailable", "Failed", "load", "build", "one_line", "callable_name",
           "distinct_names", "factory_kwargs"]


class Unavailable(RuntimeError):
    """What the user's code names (a framework, a module) cannot be imported."""


class Failed:
    """Stands in for user code that could not be had: importing its module or calling its
    factory failed. Every call raises `guard.UserCodeError(reason)`, so the gate's own guard
    records the failure as its check "... runs without error".

    Args:
        reason: one line naming the call that failed and how.
    """

    def __init__(self, reason: str):
        self.reason = reason
        self.__name__ = self.__qualname__ = "failed"

    def __repr__(self) -> str:
        return f"Failed({self.reason!r})"

    def __call__(self, *args, **kwargs):
        raise guard.UserCodeError(self.reason)


def one_line(e: BaseException) -> str:
    """`Type: message` on one line (a SyntaxError's message names the file and line)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _failed(what: str, e: Exception) -> Failed:
    """The stand-in for a call `what` that raised `e` (a `UserCodeError` already names it)."""
    reason = str(e) if isinstance(e, guard.UserCodeError) else f"{what} raised {one_line(e)}"
    return Failed(" ".join(reason.split()))


def load(spec: str, *, what: str, choices: str = "", timeout: float | None = None):
    """The object named by `MODULE:ATTR` (ATTR may be dotted), the import under the guard.

    Args:
        spec: `MODULE:ATTR`.
        what: what it should be, for messages (`"masker"`, `"pipeline"`, `"generator"`).
        choices: the names a gate also accepts, for the message on a bad spec.
        timeout: seconds importing may take (None: no limit).

    Returns:
        The object; a `Failed` stand-in when importing the module raised, exited or hung.

    Raises:
        ValueError: not `MODULE:ATTR`, or no such attribute.
        Unavailable: the module, or one it imports, is not installed.
        guard.Interrupted: Ctrl-C while importing.
    """
    try:
        module, attr = registry.split_spec(spec)
    except ValueError:
        accepted = f"one of {choices} or MODULE:ATTR" if choices else "MODULE:ATTR"
        raise ValueError(f"a {what} must be {accepted}, got {spec!r}") from None
    call = f"importing {module!r} ({what} {spec!r})"
    try:
        obj = guard.run(importlib.import_module, module, what=call, timeout=timeout)
    except ModuleNotFoundError as e:
        raise Unavailable(f"cannot import {module!r} for {what} {spec!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 (the module's own code failed, exited or hung)
        return _failed(call, e)
    lookup = f"{module}.{attr} ({what} {spec!r})"  # a module's __getattr__ is user code too
    try:
        return guard.run(registry.attribute, obj, module, attr, what=lookup, timeout=timeout)
    except ValueError as e:
        raise ValueError(f"{e} ({what} {spec!r})") from None
    except Exception as e:  # noqa: BLE001 (the module's own attribute lookup failed)
        return _failed(lookup, e)


def build(factory, kwargs: dict, *, name: str, what: str = "masker",
          timeout: float | None = None):
    """`factory(**kwargs)` under the guard: the user's callable, or a `Failed` stand-in when
    the factory raised, exited, overran `timeout` or returned something that cannot be called
    (a `Failed` factory gives itself back).

    Raises:
        TypeError: `factory` is not callable (the spec names no factory: a usage error).
        guard.Interrupted: Ctrl-C in the factory.
    """
    if isinstance(factory, Failed):
        return factory
    if not callable(factory):
        raise TypeError(f"{what} {name!r} names a {type(factory).__name__}, not a factory that "
                        f"takes the module description's keywords")
    call = f"the factory of {what} {name!r}"
    try:
        made = guard.run(functools.partial(factory, **kwargs), what=call, timeout=timeout)
    except Exception as e:  # noqa: BLE001 (the factory's own code failed, exited or hung)
        return _failed(call, e)
    if not callable(made):
        return Failed(f"{call} returned a {type(made).__name__}, not a callable {what}")
    return made


def factory_kwargs(config: MaskingConfig) -> dict:
    """The module description's constructor keywords (a third-party factory's interface)."""
    return dict(padding_token=config.padding_token, mask_token=config.mask_token,
                no_mask_tokens=list(config.no_mask_tokens), n_tokens=config.n_tokens,
                masking_prob=config.masking_prob, randomize_prob=config.randomize_prob,
                no_change_prob=config.no_change_prob)


def callable_name(fn) -> str:
    """`module:qualname` of a function or a lambda (a closure `f` defined in `make` of `pkg.mod`
    is `pkg.mod:make.<locals>.f`), `partial(...)` of a `functools.partial`, and the class name
    of any other callable object."""
    if isinstance(fn, functools.partial):
        return f"partial({callable_name(fn.func)})"
    if not hasattr(fn, "__qualname__"):  # an instance: its class says what it is
        return type(fn).__name__
    module = getattr(fn, "__module__", None)
    return f"{module}:{fn.__qualname__}" if module else fn.__qualname__


def distinct_names(items: list) -> list:
    """`items` (each with a `name`), renamed where two share a name (`name #2`, `name #3`): a
    report keys every result by name, so a repeated name would silently drop one."""
    seen: dict[str, int] = {}
    out = []
    for a in items:
        seen[a.name] = seen.get(a.name, 0) + 1
        if seen[a.name] > 1:  # a copy: the caller's item may be the one given twice
            a = copy.copy(a)
            a.name = f"{a.name} #{seen[a.name]}"
        out.append(a)
    return out


def by_config(adapters: list) -> list[list]:
    """`adapters` (each with a `config`) grouped by config, in first-seen order: one group
    unless some were built for other parameters. A gate feeds each group its own inputs."""
    groups: dict = {}
    for a in adapters:
        groups.setdefault(a.config, []).append(a)
    return list(groups.values())
