"""`BertTrainer`: the training loop, its schedule, checkpoints and metrics.

One step: take batch `(epoch, position)` from `PretrainingData` (a pure function of the seed,
so nothing about the data needs saving), run the model, add the MLM loss (cross-entropy over
the selected positions only) and the NSP loss (cross-entropy over the two classes), clip the
gradient norm, and step AdamW (beta2 0.999, eps 1e-6, weight decay 0.01 on the weight matrices
and embeddings, none on biases and LayerNorms, as BERT did) under a linear warm-up and linear
decay of the learning rate. On CUDA the forward pass runs under bf16
autocast (no gradient scaler needed: bf16 has float32's exponent range).

The budget is steps or minutes. With `minutes` (as Cramming, Geiping and Goldstein 2022, trains
"in a day"), the run stops when that much time has been spent training (evaluations and
checkpoints included; `steps` is then only a cap), and the learning rate decays over the
*time*: its factor after the warm-up is `1 - elapsed / budget`, so a slower machine trains for
fewer steps on the same schedule instead of running over. The time spent so far is saved in
the checkpoint, so a resumed run continues the same budget (it is then not bit-exact: the
schedule depends on the clock). Without `minutes`, the decay is over the steps and a resumed
run repeats an uninterrupted one exactly.

A checkpoint holds the model, optimizer and scheduler states, the step, the (epoch, position)
of the next batch and the random-generator state (dropout), so `train(resume=True)` continues
exactly where the run stopped: the same batches, the same masks, and on the same machine the
same parameters as a run that never stopped. Metrics go to `metrics.jsonl`, one JSON object a
line: `{"kind": "train", ...}` every `log_every` steps (means over the interval) and
`{"kind": "eval", ...}` after each evaluation. Checkpoints are written atomically and metrics a
line at a time (`mlm_bert.runs`), so a run killed at any moment resumes from its last
checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import torch
import torch.nn.functional as F

from .evaluate import evaluate
from .runs import (deferred_interrupt, fault, fault_point, read_checkpoint, read_metrics,
                   write_atomically, write_text)

__all__ = ["TrainConfig", "BertTrainer", "linear_schedule", "budget_schedule",
           "read_metrics"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping settings.

    Raises:
        ValueError: a non-positive step count or learning rate, or warm-up longer than the run.
    """

    steps: int
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    clip: float = 1.0
    log_every: int = 20
    eval_every: int = 500
    eval_batches: int | None = 20
    checkpoint_every: int = 500
    minutes: float | None = None
    final_eval_batches: int | None = None     # the last evaluation's batches (None: all)

    def __post_init__(self):
        if self.steps < 1 or self.lr <= 0:
            raise ValueError(f"steps and lr must be positive, got {self.steps}, {self.lr}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if not 0 <= self.warmup <= self.steps:
            raise ValueError(f"warmup must lie in [0, steps={self.steps}], got {self.warmup}")


def linear_schedule(step: int, warmup: int, total: int) -> float:
    """The learning-rate factor: 0 -> 1 over `warmup` steps, then 1 -> 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def budget_schedule(step: int, warmup: int, fraction: float) -> float:
    """The learning-rate factor of a time budget: 0 -> 1 over `warmup` steps, times
    `1 - fraction` (the share of the budget spent), which reaches 0 when the time is up."""
    return min(1.0, (step + 1) / max(1, warmup)) * max(0.0, 1.0 - fraction)


class BertTrainer:
    """Train a `Bert` on `PretrainingData`, evaluating on held-out data.

    Args:
        model: a `mlm_bert.model.Bert`.
        data: training `PretrainingData` (purpose "mlm").
        config: a `TrainConfig`.
        out_dir: where `checkpoint.pt` and `metrics.jsonl` go.
        eval_data: held-out `PretrainingData` (purpose "eval"), or None.
        device: where to train.
        progress: show a progress bar (tqdm).
        meta: extra JSON-able facts stored in checkpoints (e.g. the preset).
    """

    def __init__(self, model, data, config: TrainConfig, out_dir, *, eval_data=None,
                 device="cpu", progress: bool = True, meta: dict | None = None):
        self.model, self.data, self.config = model.to(device), data, config
        self.eval_data, self.device, self.progress = eval_data, torch.device(device), progress
        self.out_dir = pathlib.Path(out_dir)
        self.meta = dict(meta or {})
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]   # biases, norms
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=config.betas, eps=config.eps)
        self.step, self.epoch, self.position = 0, 0, 0
        self.elapsed = 0.0            # seconds spent training, over every process of the run
        self._clock = None            # perf_counter at the last update of `elapsed`
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.saved_step = None        # the step of the last checkpoint written or read

    def lr_factor(self, step: int) -> float:
        """The learning-rate factor at `step`: over the steps, or over the time budget."""
        if self.config.minutes is None:
            return linear_schedule(step, self.config.warmup, self.config.steps)
        return budget_schedule(step, self.config.warmup, self.budget_spent())

    def budget_spent(self) -> float:
        """The share of the budget spent: of the time with `minutes`, else of the steps."""
        if self.config.minutes is None:
            return self.step / self.config.steps
        return self.elapsed / (60.0 * self.config.minutes)

    def _tick(self) -> None:
        """Add the time since the last tick to `elapsed`."""
        now = time.perf_counter()
        if self._clock is not None:
            self.elapsed += now - self._clock
        self._clock = now

    @property
    def checkpoint_path(self) -> pathlib.Path:
        return self.out_dir / "checkpoint.pt"

    @property
    def metrics_path(self) -> pathlib.Path:
        return self.out_dir / "metrics.jsonl"

    def losses(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """The summed loss of a batch and its parts: `mlm_loss`, `nsp_loss`, accuracies."""
        autocast = torch.autocast("cuda", dtype=torch.bfloat16,
                                  enabled=self.device.type == "cuda")
        with autocast:
            out = self.model(**batch)
        logits, targets = out["mlm_logits"].float(), out["mlm_targets"]
        mlm = F.cross_entropy(logits, targets)                  # selected positions only
        nsp = F.cross_entropy(out["nsp_logits"].float(), batch["nsp_label"])
        with torch.no_grad():
            parts = {"mlm_loss": mlm.detach(), "nsp_loss": nsp.detach(),
                     "mlm_acc": (logits.argmax(-1) == targets).float().mean(),
                     "nsp_acc": (out["nsp_logits"].argmax(-1) == batch["nsp_label"])
                     .float().mean()}
        return mlm + nsp, parts

    def train_step(self, batch: dict) -> dict:
        """One optimizer step on `batch`; returns its metrics as floats."""
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        loss, parts = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}

    def next_batch(self) -> dict:
        """The batch at (epoch, position), moving to the next epoch when one ends."""
        while self.position >= self.data.n_batches(self.epoch):
            if self.data.n_batches(self.epoch + 1) == 0:
                raise ValueError(f"an epoch has fewer items than a batch "
                                 f"({self.data.batch_size})")
            self.epoch, self.position = self.epoch + 1, 0
        batch = self.data.batch(self.epoch, self.position)
        self.position += 1
        return batch

    def train(self, *, resume: bool = False, stop_at: int | None = None) -> dict | None:
        """Train until the budget (`config.steps`, or `config.minutes`) is spent, or stop
        early at `stop_at` steps (as an interruption would).

        Returns:
            The last evaluation's metrics, or None without `eval_data`.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint_path.exists():
            self.load_checkpoint()
        elif self.metrics_path.exists():
            self.metrics_path.unlink()
        target = self.config.steps if stop_at is None else min(stop_at, self.config.steps)
        self._truncate_metrics()
        bar = self._progress_bar()
        self._sums, self._n, self._tokens = {}, 0, 0
        last_eval, self._clock, tick = None, None, time.perf_counter()
        self._tick()
        self.model.train()
        while self.step < target and not self.out_of_time():
            batch = self.next_batch()
            self._tokens += batch["input_ids"].numel()
            for k, v in self.train_step(batch).items():
                self._sums[k] = self._sums.get(k, 0.0) + v
            self._n += 1
            self.step += 1
            self._tick()
            kind = fault_point("step", self.step)        # MLM_BERT_FAULT (tests)
            if kind:
                fault(kind)
            if bar is not None:
                bar.update(1)
            done = self.step == self.config.steps or self.out_of_time()
            stopping = done or self.step == target
            if self.step % self.config.log_every == 0 or stopping:
                self._log_train(time.perf_counter() - tick, bar)
                tick = time.perf_counter()
            if self.eval_data is not None and (self.step % self.config.eval_every == 0 or done):
                last_eval = self.run_eval(full=done)
            if self.step % self.config.checkpoint_every == 0 or stopping:
                self._tick()
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        return last_eval

    def out_of_time(self) -> bool:
        """Whether the time budget (`config.minutes`) is spent; never without one."""
        return self.config.minutes is not None and self.budget_spent() >= 1.0

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm.auto import tqdm
        total = self.config.steps if self.config.minutes is None else None
        return tqdm(total=total, initial=self.step, unit="step", leave=True)

    def _log_train(self, seconds: float, bar) -> None:
        """Write the means over the steps since the last record, and reset them."""
        record = {"kind": "train", "step": self.step, "epoch": self.epoch,
                  "lr": self.scheduler.get_last_lr()[0],
                  **{k: v / self._n for k, v in self._sums.items()},
                  "tokens_per_s": self._tokens / seconds, "elapsed_s": self.elapsed}
        self._write(record)
        if bar is not None:
            bar.set_postfix(loss=f"{record['loss']:.3f}", mlm_acc=f"{record['mlm_acc']:.3f}",
                            nsp_acc=f"{record['nsp_acc']:.3f}")
        self._sums, self._n, self._tokens = {}, 0, 0

    def run_eval(self, *, full: bool = False) -> dict:
        """Evaluate on the held-out data (all of it with `full`) and log the record."""
        limit = self.config.final_eval_batches if full else self.config.eval_batches
        metrics = evaluate(self.model, self.eval_data, max_batches=limit, device=self.device)
        self._write({"kind": "eval", "step": self.step, "full": full,
                     "elapsed_s": self.elapsed, **metrics})
        return metrics

    def _write(self, record: dict) -> None:
        """Append one line (a kill can tear only this last line; `read_metrics` drops it)."""
        line = json.dumps(record) + "\n"
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            kind = fault_point("metrics", self.step)    # MLM_BERT_FAULT (tests)
            if kind:
                f.write(line[:len(line) // 2])
                f.flush()
                fault(kind)
            f.write(line)

    def _truncate_metrics(self) -> None:
        """Drop records past the current step (written after the checkpoint we resumed) and
        a torn last line."""
        if self.metrics_path.exists():
            kept = [r for r in read_metrics(self.metrics_path) if r["step"] <= self.step]
            write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def save_checkpoint(self, path=None) -> pathlib.Path:
        """Write everything a resumed run needs (atomically: a temporary file, flushed,
        fsynced, then renamed over the old one)."""
        path = pathlib.Path(path or self.checkpoint_path)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "step": self.step,
                 "epoch": self.epoch, "position": self.position, "elapsed_s": self.elapsed,
                 "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                 "model_config": dataclasses.asdict(self.model.config),
                 "train_config": dataclasses.asdict(self.config), "meta": self.meta}
        with deferred_interrupt():           # Ctrl-C mid-write: the checkpoint is finished first
            write_atomically(path, lambda f: torch.save(state, f),
                             fault_at=("checkpoint", self.step))
            self.saved_step = self.step
        return path

    def load_checkpoint(self, path=None) -> None:
        """Restore a checkpoint written by `save_checkpoint`.

        Raises:
            ValueError: the checkpoint's model or training configuration differs.
            mlm_bert.runs.RunError: the file is not a readable mlm_bert checkpoint.
        """
        state = read_checkpoint(path or self.checkpoint_path, map_location=self.device)
        if state["model_config"] != dataclasses.asdict(self.model.config):
            raise ValueError("the checkpoint's model configuration differs from this model's")
        if state["train_config"] != dataclasses.asdict(self.config):
            raise ValueError("the checkpoint was written with another TrainConfig")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.elapsed = float(state.get("elapsed_s", 0.0))      # absent in older checkpoints
        self.saved_step = self.step
        # generator states are CPU byte tensors, wherever map_location put the rest
        torch.set_rng_state(state["rng"].cpu())
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
