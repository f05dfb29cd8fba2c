"""`python -m mlm_bert.bench`: training throughput of our model beside Hugging Face's.

Both models have the same sizes (a preset's, or `--size`), random initialisation and the same
optimizer (AdamW), and train on the *same* batches in the same process: Hugging Face's
`BertForMaskedLM` built from a `transformers.BertConfig` (no download; its default attention is
SDPA), and `mlm_bert.model.Bert` (pre-LN, fused q/k/v, SDPA, the vocabulary projection only at
the selected positions, plus its NSP head, which the Hugging Face model does not have). A third
contender is ours with the vocabulary projection on every position, as Hugging Face's does, to
show what the architecture alone gives. The
steps alternate in rounds (ours, then theirs), so a change in the machine's load hits both
alike; a step is forward, backward and optimizer step, and tokens/s counts every position of
the `[batch, 128]` batch, padding included, the same for both. It is a benchmark, not a test:
the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from verify import cli

from mlm_bert.model import SIZES
from mlm_bert.presets import PRESETS, build_model, get_preset, prepare
from mlm_bert.runs import write_text
from mlm_bert.train import positive_int

__all__ = ["build_parser", "hf_model", "measure", "main"]


def hf_model(size: str, vocab_size: int, *, dropout: float = 0.1):
    """Hugging Face `BertForMaskedLM` of a named size, randomly initialised."""
    import transformers
    s = SIZES[size]
    config = transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=s["hidden"], num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"], intermediate_size=s["intermediate"],
        max_position_embeddings=128, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout)
    return transformers.BertForMaskedLM(config)


def _step(model, optimizer, batch, name: str, device):
    batch = {k: v.to(device) for k, v in batch.items()}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    ce = torch.nn.functional.cross_entropy
    with autocast:
        if name == "ours":
            out = model(**batch)
            loss = (ce(out["mlm_logits"].float(), out["mlm_targets"]) +
                    ce(out["nsp_logits"].float(), batch["nsp_label"]))
        elif name == "ours_all_positions":        # the head on every position, as HF does
            out = model(**batch, all_positions=True)
            loss = (ce(out["mlm_logits"].float().flatten(0, 1), batch["labels"].flatten()) +
                    ce(out["nsp_logits"].float(), batch["nsp_label"]))
        else:
            loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"], labels=batch["labels"]).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def measure(batches, size: str, vocab_size: int, *, rounds: int, steps_per_round: int,
            device="cpu", seed: int = 0) -> dict:
    """Tokens/s of ours and Hugging Face's, per round, on the same `batches` (reused cyclically);
    `seed` seeds the initialisations."""
    device = torch.device(device)
    torch.manual_seed(seed)
    models = {"ours": build_model(size, vocab_size).to(device),
              "ours_all_positions": build_model(size, vocab_size).to(device),
              "hf": hf_model(size, vocab_size).to(device)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    rates = {k: [] for k in models}
    for name, m in models.items():                          # warm-up: one step each
        _step(m, opts[name], batches[0], name, device)
    k = 0
    for _ in range(rounds):
        for name, m in models.items():
            chunk = [batches[(k + j) % len(batches)] for j in range(steps_per_round)]
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for batch in chunk:
                _step(m, opts[name], batch, name, device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[name].append(sum(b["input_ids"].numel() for b in chunk) /
                               (time.perf_counter() - t))
        k += steps_per_round
    ratios = [o / h for o, h in zip(rates["ours"], rates["hf"])]
    ratios_all = [o / h for o, h in zip(rates["ours_all_positions"], rates["hf"])]
    return {"size": size, "vocab_size": vocab_size, "device": str(device),
            "batch": list(batches[0]["input_ids"].shape), "rounds": rounds,
            "steps_per_round": steps_per_round,
            "params_ours": sum(p.numel() for p in models["ours"].parameters()),
            "params_hf": sum(p.numel() for p in models["hf"].parameters()),
            "tokens_per_s_ours": rates["ours"], "tokens_per_s_hf": rates["hf"],
            "tokens_per_s_ours_all_positions": rates["ours_all_positions"],
            "median_ratio": statistics.median(ratios),
            "median_ratio_all_positions": statistics.median(ratios_all),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


EXIT_CODES = """exit status: 0 measured; 1 the measurement failed (a missing package, an error
while training); 2 usage error (a bad argument); 130 interrupted (Ctrl-C; nothing is written)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlm_bert.bench", description=__doc__,
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="sizes and batch size of this preset (default cpu)")
    parser.add_argument("--size", choices=sorted(SIZES), help="override the preset's size")
    parser.add_argument("--corpus", default="reviews:1000",
                        help="reviews:N or generated:N (default reviews:1000)")
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="rounds, each timing every model in turn; the result is the median "
                             "over rounds (default 5)")
    parser.add_argument("--steps-per-round", type=positive_int, default=3,
                        help="training steps of each model in a round (default 3)")
    parser.add_argument("--threads", type=positive_int,
                        help="torch threads (default: the preset's, else torch's)")
    parser.add_argument("--seed", type=cli.seed, default=0,
                        help="seed of the batches and the initialisations (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (auto: CUDA when present)")
    parser.add_argument("--json", metavar="PATH", help="also write the result to PATH")
    return parser


def main(argv=None) -> int:
    prog = "python -m mlm_bert.bench"
    args = build_parser().parse_args(argv)
    problem = cli.cuda_problem(args.device) or (args.json and cli.file_problem(args.json))
    if problem:
        return cli.usage_error(prog, problem)
    try:
        preset = get_preset(args.preset)
        if args.threads or preset.threads:
            torch.set_num_threads(args.threads or preset.threads)
        device = args.device if args.device != "auto" else (
            "cuda" if torch.cuda.is_available() else "cpu")
        prep = prepare(args.corpus, preset.vocab_size, preset.batch_size,
                       f"out/bert-bench-{args.corpus.replace(':', '-')}-{preset.vocab_size}",
                       seed=args.seed)
        batches = [prep.train.batch(0, p) for p in range(min(8, prep.train.n_batches(0)))]
        result = measure(batches, args.size or preset.size, prep.tokenizer.get_vocab_size(),
                         rounds=args.rounds, steps_per_round=args.steps_per_round,
                         device=device, seed=args.seed)
    except KeyboardInterrupt:
        return cli.interrupted(prog)
    except (ValueError, ModuleNotFoundError, ImportError, RuntimeError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    result.update(preset=preset.name, corpus=args.corpus, seed=args.seed)
    med = statistics.median
    print(f"{result['size']} model, batch {result['batch']}, {device}, "
          f"{result['threads']} threads: ours {med(result['tokens_per_s_ours']):,.0f} tokens/s, "
          f"Hugging Face {med(result['tokens_per_s_hf']):,.0f} tokens/s, "
          f"median ratio {result['median_ratio']:.2f}x (head on every position: "
          f"{med(result['tokens_per_s_ours_all_positions']):,.0f} tokens/s, "
          f"{result['median_ratio_all_positions']:.2f}x)")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
