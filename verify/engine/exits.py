"""The one exit-code table of every command-line gate (`verify.stats`, `verify.stats --wwm`,
`verify.pipeline`, `verify.nsp`, `verify.exact`):

| status | meaning |
|---|---|
| 0 | every check passed |
| 1 | a check failed (the user's code raising, exiting or hanging included, while its module
      is imported and its factory called too: "... runs without error") |
| 2 | usage error: a bad argument, a `MODULE:ATTR` that names nothing (malformed, a module not
      installed, no such attribute; one line) |
| 3 | inconclusive: nothing was tested that matters (no eligible position, no pair) |
| 130 | interrupted by Ctrl-C (one line) |
"""

from __future__ import annotations

__all__ = ["PASS", "FAIL", "USAGE", "INCONCLUSIVE", "INTERRUPTED", "VERDICTS", "exit_status"]

PASS, FAIL, USAGE, INCONCLUSIVE = 0, 1, 2, 3
# The shell's status for a process ended by SIGINT (128 + 2).
INTERRUPTED = 130
VERDICTS = {"PASS": PASS, "FAIL": FAIL, "INCONCLUSIVE": INCONCLUSIVE}


def exit_status(verdict: str) -> int:
    """The exit status of a report's verdict (`PASS`, `FAIL`, `INCONCLUSIVE`)."""
    return VERDICTS[verdict]
