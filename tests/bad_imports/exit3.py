"""Importing this module misbehaves: `tests.bad_user_code.act("exit3")`."""

from tests.bad_user_code import act

act("exit3")


def make(**kwargs):  # never reached: the import above does not return
    raise AssertionError("unreachable")
