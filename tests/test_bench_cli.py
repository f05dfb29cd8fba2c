"""`python -m verify.bench`: the report has the documented schema; bad arguments exit 2."""

import json

import pytest

pytest.importorskip("torch")
from verify.bench import cli as bench  # noqa: E402


def test_bench_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--device", "cpu", "--only", "numpy", "--seq-len", "32",
                     "--batches", "4", "--repeats", "3", "--no-collators", "--memory-n", "4096",
                     "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["copy_bandwidth_GBps"] > 0
    modes = {(r["masker"], r["mode"]) for r in report["results"]}
    assert modes == {("numpy", "native"), ("numpy", "exact")} and "collators" not in report
    for r in report["results"]:
        assert r["shape"] == [32, 4] and r["dtype"] == "int64"
        assert r["tokens_per_s"] > 0 and 0 < r["bandwidth_fraction"]
    memory = report["memory"]          # the peak of each NumPy path, as a multiple of the input
    assert {(r["backend"], r["mode"], r["dtype"]) for r in memory["rows"]} == {
        ("numpy", m, d) for m in ("native", "exact") for d in ("uint8", "int64")}
    assert all(r["multiple"] == round(r["peak_extra_bytes"] / r["input_bytes"], 2) and
               r["n"] == 4096 for r in memory["rows"])
    assert set(report["load_average"]) == {"before", "after", "cores"}
    assert "numpy" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--batches", "0"], ["--repeats", "0"], ["--only", "nobody"],
                                  ["--collator-batches", "0"], ["--memory-n", "0"],
                                  ["--collators-only", "--no-collators"]])
def test_bench_refuses_bad_arguments(argv, capsys):
    assert bench.main(["--device", "cpu", *argv]) == 2
    assert "error" in capsys.readouterr().err


def test_the_bench_leaves_jax_in_its_default_32_bit_mode():
    """The exact-mode equality tests skip under x64; a bench run must not switch it on."""
    jax = pytest.importorskip("jax")
    assert bench.main(["--device", "cpu", "--only", "jax", "--seq-len", "16",
                       "--batches", "2", "--repeats", "3", "--collator-batches", "2",
                       "--no-memory"]) == 0
    assert not jax.config.jax_enable_x64


def test_a_masker_is_timed_in_steady_state_not_in_the_wake_of_another():
    """A masker that is slow only right after another masker ran (cold caches) is timed at
    its steady-state speed, and its figure does not depend on who shares the run."""
    import time

    import numpy as np

    from verify.bench.maskers import Masker
    from verify.bench.timing import time_maskers

    last = [None]

    def masker(name, cold_s, warm_s):
        def call(x):
            time.sleep(cold_s if last[0] not in (None, name) else warm_s)
            last[0] = name
            return x
        return Masker(name, "native", setup=list, call=call)

    maskers = [masker("a", 0.02, 0.001), masker("b", 0.02, 0.001)]
    xs = [np.zeros((2, 2), dtype=np.int64)] * 2
    for timing in time_maskers(maskers, xs, warmup=1, repeats=6, budget_s=1.0):
        assert timing["repeats"] >= 6 and timing["median_s"] < 0.01


def test_the_gates_own_speed_is_timed_end_to_end_and_past_its_fixed_costs(monkeypatch):
    """`verify.bench.gate`: each size alternated twice, the best of each; the marginal rate
    is the tokens between the sizes over the seconds between them; the page shows both."""
    from verify.bench import gate
    from verify.bench.report import _gate
    walls = iter([(12.0, "PASS"), (3.0, "PASS"), (10.0, "PASS"), (4.0, "PASS")])
    seen = []

    def fake_wall(masker, device, tokens):
        seen.append(tokens)
        return next(walls)
    monkeypatch.setattr(gate, "_wall", fake_wall)
    g = gate.time_gate("cpu", tokens=10**8, fixed_tokens=10**6)
    assert seen == [10**8, 10**6, 10**8, 10**6]
    assert g["tokens_per_s"] == pytest.approx(10**8 / 10.0)
    assert g["marginal_tokens_per_s"] == pytest.approx((10**8 - 10**6) / (10.0 - 3.0))
    assert g["verdicts"] == ["PASS"]
    page = "\n".join(_gate(g))
    assert "10.0 M" in page and "14.1 M" in page and "12.0, 10.0" in page


def test_one_gate_run_is_timed_in_a_fresh_process():
    from verify.bench import gate
    seconds, verdict = gate._wall("numpy", "cpu", 20_000)
    assert seconds > 0 and verdict == "PASS"
