"""Named training runs and the preparation they share: corpus, tokenizer, items, model.

A preset fixes everything a run depends on (corpus, vocabulary size, model size and recipe,
batch size, budget, learning rate), so `python -m mlm_bert.train --preset cpu` means the same
run everywhere.

- `smoke`: 300 reviews, a micro model, 120 steps: seconds, checks that everything runs (with
  the `cpu` preset's recipe, so that the tests run the shipped code path).
- `cpu`: all 25,000 reviews, the tiny model (BERT-tiny's shape: 2 layers, 128 wide) with the
  recipe that leaves the word-frequency plateau soonest in docs/bert.md's ablation (rotary
  positions, no dropout, peak lr 3e-3), trained for a *time budget*: 22 minutes of training,
  so that `make bert` (data, vocabulary, training, final evaluation, report) stays within 30
  minutes on 2 CPU cores; a slower machine trains fewer steps on the same schedule.
- `gpu`: BERT-base size with BERT's recipe (learned positions, dropout 0.1), sized by
  arithmetic for about 10 minutes on one H100 (docs/bert.md); not measured.

The CPU presets use one intra-op thread: at these sizes the matrices are small, and on a
machine shared with other jobs a second thread mostly waits for the first (with one other job
running, two threads gave a quarter of one thread's tokens/s); on an idle 2-core machine
`--threads 2` gave 1.7x the tokens/s.

`prepare` builds (or reloads) the run's tokenizer and the training and held-out
`PretrainingData`; the tokenizer is saved in the run directory, so a resumed run and
`mlm_bert.predict` read the very same vocabulary.
"""

from __future__ import annotations

import dataclasses
import pathlib

from .data import documents_from_reviews, generated_corpus, held_out_split, load_reviews
from .items import EVAL_SEED, PretrainingData, encode_documents
from .model import SIZES, Bert, BertConfig
from .runs import write_text
from .tokenizer import load_tokenizer, train_tokenizer, word_starts
from .trainer import TrainConfig

__all__ = ["Preset", "PRESETS", "get_preset", "Prepared", "prepare", "build_model"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """One named run. `corpus`: "reviews" (all), "reviews:N" (the first N) or "generated:N"."""

    name: str
    corpus: str
    vocab_size: int
    size: str
    batch_size: int
    train: TrainConfig
    dropout: float = 0.1
    threads: int | None = None      # torch intra-op threads (None: torch's default)
    position: str = "learned"       # mlm_bert.model.POSITIONS
    init: str = "bert"              # BertConfig.init


PRESETS = {p.name: p for p in (
    Preset("smoke", "reviews:300", 2048, "micro", 16,
           TrainConfig(steps=120, lr=3e-3, warmup=12, log_every=10, eval_every=120,
                       eval_batches=None, checkpoint_every=120), threads=1,
           dropout=0.0, position="rotary"),
    # a time budget: `steps` only caps it (a fast machine stops there)
    Preset("cpu", "reviews", 8192, "tiny", 32,
           TrainConfig(steps=200_000, lr=3e-3, warmup=200, log_every=50, eval_every=500,
                       eval_batches=10, checkpoint_every=500, minutes=22.0), threads=1,
           dropout=0.0, position="rotary"),
    Preset("gpu", "reviews", 16384, "base", 128,
           TrainConfig(steps=6000, lr=3e-4, warmup=500, log_every=50, eval_every=1000,
                       eval_batches=None, checkpoint_every=1000)),
)}


def get_preset(name: str) -> Preset:
    """The preset called `name`. Raises: ValueError: unknown name (the message lists them)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def _documents(corpus: str) -> list[list[str]]:
    kind, _, count = corpus.partition(":")
    n = int(count) if count else None
    if kind == "reviews":
        return documents_from_reviews(load_reviews(n))
    if kind == "generated":
        return generated_corpus(n or 200)
    raise ValueError(f"corpus must be reviews, reviews:N or generated:N, got {corpus!r}")


@dataclasses.dataclass
class Prepared:
    """What a run needs besides the model: tokenizer, word starts, train and held-out data."""

    tokenizer: object
    starts: object
    train_docs: list
    train: PretrainingData
    held_out: PretrainingData


def prepare(corpus: str, vocab_size: int, batch_size: int, out_dir, *, seed: int,
            masking: str = "wwm") -> Prepared:
    """Corpus -> documents -> (held-out split) -> tokenizer (trained or reloaded) -> data."""
    out_dir = pathlib.Path(out_dir)
    train_text, held_text = held_out_split(_documents(corpus), 0.05, seed=EVAL_SEED)
    tok_path = out_dir / "tokenizer.json"
    if tok_path.exists():
        tok = load_tokenizer(tok_path)
    else:
        tok = train_tokenizer((s for d in train_text for s in d), vocab_size)
        # atomically, so that a kill leaves no half-written vocabulary for the resumed run
        write_text(tok_path, tok.to_str(pretty=True), fault_at=("tokenizer", 0))
    starts = word_starts(tok)
    train_docs = encode_documents(tok, train_text)
    train = PretrainingData(train_docs, starts, seed=seed, batch_size=batch_size,
                            masking=masking)
    # held-out masks at the training's level (whole words, or pieces for the piece-level runs
    # of the experiment), from the fixed "eval" stream
    held = PretrainingData(encode_documents(tok, held_text), starts, seed=EVAL_SEED,
                           batch_size=batch_size, purpose="eval",
                           masking="wwm" if masking == "wwm" else "ours")
    return Prepared(tok, starts, train_docs, train, held)


def build_model(size: str, vocab_size: int, *, dropout: float = 0.1,
                position: str = "learned", init: str = "bert") -> Bert:
    """A freshly initialised `Bert` of a named size (`SIZES`)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: choose from {', '.join(SIZES)}")
    return Bert(BertConfig(vocab_size=vocab_size, dropout=dropout, position=position,
                           init=init, **SIZES[size]))
