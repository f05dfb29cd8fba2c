"""The Grain example (examples/grain_pipeline.py): it reproduces MLMCollator's masks bit for bit,
covers every example once per epoch across ranks, passes the pipeline gate, and its broken
variant (epochs not reseeded) fails it. Skipped where `grain` is not installed (it is an
optional extra: `pip install -e ".[audit]"`)."""

import numpy as np
import pytest

pytest.importorskip("grain")

from examples import grain_pipeline as gp  # noqa: E402
from verify import check_pipeline  # noqa: E402


def test_grain_masks_equal_the_collators_bit_for_bit():
    torch = pytest.importorskip("torch")
    from mlm_torch.collate import MLMCollator

    data = gp.corpus()
    for epoch in (0, 1):
        collator = MLMCollator(seed=gp.SEED, **gp.BERT)
        collator.set_epoch(epoch)
        for batch in gp.batches(epoch=epoch, rank=1, world_size=2)[:3]:
            index = batch["index"].tolist()
            ours = collator([{"input_ids": data[i].tolist(), "index": i} for i in index])
            np.testing.assert_array_equal(batch["input_ids"], ours["input_ids"].numpy())
            np.testing.assert_array_equal(batch["labels"], ours["labels"].numpy())
            assert isinstance(ours["labels"], torch.Tensor)


def test_each_epoch_shows_every_example_once_across_ranks_in_a_new_order():
    orders = []
    for epoch in (0, 1):
        seen = np.concatenate([b["index"] for rank in (0, 1)
                               for b in gp.batches(epoch=epoch, rank=rank, world_size=2)])
        assert sorted(seen.tolist()) == list(range(gp.EXAMPLES))
        orders.append(seen)
    assert not np.array_equal(orders[0], orders[1])


def test_the_pipeline_gate_passes_the_grain_pipeline():
    report = check_pipeline(gp.batches, epochs=2, world_size=2)
    assert report.passed, report.failure_message()


def test_the_pipeline_gate_fails_the_grain_pipeline_that_replays_its_first_epoch():
    report = check_pipeline(gp.broken_batches, epochs=2, world_size=2)
    assert not report.passed
    assert "no mask pattern repeats beyond the birthday bound" in report.failure_message()
