"""`--plan`, `--effect` and `--plot` where the pipeline and NSP gates take them: the plan is
measured on our own code (the named generator or pipeline is never imported) and agrees with
what a real run reports; bad combinations are usage errors."""

import math
import re

import pytest
from scipy import stats

from verify import nsp, pipeline
from verify.sentence_pairs.nsp_plan import pairs_needed

BROKEN_IMPORT = "tests.bad_imports.raises:make"


def _rows(out: str) -> dict:
    """`{check: (n, level, mde)}` from a plan's table."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(.+?)\s{2,}([\d,]+)\s+([\d.e+-]+)\s+([\d.e+-]+) ", line)
        if m:
            rows[m.group(1)] = (int(m.group(2).replace(",", "")), float(m.group(3)),
                                float(m.group(4)))
    return rows


def test_nsp_plan_does_not_run_the_generator_and_matches_a_run(capsys):
    assert nsp.main([BROKEN_IMPORT, "--plan", "--pairs", "3000", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    rows = _rows(out)
    assert "boom" not in out + err and "label rate (1 = random next)" in rows
    report = nsp.check_nsp("ours", pairs=3000)
    assert report.passed        # every check standing: each was decided at the plan's level
    for c in report.checks:
        if c.kind == "statistical" and c.applicable:
            n, level, mde = rows[c.name]
            assert n == c.n and math.isclose(level, c.level, rel_tol=1e-3)
            assert math.isclose(mde, c.mde_value, rel_tol=1e-2), c.name


@pytest.mark.parametrize("p", [0.51, 0.53, 0.45])
def test_nsp_pairs_needed_give_the_planned_power(p):
    level = 1e-5 / 17
    for power in (0.5, 0.95):
        n = pairs_needed(p, level, power)
        lo, hi = stats.binom.isf(level / 2, n, 0.5), stats.binom.ppf(level / 2, n, 0.5)
        exact = stats.binom.sf(lo, n, p) + stats.binom.cdf(hi - 1, n, p)
        assert abs(exact - power) < 0.03, (n, exact)


@pytest.mark.parametrize("argv, message", [
    (["--effect", "label=0.52"], "--effect is for --plan"),
    (["--plan", "--effect", "label=0.5"], "label=P"),
    (["--plan", "--effect", "selection=0.2"], "label=P"),
    (["--imdb", "--plan"], "no --plan or --plot"),
])
def test_nsp_plan_usage_errors(argv, message, capsys):
    assert nsp.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_nsp_plot_writes_the_checks_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert nsp.main(["--pairs", "2000", "--no-progress", "--plot", str(tmp_path)]) == 0
    path = tmp_path / "nsp_checks.png"
    assert f"wrote {path}" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pipeline_plan_does_not_import_the_pipeline_and_matches_a_run(capsys):
    pytest.importorskip("torch")
    from verify.stream.pipeline_plan import reference_pipeline
    argv = [BROKEN_IMPORT, "--plan", "--examples", "256", "--world-size", "2", "--no-progress",
            "--effect", "selection=0.16"]
    assert pipeline.main(argv) == 0
    out, err = capsys.readouterr()
    assert "boom" not in out + err and "selection=0.16" in out
    rows = _rows(out)
    config = pipeline.cli.masking_config(pipeline.parse_args(argv))
    report = pipeline.check_pipeline(reference_pipeline(config, examples=256), config,
                                     world_size=2, examples=256)
    assert report.passed
    decided = [c for c in report.checks if c.kind == "statistical" and c.applicable]
    assert set(rows) == {c.name for c in decided}
    for c in decided:
        assert math.isclose(rows[c.name][2], c.mde_value, rel_tol=1e-2), c.name


def test_pipeline_plan_for_whole_words_runs_without_effects(capsys):
    assert pipeline.main([BROKEN_IMPORT, "--plan", "--wwm", "--examples", "256",
                          "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "words" in out and "eligible positions the stream must hold" not in out


@pytest.mark.parametrize("argv, message", [
    (["--effect", "selection=0.16"], "--effect is for --plan"),
    (["--plan", "--effect", "selection=2"], "an effect is"),
    (["--plan", "--wwm", "--effect", "selection=0.16"], "not with --wwm"),
    (["--plan", "--json", "x.json"], "no --json or --plot"),
])
def test_pipeline_plan_usage_errors(argv, message, capsys):
    assert pipeline.main([BROKEN_IMPORT, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
