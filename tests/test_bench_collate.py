"""The collator section of `python -m verify.bench`: like-for-like inputs, the documented JSON.

No timing is judged here (timings belong in the benchmark); what is checked is that every
collator gets the same examples and pads them to the same batch, that the JSON section has
the fields docs/benchmarks.md documents, that `--collators-only` keeps the rest of an
existing results file, and that the report renders the table and the ratios.
"""

import json

import pytest

pytest.importorskip("torch")
from verify.bench import cli as bench  # noqa: E402
from verify.bench import collate, report  # noqa: E402

RESULT_FIELDS = {"collator", "call", "batch", "seq_len", "examples_per_s", "median_s",
                 "repeats", "note"}
SECTION_FIELDS = {"date", "command", "seq_len", "lengths", "vocab", "masking_prob",
                  "torch_threads", "skipped", "results", "ratios"}


def test_examples_are_bert_like_and_the_first_of_a_batch_is_full_length():
    examples = collate.make_examples(16, 128, seed=3)
    lengths = [len(e["input_ids"]) for e in examples]
    assert lengths[0] == 128 and all(64 <= n <= 128 for n in lengths) and len(set(lengths)) > 1
    for e in examples:
        ids = e["input_ids"]
        assert type(ids) is list and ids[0] == 101 and ids[-1] == 102
        assert all(999 <= t < 30522 for t in ids[1:-1])
    assert len({e["index"] for e in examples}) == 16
    assert examples == collate.make_examples(16, 128, seed=3)          # a fixed seed
    assert {e["index"] for e in collate.make_examples(16, 128, seed=4)}.isdisjoint(
        e["index"] for e in examples)


def test_every_collator_pads_the_same_examples_to_the_same_batch():
    from mlm_ref import MaskingConfig
    from verify.registry import BERT
    maskers, skipped = collate.build(MaskingConfig(**BERT), "cpu")
    names = {m.name for m in maskers}
    assert "torch" in names, skipped
    examples = collate.make_examples(6, 128, seed=0)
    for m in maskers:
        batch = m.call(m.setup([examples])[0])
        for key in ("input_ids", "attention_mask", "labels"):
            assert tuple(batch[key].shape) == (6, 128), (m.name, key)
        lengths = [int(n) for n in batch["attention_mask"].sum(1)]
        assert lengths == [len(e["input_ids"]) for e in examples], m.name


def _check_section(section: dict, batches: list[int]):
    assert SECTION_FIELDS <= set(section)
    assert section["seq_len"] == 128 and section["lengths"] == [64, 128]
    assert section["torch_threads"] == 1 and section["masking_prob"] == 0.15
    for r in section["results"]:
        assert RESULT_FIELDS <= set(r) and r["batch"] in batches and r["examples_per_s"] > 0
    assert {r["batch"] for r in section["results"]} == set(batches)
    for r in section["ratios"]:
        assert {r["ours"], r["theirs"]} <= {"torch", "hf", "hf-stm"} and r["speedup"] > 0
        assert r["goal"] == collate.GOAL and r["held"] == (r["speedup"] >= r["goal"])


def test_the_bench_times_the_collators_beside_the_maskers(tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main(["--device", "cpu", "--only", "numpy", "--seq-len", "16", "--batches",
                       "2", "--repeats", "3", "--collator-batches", "3", "--no-memory",
                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {r["masker"] for r in result["results"]} == {"numpy"}
    _check_section(result["collators"], [3])
    if {"torch", "hf"} <= {r["collator"] for r in result["collators"]["results"]}:
        assert [r["batch"] for r in result["collators"]["ratios"]][:1] == [3]


def test_collators_only_replaces_that_key_and_keeps_the_rest(tmp_path, capsys):
    out = tmp_path / "bench.json"
    earlier = {"device": "cpu", "date": "then", "command": "python -m verify.bench",
               "results": [{"masker": "numpy"}], "ratios": [], "collators": {"stale": 1}}
    out.write_text(json.dumps(earlier))
    assert bench.main(["--device", "cpu", "--collators-only", "--collator-batches", "2", "4",
                       "--repeats", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {k: result[k] for k in earlier if k != "collators"} == \
        {k: v for k, v in earlier.items() if k != "collators"}
    _check_section(result["collators"], [2, 4])
    assert "--collators-only" in result["collators"]["command"]
    assert "collators, batch 2" in capsys.readouterr().out or \
        not result["collators"]["ratios"]


def test_the_report_renders_the_collator_table_and_ratios(tmp_path):
    section = {"date": "d", "command": "python -m verify.bench", "seq_len": 128,
               "lengths": [64, 128], "vocab": 30522, "masking_prob": 0.15,
               "torch_threads": 1, "skipped": [{"collator": "jax", "reason": "not installed"}],
               "results": [{"collator": c, "call": "f", "batch": 32, "seq_len": 128,
                            "examples_per_s": v, "median_s": 32 / v, "repeats": 5, "note": ""}
                           for c, v in (("torch", 60000.0), ("hf", 20000.0))],
               "ratios": [{"batch": 32, "ours": "torch", "theirs": "hf", "speedup": 3.0,
                           "goal": 3.0, "held": True}]}
    page = report.render([{"device": "cpu", "date": "d", "command": "c", "_path": "p",
                           "collators": section}])
    assert "### Collators: examples/s, [batch, 128]" in page
    assert "| torch | `f` | 32 | 6e+04 | 3.00x |  |" in page
    assert "- batch 32: torch / hf = 3.00x (goal >= 3x: held)" in page
    assert "skipped jax: not installed" in page and "were not timed" in page
