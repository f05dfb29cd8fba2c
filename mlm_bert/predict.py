"""`python -m mlm_bert.predict "the acting was [MASK] good"`: a trained model's top-k guesses.

Reads the tokenizer and checkpoint of a run directory (default `out/bert-cpu`, the `cpu`
preset's) and prints, for the text as one segment (`[CLS] text [SEP]`), the fixed format

    text_with_mask: the acting was [MASK] good
    pred_top_1:     the acting was very[31.2%] good
    pred_top_2:     ...

(the probabilities above are for illustration). Write `[MASK]` for each piece to guess
(`[mask]` too: the vocabulary is uncased). When the run's summary says the model is no better
than the unigram baseline, a note on stderr says so: its guesses are then word frequencies,
not readings of the context.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

import numpy as np
import torch

from verify import cli

from .evaluate import format_predictions, topk
from .model import Bert, BertConfig
from .runs import RunError, read_checkpoint, read_tokenizer
from .tokenizer import CLS, MASK, PAD, SEP, detokenize

__all__ = ["PROBES", "build_parser", "load_run", "predict", "probes", "context_examples",
           "baseline_note", "main"]

# Fixed probe sentences: each asks for a word that only the context decides (an adverb before
# "good", a verb between "i" and "this movie", a noun that can be "too long", ...). Every run
# writes their top-5 to `probes.txt`, so runs and recipes compare on the same questions.
PROBES = (
    "the acting was [MASK] good .",
    "i [MASK] this movie .",
    "the [MASK] was too long .",
    "this is one of the [MASK] movies i have ever seen .",
    "i would [MASK] recommend this film to anyone .",
    "the special [MASK] were amazing .",
    "he plays the [MASK] of a young doctor .",
    "it was a waste of [MASK] .",
    "the story takes place in [MASK] york .",
    "i gave it a [MASK] out of ten .",
)

# `[mask]`, `[Mask]`, ...: the uncased tokenizer would read them as three pieces
_ANY_CASE_MASK = re.compile(r"\[mask\]", re.IGNORECASE)


def load_run(run_dir, device="cpu"):
    """The tokenizer and the trained model of a run directory.

    Raises:
        mlm_bert.runs.RunError: no run there (the message says how to make one), or its
            tokenizer or checkpoint is damaged, another program's, or of another vocabulary.
    """
    run_dir = pathlib.Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run directory: name the folder with --run")
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.is_file() or not (run_dir / "tokenizer.json").is_file():
        raise RunError(f"no trained run in {run_dir}: train one first with "
                       f"python -m mlm_bert.train --preset smoke|cpu|gpu --out {run_dir}")
    tok = read_tokenizer(run_dir / "tokenizer.json")
    state = read_checkpoint(ckpt, map_location=device)
    try:
        model = Bert(BertConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        first = " ".join(str(e).split())[:120] or type(e).__name__
        raise RunError(f"{ckpt} is not a mlm_bert checkpoint of this version: {first}") from None
    if model.config.vocab_size != tok.get_vocab_size():
        raise RunError(f"{ckpt} has a vocabulary of {model.config.vocab_size} pieces, "
                       f"{run_dir / 'tokenizer.json'} {tok.get_vocab_size()}: they come from "
                       "different runs")
    return tok, model.to(device).eval()


def predict(tok, model, text: str, *, k: int = 3) -> str:
    """The fixed-format predictions for `text` (which must contain `[MASK]`, in any case).

    Raises:
        ValueError: no `[MASK]` in the text, the text is longer than the model's positions, or
            `k` is not in [1, vocabulary size].
    """
    vocab = model.config.vocab_size
    if not 1 <= k <= vocab:
        raise ValueError(f"--top-k must lie in [1, {vocab}] (the vocabulary), got {k}")
    text = _ANY_CASE_MASK.sub("[MASK]", text)
    ids = [CLS, *tok.encode(text, add_special_tokens=False).ids, SEP]
    if MASK not in ids:
        raise ValueError(f"the text {text!r} has no [MASK] to predict")
    if len(ids) > model.config.max_len:
        raise ValueError(f"the text is {len(ids)} pieces with [CLS] and [SEP], more than "
                         f"{model.config.max_len}")
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)                                   # [1, seq]
    top_ids, top_probs = topk(model, x, torch.zeros_like(x), torch.ones_like(x), k=k)
    return format_predictions(tok, x[0].cpu(), top_ids[0].cpu(), top_probs[0].cpu())


def probes(tok, model, *, k: int = 5) -> str:
    """The top-`k` predictions for every sentence of `PROBES`, blocks separated by a blank
    line."""
    return "\n\n".join(predict(tok, model, text, k=k) for text in PROBES)


@torch.no_grad()
def context_examples(tok, model, data, *, n: int = 10, frequent: int = 20,
                     width: int = 8, max_batches: int = 4) -> str:
    """Held-out `[MASK]` positions where the model's top-1 is right and is not one of the
    `frequent` most common pieces of the held-out text (so the answer came from the context,
    not from word frequency): a window of `width` pieces either side, the truth and the top-3.

    Args:
        data: held-out `PretrainingData` (eval purpose); its first `max_batches` batches are
            searched.
    """
    from .baselines import unigram_log_probs
    common = set(np.argsort(-unigram_log_probs(data.documents, model.config.vocab_size))
                 [:frequent].tolist())
    device = next(model.parameters()).device
    lines = []
    for position in range(min(max_batches, data.n_batches(0))):
        batch = data.batch(0, position)
        ids, probs = topk(model, batch["input_ids"].to(device),
                          batch["token_type_ids"].to(device),
                          batch["attention_mask"].to(device), k=3)
        for r, c in torch.nonzero((batch["input_ids"] == MASK) & (batch["labels"] != -100)):
            truth = int(batch["labels"][r, c])
            if int(ids[r, c, 0]) != truth or truth in common or len(lines) >= n:
                continue
            lo, hi = max(1, int(c) - width), int(c) + width + 1
            window = [tok.id_to_token(i) for i in batch["input_ids"][r, lo:hi].tolist()
                      if i not in (PAD, CLS, SEP)]
            guesses = ", ".join(f"{tok.id_to_token(int(i))} {100 * float(q):.0f}%"
                                for i, q in zip(ids[r, c], probs[r, c]))
            lines.append(f"{detokenize(window)}\n    truth: {tok.id_to_token(truth)}; "
                         f"top-3: {guesses}")
    return "\n".join(lines) if lines else "(no such position in the searched batches)"


def baseline_note(run_dir) -> str | None:
    """A warning when the run's `summary.json` shows the model no better than the unigram
    baseline (or there is no summary: an unfinished run), else None."""
    path = pathlib.Path(run_dir) / "summary.json"
    try:
        s = json.loads(path.read_text(encoding="utf-8"))
        ppl, unigram = float(s["held_out"]["perplexity"]), float(s["unigram_perplexity"])
    except FileNotFoundError:
        return (f"note: {path} is missing: the run has not finished, so its checkpoint may be "
                "far from trained (python -m mlm_bert.train --resume finishes it)")
    except (OSError, ValueError, KeyError, TypeError):
        return f"note: {path} is unreadable: how well this model does is unknown"
    if ppl >= unigram:
        return (f"note: this model's held-out perplexity {ppl:.1f} is no better than the "
                f"unigram baseline's {unigram:.1f}: its guesses follow word frequencies, not "
                "the context (train longer, or a larger preset)")
    return None


EXIT_CODES = """exit status: 0 done; 2 usage error (a bad argument, a text without [MASK], or a run
directory whose files cannot be used: the line says which); 130 interrupted (Ctrl-C)."""


def build_parser() -> argparse.ArgumentParser:
    prog = "python -m mlm_bert.predict"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="+",
                        help="text with [MASK] (or [mask]) where a piece is to guess")
    parser.add_argument("--run", default="out/bert-cpu", metavar="DIR",
                        help="run directory of python -m mlm_bert.train (default out/bert-cpu)")
    parser.add_argument("-k", "--top-k", type=int, default=3,
                        help="guesses per masked piece, at most the vocabulary size (default 3)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the model runs (auto: CUDA when present)")
    return parser


def main(argv=None) -> int:
    prog = "python -m mlm_bert.predict"
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be positive")
    problem = cli.cuda_problem(args.device)
    if problem:
        return cli.usage_error(prog, problem)
    device = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    try:
        tok, model = load_run(args.run, device)
        if args.top_k > model.config.vocab_size:
            return cli.usage_error(prog, f"--top-k {args.top_k} exceeds the run's vocabulary "
                                         f"of {model.config.vocab_size} pieces")
        note = baseline_note(args.run)
        if note:
            print(note, file=sys.stderr)
        for text in args.text:
            print(predict(tok, model, text, k=args.top_k))
    except KeyboardInterrupt:
        return cli.interrupted(prog)
    except ValueError as e:                          # RunError included
        return cli.usage_error(prog, str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
