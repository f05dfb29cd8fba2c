"""One resolver for the user's code named on a command line, `MODULE:ATTR`, for every gate.

Importing a module runs its code: whatever it raises or does on import (`SystemExit`
included) becomes one line, a usage error, before any check runs: `Unavailable` when the
module (or what it needs) is not installed, `ValueError` otherwise. So does a factory that
fails when called with the gate's keywords (`build`).
"""

from __future__ import annotations

import copy
import functools
import importlib

from mlm_ref.config import MaskingConfig

__all__ = ["Unavailable", "load", "build", "one_line", "callable_name", "distinct_names",
           "factory_kwargs"]


class Unavailable(RuntimeError):
    """What the user's code names (a framework, a module) cannot be imported."""


def one_line(e: BaseException) -> str:
    """`Type: message` on one line (a SyntaxError's message names the file and line)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _attribute(spec: str):
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"{module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load(spec: str, *, what: str, choices: str = ""):
    """The object named by `MODULE:ATTR` (ATTR may be dotted), imported under the guard.

    Args:
        spec: `MODULE:ATTR`.
        what: what it should be, for messages (`"masker"`, `"pipeline"`, `"generator"`).
        choices: the names a gate also accepts, for the message on a bad spec.

    Raises:
        ValueError: not `MODULE:ATTR`, no such attribute, or importing raised or exited.
        Unavailable: the module, or one it imports, is not installed.
        KeyboardInterrupt: Ctrl-C while importing.
    """
    module, _, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not module or not attr:
        accepted = f"one of {choices} or MODULE:ATTR" if choices else "MODULE:ATTR"
        raise ValueError(f"a {what} must be {accepted}, got {spec!r}")
    try:
        return _attribute(spec)
    except ImportError as e:
        raise Unavailable(f"cannot import {module!r} for {what} {spec!r}: {e}") from None
    except AttributeError as e:
        raise ValueError(f"{e} ({what} {spec!r})") from None
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 (the module's own code failed or exited)
        raise ValueError(f"cannot import {module!r} for {what} {spec!r}: importing it raised "
                         f"{one_line(e)}") from None


def build(factory, kwargs: dict, *, name: str, what: str = "masker"):
    """`factory(**kwargs)`: the user's object, or a `ValueError` naming what failed (a factory
    that raises or exits is refused before the run, like a bad argument).

    Raises:
        TypeError: `factory` is not callable.
        ValueError: the factory raised or exited.
    """
    if not callable(factory):
        raise TypeError(f"{what} {name!r} names a {type(factory).__name__}, not a factory that "
                        f"takes the module description's keywords")
    try:
        return factory(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 (the factory's own code failed or exited)
        raise ValueError(f"{what} {name!r}: its factory raised {one_line(e)}") from None


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
