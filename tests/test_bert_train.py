"""mlm_bert.trainer on a tiny generated corpus: the loss falls, and a resumed run continues with
the batches, masks and (on one machine, deterministic kernels) parameters of an uninterrupted
one."""

from __future__ import annotations

import json

import pytest
import torch

from mlm_bert.presets import build_model, prepare
from mlm_bert.trainer import (BertTrainer, TrainConfig, budget_schedule, linear_schedule,
                              read_metrics)


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepare("generated:200", 96, 16, tmp_path_factory.mktemp("bert"), seed=5)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these matrices are small, and on a busy machine a second thread
    mostly waits (it made the steps several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Recorder(BertTrainer):
    """A trainer that remembers the batches it trained on."""

    seen: list

    def next_batch(self):
        batch = super().next_batch()
        self.seen = getattr(self, "seen", []) + [(self.epoch, self.position - 1, batch)]
        return batch


def _trainer(prep, out, steps, cls=BertTrainer, **kw):
    torch.manual_seed(0)
    model = build_model("micro", prep.tokenizer.get_vocab_size())
    config = TrainConfig(steps=steps, lr=3e-3, warmup=5, log_every=5, eval_every=steps,
                         eval_batches=None, checkpoint_every=1000)
    return cls(model, prep.train, config, out, eval_data=prep.held_out, progress=False, **kw)


def test_smoke_training_loss_falls(prep, tmp_path):
    trainer = _trainer(prep, tmp_path, 150)
    final = trainer.train()
    train = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    first, last = train[0], train[-1]
    # An untrained model scores about log(vocab) = 4.5 nats (perplexity ~ vocab); 150 steps
    # bring it to the level of the pieces' frequencies (measured: 4.5 -> 3.6 nats, held-out
    # perplexity about 40 against the unigram baseline's 46). A model that does not learn
    # stays near 4.5 and fails both checks.
    vocab = prep.tokenizer.get_vocab_size()
    assert last["mlm_loss"] < 0.85 * first["mlm_loss"]
    assert final is not None and final["perplexity"] < 0.6 * vocab
    assert (tmp_path / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["kind"] == "eval"


def test_resume_continues_the_uninterrupted_run(prep, tmp_path):
    whole = _trainer(prep, tmp_path / "whole", 24, Recorder)
    whole.train()
    first = _trainer(prep, tmp_path / "split", 24, Recorder)
    first.train(stop_at=10)                         # an interruption after step 10
    assert first.step == 10
    resumed = _trainer(prep, tmp_path / "split", 24, Recorder)   # a new process, new model
    resumed.train(resume=True)
    assert resumed.step == 24 and len(resumed.seen) == 14
    # the batches after the resume are those of the uninterrupted run, masks included
    for (e1, p1, b1), (e2, p2, b2) in zip(whole.seen[10:], resumed.seen):
        assert (e1, p1) == (e2, p2)
        assert all(torch.equal(b1[k], b2[k]) for k in b1)
    assert whole.seen[0][0] != whole.seen[-1][0]   # the runs crossed an epoch boundary
    # same checkpointed RNG, same kernels: the same parameters after 24 steps
    for (name, a), b in zip(whole.model.state_dict().items(),
                            resumed.model.state_dict().values()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), name
    steps = [r["step"] for r in read_metrics(tmp_path / "split" / "metrics.jsonl")
             if r["kind"] == "train"]
    assert steps == sorted(set(steps))              # no duplicated records after the resume


def test_checkpoint_refuses_another_config(prep, tmp_path):
    _trainer(prep, tmp_path, 6).train()
    other = _trainer(prep, tmp_path, 8)
    with pytest.raises(ValueError, match="TrainConfig"):
        other.load_checkpoint()


def test_linear_schedule():
    assert [linear_schedule(s, 4, 12) for s in (0, 3, 4, 8, 12)] == [0.25, 1.0, 1.0, 0.5, 0.0]


def test_budget_schedule_warms_up_then_decays_over_the_time_spent():
    assert budget_schedule(0, 4, 0.0) == 0.25
    assert budget_schedule(10, 4, 0.0) == 1.0
    assert budget_schedule(10, 4, 0.25) == 0.75
    assert budget_schedule(10, 4, 1.0) == 0.0 and budget_schedule(10, 4, 1.5) == 0.0


def test_time_budget_stops_training_and_carries_over_a_resume(prep, tmp_path):
    torch.manual_seed(0)
    model = build_model("micro", prep.tokenizer.get_vocab_size())
    # a cap far beyond what 3 seconds allow: the clock, not the cap, must end the run
    config = TrainConfig(steps=10**6, lr=3e-3, warmup=2, log_every=5, eval_every=10**6,
                         eval_batches=1, final_eval_batches=1, checkpoint_every=10,
                         minutes=0.05)
    trainer = BertTrainer(model, prep.train, config, tmp_path, eval_data=prep.held_out,
                          progress=False)
    trainer.train()
    assert 0 < trainer.step < 10**6
    assert trainer.elapsed >= 3.0 and trainer.out_of_time()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert records[-1]["kind"] == "eval" and records[-1]["full"]    # the final evaluation ran
    lrs = [r["lr"] for r in records if r["kind"] == "train"]
    assert lrs[-1] < 0.2 * max(lrs)                 # the decay reached (nearly) zero in time
    # the time spent is in the checkpoint: a resumed run knows the budget is spent
    again = BertTrainer(build_model("micro", prep.tokenizer.get_vocab_size()), prep.train,
                        config, tmp_path, eval_data=prep.held_out, progress=False)
    again.train(resume=True)
    assert again.step == trainer.step and again.elapsed >= 3.0
