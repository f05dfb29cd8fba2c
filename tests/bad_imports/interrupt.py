"""Importing this module misbehaves: `tests.bad_user_code.act("interrupt")`."""

from tests.bad_user_code import act

act("interrupt")


def make(**kwargs):  # never reached: the import above does not return
    raise AssertionError("unreachable")
