"""`python -m mlm_bert.predict "the acting was [MASK] good"`: a trained model's top-k guesses.

Reads the tokenizer and checkpoint of a run directory (default `out/bert-cpu`, the `cpu`
preset's) and prints, for the text as one segment (`[CLS] text [SEP]`), the fixed format

    text_with_mask: the acting was [MASK] good
    pred_top_1:     the acting was very[31.2%] good
    pred_top_2:     ...

(the probabilities above are for illustration). Write `[MASK]` for each piece to guess.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch

from .evaluate import format_predictions, topk
from .model import Bert, BertConfig
from .tokenizer import CLS, MASK, SEP, load_tokenizer

__all__ = ["load_run", "predict", "main"]


def load_run(run_dir, device="cpu"):
    """The tokenizer and the trained model of a run directory.

    Raises:
        FileNotFoundError: no tokenizer.json or checkpoint.pt there (the message says how to
            make them).
    """
    run_dir = pathlib.Path(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.is_file() or not (run_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no trained run in {run_dir}: train one first with "
                                f"python -m mlm_bert.train --preset smoke|cpu|gpu --out {run_dir}")
    tok = load_tokenizer(run_dir / "tokenizer.json")
    state = torch.load(ckpt, map_location=device, weights_only=False)
    model = Bert(BertConfig(**state["model_config"])).to(device)
    model.load_state_dict(state["model"])
    return tok, model.eval()


def predict(tok, model, text: str, *, k: int = 3) -> str:
    """The fixed-format predictions for `text` (which must contain `[MASK]`).

    Raises:
        ValueError: no `[MASK]` in the text, or the text is longer than the model's positions.
    """
    ids = [CLS, *tok.encode(text, add_special_tokens=False).ids, SEP]
    if MASK not in ids:
        raise ValueError("the text has no [MASK] to predict")
    if len(ids) > model.config.max_len:
        raise ValueError(f"the text is {len(ids)} pieces with [CLS] and [SEP], more than "
                         f"{model.config.max_len}")
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)                                   # [1, seq]
    top_ids, top_probs = topk(model, x, torch.zeros_like(x), torch.ones_like(x), k=k)
    return format_predictions(tok, x[0].cpu(), top_ids[0].cpu(), top_probs[0].cpu())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlm_bert.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="+", help="text with [MASK] where a piece is to guess")
    parser.add_argument("--run", default="out/bert-cpu", help="run directory")
    parser.add_argument("-k", "--top-k", type=int, default=3)
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be positive")
    try:
        tok, model = load_run(args.run)
        for text in args.text:
            print(predict(tok, model, text, k=args.top_k))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
