"""Collator throughput for `python -m verify.bench`: ours beside Hugging Face's, examples/s.

A collator's job in a pipeline is the whole step from a list of tokenized examples to a
masked batch: padding, the attention mask, the masking and the labels. So that is what is
timed here, on the same lists of examples for every collator:

* **the examples** are BERT-like: `[CLS]` text `[SEP]` with ids from a 30522-word vocabulary,
  lengths uniform in `[seq_len // 2, seq_len]` from a fixed seed, the first example of each
  batch at full length so that every collator pads to `seq_len` (JAX's pads to the longest);
  each is a dict with `input_ids` (a list of ints, as a tokenizer hands it over) and `index`;
* **ours**: `mlm_torch.collate.MLMCollator` (exact mode: each example masked by its stateless
  key) and `mlm_jax.collate.collate`; on `--device cuda` also `torch-device`, which pads on
  the host and masks on the GPU with `mlm_torch.streams.mask_rows`;
* **theirs**: `transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15,
  pad_to_multiple_of=seq_len)` on the same examples (`hf`: it derives the special-tokens mask
  from the ids itself), and again with each example's `special_tokens_mask` given, as a
  tokenizer called with `return_special_tokens_mask=True` provides it (`hf-stm`). Its
  tokenizer is a real `PreTrainedTokenizerFast` built offline (`verify.published`).

The timing is `verify.bench.timing`'s (turns, bursts, a rotation of distinct batches, the
median), with torch on one thread: that is how a collator runs, in a `DataLoader` worker
(torch sets one thread per worker), and it keeps a shared machine's other load from
stretching torch's multithreaded kernels.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mlm_ref.config import MaskingConfig

from ..registry import BERT
from .maskers import Masker
from .timing import time_maskers

__all__ = ["make_examples", "build", "run", "SEQ_LEN", "BATCHES", "GOAL"]

SEQ_LEN = 128
BATCHES = {"cpu": [32, 256], "cuda": [32, 256]}
QUICK_BATCHES = {"cpu": [32], "cuda": [256]}
GOAL = 3.0                             # the goal on a CPU: ours >= 3x Hugging Face's
_CLS, _SEP = 101, 102


def make_examples(batch: int, seq_len: int, seed: int) -> list[dict]:
    """One batch of BERT-like tokenized examples (see the module docstring).

    Returns:
        `batch` dicts with `input_ids` (list of ints) and `index` (distinct per seed).
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(2, seq_len // 2), seq_len + 1, size=batch)  # [batch]
    lengths[0] = seq_len
    words = rng.integers(999, BERT["n_tokens"], size=(batch, seq_len))     # [batch, seq_len]
    return [{"input_ids": [_CLS, *words[r, :n - 2].tolist(), _SEP], "index": seed * batch + r}
            for r, n in enumerate(lengths)]


def _ours_torch(config: MaskingConfig, device: str, seq_len: int) -> list[Masker]:
    import torch
    from mlm_torch.collate import MLMCollator
    from mlm_torch.streams import example_keys, mask_rows
    collator = MLMCollator(seed=0, pad_to_multiple_of=seq_len, **BERT)
    maskers = [Masker("torch", "MLMCollator", list, collator, note="exact mode, CPU")]
    if device == "cuda":
        dev = torch.device("cuda")

        def on_device(examples):        # pad on the host, mask on the GPU
            x = torch.full((len(examples), seq_len), config.padding_token, dtype=torch.int64)
            for r, e in enumerate(examples):
                x[r, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
            keys = example_keys(0, 0, [e["index"] for e in examples])
            return mask_rows(x.to(dev), keys.to(dev), config, check_ids=False)

        maskers.append(Masker("torch-device", "mask_rows", list, on_device,
                              sync=lambda out: torch.cuda.synchronize(),
                              note="padded on the host, masked on the GPU"))
    return maskers


def _ours_jax(config: MaskingConfig, device: str, seq_len: int) -> list[Masker]:
    from mlm_jax.collate import collate
    return [Masker("jax", "collate", list, lambda ex: collate(ex, config, seed=0, epoch=0),
                   note="exact mode; NumPy arrays out")]


def _huggingface(config: MaskingConfig, device: str, seq_len: int) -> list[Masker]:
    from transformers import DataCollatorForLanguageModeling
    from ..published import hf_tokenizer
    tokenizer = hf_tokenizer(config)
    hf = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.masking_prob,
                                         pad_to_multiple_of=seq_len)
    special = set(tokenizer.all_special_ids)

    def with_mask(batches):             # untimed: what return_special_tokens_mask=True adds
        return [[{**e, "special_tokens_mask": [int(t in special) for t in e["input_ids"]]}
                 for e in examples] for examples in batches]

    return [Masker("hf", "DataCollatorForLanguageModeling", list, hf,
                   note="special-tokens mask derived from the ids"),
            Masker("hf-stm", "DataCollatorForLanguageModeling", with_mask, hf,
                   note="special_tokens_mask given with the examples")]


_FACTORIES = {"torch": (_ours_torch, ["torch"]), "jax": (_ours_jax, ["jax"]),
              "hf": (_huggingface, ["torch", "transformers", "tokenizers"])}


def build(config: MaskingConfig, device: str,
          seq_len: int = SEQ_LEN) -> tuple[list[Masker], list[tuple[str, str]]]:
    """Every collator that can run here, and `(name, reason)` for those that cannot."""
    import importlib.util
    maskers, skipped = [], []
    for name, (factory, needs) in _FACTORIES.items():
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            skipped.append((name, f"not installed: {', '.join(missing)}"))
            continue
        try:
            maskers += factory(config, device, seq_len)
        except Exception as e:  # an incompatible release: say which
            skipped.append((name, f"{type(e).__name__}: {e}"))
    return maskers, skipped


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _ratios(results: list[dict], device: str) -> list[dict]:
    """Per batch size: our torch collator over each of Hugging Face's, beside the goal (on a
    CPU; the collators run on the CPU on either device, so a GPU run states none)."""
    by = {(r["collator"], r["batch"]): r["examples_per_s"] for r in results}
    out = []
    for batch in sorted({r["batch"] for r in results}):
        for theirs in ("hf", "hf-stm"):
            a, b = by.get(("torch", batch)), by.get((theirs, batch))
            if a and b:
                goal = GOAL if device == "cpu" else None
                out.append({"batch": batch, "ours": "torch", "theirs": theirs,
                            "speedup": a / b, "goal": goal,
                            "held": None if goal is None else a / b >= goal})
    return out


def run(device: str, *, batches: list[int] | None = None, seq_len: int = SEQ_LEN,
        repeats: int = 31, rotation: int = 8, budget_s: float | None = None,
        quick: bool = False,
        echo=print) -> dict:
    """Time every collator at every batch size; `echo` each row; return the JSON section.

    Args:
        device: `cpu` or `cuda` (on CUDA the `torch-device` row is added; the others run on
            the CPU either way, as collators do).
        batches: batch sizes (default `BATCHES[device]`, `QUICK_BATCHES` with `quick`).
        seq_len: the padded length, and the longest example.
        repeats: counted calls wanted per collator and batch size (median reported).
        rotation: distinct batches of examples per batch size, taken in turn.
        budget_s: rough seconds per collator and batch size (default 2 on a CPU, 1 on CUDA).
        quick: the quick batch sizes.
        echo: where the rows are printed as they come.

    Returns:
        `{"seq_len", "lengths", "vocab", "masking_prob", "torch_threads", "skipped",
        "results", "ratios"}` (docs/benchmarks.md describes the fields).
    """
    config = MaskingConfig(**BERT)
    batches = batches or (QUICK_BATCHES if quick else BATCHES)[device]
    # seconds per collator and batch size; short on CUDA, inside `make gpu-check`'s budget
    budget_s = budget_s or (2.0 if device == "cpu" else 1.0)
    maskers, skipped = build(config, device, seq_len)
    for name, why in skipped:
        echo(f"skipped collator {name}: {why}")
    echo(f"collators: examples/s, [batch, {seq_len}], torch on 1 thread")
    results = []
    with _torch_threads(1):
        for batch in batches:
            xs = [make_examples(batch, seq_len, seed) for seed in range(rotation)]
            timings = time_maskers(maskers, xs, warmup=2, repeats=repeats, budget_s=budget_s)
            for m, t in zip(maskers, timings):
                row = {"collator": m.name, "call": m.mode, "batch": batch, "seq_len": seq_len,
                       "examples_per_s": batch / t["median_s"], "median_s": t["median_s"],
                       "repeats": t["repeats"], "note": m.note}
                echo(f"{m.name:13s} {m.mode:32s} {batch:6d} {row['examples_per_s']:12.4g}")
                results.append(row)
    return {"seq_len": seq_len, "lengths": [max(2, seq_len // 2), seq_len],
            "vocab": BERT["n_tokens"], "masking_prob": config.masking_prob, "torch_threads": 1,
            "skipped": [{"collator": n, "reason": w} for n, w in skipped],
            "results": results, "ratios": _ratios(results, device)}
