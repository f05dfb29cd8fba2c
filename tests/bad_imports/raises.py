"""Importing this module misbehaves: `tests.bad_user_code.act("raises")`."""

from tests.bad_user_code import act

act("raises")


def make(**kwargs):  # never reached: the import above does not return
    raise AssertionError("unreachable")
