"""One guard for every gate (`verify.engine.guard`): whatever the user's code does (raise,
`sys.exit` with any code, hang past `--timeout`, return junk, raise `KeyboardInterrupt`), each
of the four gates fails its check "... runs without error" (or the output check) with exit 1,
a line naming the problem, no traceback, and within the timeout plus a few seconds."""

import time

import pytest

from tests.bad_user_code import BEHAVIOURS

M = "tests.bad_user_code:"
TIMEOUT = ["--timeout", "1", "--no-progress"]
GATES = {
    "token": ("verify.stats", ["--tokens", "2e4", *TIMEOUT, "--masker", M + "masker_{}"]),
    "words": ("verify.stats", ["--wwm", "--tokens", "2e4", *TIMEOUT, "--masker",
                               M + "masker_{}"]),
    "stream": ("verify.pipeline", [M + "pipeline_{}", "--epochs", "1", *TIMEOUT]),
    "sentence_pairs": ("verify.nsp", [M + "generator_{}", "--pairs", "1000", *TIMEOUT]),
}
# what the line naming the problem says, per behaviour (junk: per gate)
NEEDLES = {"raises": "RuntimeError: boom from user code", "exit0": "sys.exit(0)",
           "exit3": "sys.exit(3)", "hangs": "did not return within 1 s",
           "interrupt": "raised KeyboardInterrupt"}
JUNK = {"token": "must return (x_masked, y)", "words": "must return (x_masked, y)",
        "stream": "input_ids and labels",
        "sentence_pairs": "not (tokens_a, tokens_b, is_random_next)"}


def _main(module: str):
    import importlib
    return importlib.import_module(module).main


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("gate", GATES)
def test_misbehaving_user_code_fails_its_check_with_one_line_and_exit_1(gate, behaviour,
                                                                         capsys):
    module, argv = GATES[gate]
    argv = [a.format(behaviour) for a in argv]
    start = time.perf_counter()
    code = _main(module)(argv)
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    needle = JUNK[gate] if behaviour == "junk" else NEEDLES[behaviour]
    assert code == 1, (code, out, err)
    assert "Traceback" not in out + err
    assert any(needle in line for line in (out + err).splitlines()), out + err
    assert seconds < 30, seconds
