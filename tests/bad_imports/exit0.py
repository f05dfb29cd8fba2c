"""Importing this module misbehaves: `tests.bad_user_code.act("exit0")`."""

from tests.bad_user_code import act

act("exit0")


def make(**kwargs):  # never reached: the import above does not return
    raise AssertionError("unreachable")
