"""`python -m verify.bench`: the report has the documented schema; bad arguments exit 2."""

import json

import pytest

pytest.importorskip("torch")
from verify import bench  # noqa: E402


def test_bench_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--device", "cpu", "--only", "ours-numpy", "--seq-len", "32",
                     "--batches", "4", "--repeats", "3", "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["copy_bandwidth_GBps"] > 0
    modes = {(r["masker"], r["mode"]) for r in report["results"]}
    assert modes == {("ours-numpy", "native"), ("ours-numpy", "exact")}
    for r in report["results"]:
        assert r["shape"] == [32, 4] and r["dtype"] == "int64"
        assert r["tokens_per_s"] > 0 and 0 < r["bandwidth_fraction"]
    assert "ours-numpy" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--batches", "0"], ["--repeats", "0"], ["--only", "nobody"]])
def test_bench_refuses_bad_arguments(argv, capsys):
    assert bench.main(["--device", "cpu", *argv]) == 2
    assert "error" in capsys.readouterr().err


def test_the_bench_leaves_jax_in_its_default_32_bit_mode():
    """The exact-mode equality tests skip under x64; a bench run must not switch it on."""
    jax = pytest.importorskip("jax")
    assert bench.main(["--device", "cpu", "--only", "ours-jax", "--seq-len", "16",
                       "--batches", "2", "--repeats", "3"]) == 0
    assert not jax.config.jax_enable_x64
