"""Importing this module works; looking any name up in it raises (a module `__getattr__`)."""


def __getattr__(name):
    raise RuntimeError(f"boom looking up {name}")
