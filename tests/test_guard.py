"""One guard for every gate (`verify.engine.guard`): whatever the user's code does (raise,
`sys.exit` with any code, hang past `--timeout`, return junk, raise `KeyboardInterrupt`), each
of the four gates fails its check "... runs without error" (or the output check) with exit 1,
a line naming the problem, no traceback, and within the timeout plus a few seconds."""

import json
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


# The same for the user's code before it is called: importing its module and calling its
# factory (the token and whole-word gates take factories; a pipeline and a generator are
# called directly, so only their import applies). Only a spec that names nothing is a usage
# error (exit 2).
EARLY = ("raises", "exit0", "exit3", "hangs", "interrupt")
SPECS = {"token": "verify.stats", "words": "verify.stats", "stream": "verify.pipeline",
         "sentence_pairs": "verify.nsp"}


def _argv(gate: str, spec: str) -> list:
    return [a.replace(M + "masker_{}", spec).replace(M + "pipeline_{}", spec)
            .replace(M + "generator_{}", spec) for a in GATES[gate][1]]


def _one_failed_run(gate: str, spec: str, needles: tuple, capsys, tmp_path):
    """Run `gate` on `spec` with --json; it must fail with exit 1, no traceback, a line holding
    every needle (the call and what went wrong), and the failure in the JSON report."""
    path = tmp_path / "report.json"
    start = time.perf_counter()
    code = _main(GATES[gate][0])([*_argv(gate, spec), "--json", str(path)])
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert code == 1, (code, out, err)
    assert "Traceback" not in out + err
    assert any(all(n in line for n in needles) for line in (out + err).splitlines()), out + err
    assert "runs" in out and seconds < 30, (out, seconds)
    report = json.loads(path.read_text())
    assert report["passed"] is False and needles[-1] in json.dumps(report)


@pytest.mark.parametrize("behaviour", EARLY)
@pytest.mark.parametrize("gate", GATES)
def test_a_module_that_misbehaves_while_imported_fails_runs_without_error(gate, behaviour,
                                                                         capsys, tmp_path):
    module = f"tests.bad_imports.{behaviour}"
    _one_failed_run(gate, f"{module}:make", (f"importing {module!r}", NEEDLES[behaviour]),
                    capsys, tmp_path)


@pytest.mark.parametrize("behaviour", [*EARLY, "junk"])
@pytest.mark.parametrize("gate", ["token", "words"])
def test_a_factory_that_misbehaves_fails_runs_without_error(gate, behaviour, capsys, tmp_path):
    needle = "returned a str, not a callable" if behaviour == "junk" else NEEDLES[behaviour]
    _one_failed_run(gate, M + f"factory_{behaviour}", ("the factory of", needle), capsys,
                    tmp_path)


@pytest.mark.parametrize("spec, needle", [
    ("tests.no_such_module_xyz:make", "cannot import"),
    ("tests.bad_user_code:no_such_attribute", "has no attribute"),
    ("tests.bad_user_code", "MODULE:ATTR"),
])
@pytest.mark.parametrize("gate", GATES)
def test_a_spec_that_names_nothing_is_a_usage_error(gate, spec, needle, capsys):
    code = _main(GATES[gate][0])(_argv(gate, spec))
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in out + err, (code, out, err)
    assert len(err.strip().splitlines()) == 1 and needle in err, err


@pytest.mark.parametrize("gate", GATES)
def test_a_module_whose_attribute_lookup_raises_fails_runs_without_error(gate, capsys,
                                                                          tmp_path):
    _one_failed_run(gate, "tests.bad_imports.lookup_raises:make",
                    ("tests.bad_imports.lookup_raises.make", "RuntimeError: boom looking up make"),
                    capsys, tmp_path)
