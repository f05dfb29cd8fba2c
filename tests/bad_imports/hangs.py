"""Importing this module misbehaves: `tests.bad_user_code.act("hangs")`."""

from tests.bad_user_code import act

act("hangs")


def make(**kwargs):  # never reached: the import above does not return
    raise AssertionError("unreachable")
