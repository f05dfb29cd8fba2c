"""`python -m mlm_bert.report RUN_DIR`: write a run's measured results into docs/bert.md.

docs/bert.md carries four generated sections between markers, `<!-- BEGIN bert:NAME -->` and
`<!-- END bert:NAME -->`: `run` (the machine, command and time of one training run, its final
held-out metrics beside the unigram and context baselines on the same positions, per masking
category, per whole word and at the other masking level, the curves, the probe sentences and
example predictions, from its `summary.json`, `metrics.jsonl`, `probes.txt`,
`context_examples.txt` and `predictions.txt`), `ablation` (from `--ablation ablation.json`),
`experiment` (from `--experiment experiment.json`) and `bench` (from `--bench bench.json`). A section is rewritten only when its input is given, so each result is
regenerated from its own files; no figure is typed by hand. The curves go to
`docs/img/bert-curves-<preset>.png`.

The page is by default the `docs/bert.md` of the checkout that holds this package (not of the
current folder, so a run from elsewhere neither fails nor writes a stray page), and it is
rewritten atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import sys

from verify import cli

from mlm_bert.runs import RunError, read_metrics, write_text
from mlm_bert.tools.plot import plot_curves

__all__ = ["build_parser", "run_section", "experiment_section", "bench_section",
           "ablation_section", "replace_section", "main", "DEFAULT_DOC"]

# the page of the checkout that holds this package, wherever the command runs
DEFAULT_DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "bert.md"


def run_section(run_dir, img_dir, doc_path) -> str:
    """The markdown of one training run's results (and its curve plot, written to `img_dir`)."""
    run_dir, img_dir = pathlib.Path(run_dir), pathlib.Path(img_dir)
    if not (run_dir / "summary.json").is_file():
        raise RunError(f"no finished run in {run_dir} (no summary.json): train it with python "
                       f"-m mlm_bert.train --out {run_dir} (--resume finishes an interrupted "
                       "one)")
    s = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    png = plot_curves(read_metrics(run_dir / "metrics.jsonl"),
                      img_dir.resolve() / f"bert-curves-{s['preset']}.png",
                      title=f"{s['preset']} preset, masking {s['masking']}, seed {s['seed']}")
    rel = pathlib.Path(os.path.relpath(png, pathlib.Path(doc_path).resolve().parent))
    return "\n".join([*_run_header(s), "", *_metrics_table(s), "",
                      f"![training curves]({rel.as_posix()})", "",
                      *_text_block(run_dir, "probes.txt", "Probe sentences "
                                   "(`mlm_bert.predict.PROBES`), top-5 at each `[MASK]`:"),
                      *_text_block(run_dir, "context_examples.txt", "Held-out `[MASK]` "
                                   "positions where the top-1 is right and is not one of the "
                                   "20 most frequent pieces (the answer came from the "
                                   "context):"),
                      *_text_block(run_dir, "predictions.txt", "Held-out examples with their "
                                   "evaluation masks (all selected positions are guessed, "
                                   "including those left unchanged or randomised):")]).strip()


def _run_header(s: dict) -> list[str]:
    machine = s.get("machine", {})
    load = machine.get("load_average")
    where = (f" ({machine.get('cpus')} CPUs, {machine.get('threads')} torch thread(s), load "
             f"average {load[0]:.1f} at the start and {load[1]:.1f} at the end)"
             if load and None not in load else "")
    budget = (f"a {s['minutes_budget']:g}-minute training budget"
              if s.get("minutes_budget") else f"{s['steps']:,} steps")
    flags = "" if s["masking"] == "wwm" else f" --masking {s['masking']}"
    flags += f" --seed {s['seed']}" if s["seed"] else ""
    return [f"`python -m mlm_bert.train --preset {s['preset']}{flags}`: {s['size']} model "
            f"({s['parameters']:,} parameters, positions `{s.get('position', 'learned')}`, "
            f"init `{s.get('init', 'bert')}`, dropout {s.get('dropout', 0.1)}), "
            f"vocabulary {s['vocab_size']:,}, batch {s['batch_size']}, masking "
            f"`{s['masking']}`, {budget}: {s['steps']:,} steps on {s['device']}{where}; "
            f"training {s.get('train_s', 0) / 60:.1f} minutes, the whole command "
            f"{s['wall_s'] / 60:.1f} minutes (mean {s['train_tokens_per_s']:,.0f} tokens/s)."]


def _metrics_table(s: dict) -> list[str]:
    h, o = s["held_out"], s.get("other_level")
    crossed = s.get("crossed_context_baseline_s")
    rows = [("perplexity at the selected positions", "perplexity", "{:.1f}"),
            ("unigram-frequency baseline, same positions", "unigram_perplexity", "{:.1f}"),
            ("context n-gram baseline (left + right neighbours), same positions",
             "context_baseline_perplexity", "{:.1f}"),
            ("top-1 accuracy, all selected positions (`mlm_acc`)", "mlm_acc", "{:.3f}"),
            ("top-1 at `[MASK]` positions (`mask_acc`)", "mask_acc", "{:.3f}"),
            ("top-1 at random-piece positions", "random_acc", "{:.3f}"),
            ("top-1 at unchanged positions", "unchanged_acc", "{:.3f}"),
            ("mean NLL at `[MASK]` / random / unchanged positions", None, None),
            ("whole words: all pieces right / perplexity per word", None, None),
            ("NSP accuracy", "nsp_acc", "{:.3f}")]
    lines = [f"| held-out ({h['n_items']:,} items) | masking `{s['masking']}` "
             f"({h['n_selected']:,} positions) | "
             + (f"masking `{o['masking']}` ({o['n_selected']:,} positions) |" if o else "|"),
             "|---|---|" + ("---|" if o else "")]
    for label, key, fmt in rows:
        cells = [_cell(m, key, fmt, label) for m in ([_flat(s, h), _flat(o, o)] if o
                                                       else [_flat(s, h)])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Time at which the periodic evaluation (first batches) first beat the "
              f"context baseline: " + (f"{crossed / 60:.1f} minutes of training."
                                       if crossed is not None else "never."), "",
              *_targets(s)]
    return lines


def _targets(s: dict) -> list[str]:
    """The `cpu` preset's targets (docs/bert.md), each with the run's figure and whether it
    is met."""
    h = s["held_out"]
    ratio = h["perplexity"] / s["unigram_perplexity"]
    checks = [("perplexity / unigram baseline's", f"{ratio:.3f}", "<= 0.15", ratio <= 0.15),
              ("top-1 at `[MASK]` (`mask_acc`)", f"{h['mask_acc']:.3f}", ">= 0.25",
               h["mask_acc"] >= 0.25),
              ("perplexity against the context baseline's",
               f"{h['perplexity']:.1f} vs {s['context_baseline_perplexity']:.1f}", "below",
               h["perplexity"] < s["context_baseline_perplexity"]),
              ("NSP accuracy", f"{h['nsp_acc']:.3f}", ">= 0.75 (aim)", h["nsp_acc"] >= 0.75),
              ("the whole command", f"{s['wall_s'] / 60:.1f} minutes", "<= 30 minutes",
               s["wall_s"] <= 1800)]
    return ["The `cpu` preset's targets, at its masking level and vocabulary:", "",
            "| target | this run | wanted | met? |", "|---|---|---|---|",
            *[f"| {name} | {value} | {want} | {'yes' if ok else 'no'} |"
              for name, value, want, ok in checks]]


def _flat(top: dict, metrics: dict) -> dict:
    """A run's (or other level's) metrics with its baselines beside them."""
    return {**metrics, "unigram_perplexity": top["unigram_perplexity"],
            "context_baseline_perplexity": top["context_baseline_perplexity"]}


def _cell(m: dict, key, fmt, label) -> str:
    if key is None and label.startswith("mean NLL"):
        return " / ".join(f"{m[f'{c}_nll']:.2f}" for c in ("mask", "random", "unchanged"))
    if key is None:
        return f"{m['word_acc']:.3f} / {m['word_perplexity']:.0f}"
    return fmt.format(m[key]) if m.get(key) is not None else "n/a"


def _text_block(run_dir, name: str, caption: str) -> list[str]:
    path = pathlib.Path(run_dir) / name
    if not path.is_file():
        return []
    return [caption, "", "```text", path.read_text(encoding="utf-8").strip(), "```", ""]


def ablation_section(path) -> str:
    """The markdown table of `mlm_bert.tools.ablate`'s `ablation.json`: per variant its
    held-out perplexity and top-1 at `[MASK]` at each evaluation step (a run stopped early
    shows a dash where it has no evaluation)."""
    a = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    steps = sorted({c["step"] for r in a["results"] for c in r["curve"]})
    at = ", ".join(f"{s:,}" for s in steps)
    lines = [f"| variant | settings | held-out perplexity at steps {at} | `mask_acc` at the "
             f"same steps | unchanged acc, last | tokens/s |", "|---|---|---|---|---|---|"]
    for r in a["results"]:
        v = r["settings"]
        settings = (f"dropout {v['dropout']}, lr {v['lr']:g}, batch {v['batch']}, "
                    f"positions {v['position']}, init {v.get('init', 'bert')}")
        if v.get("model") == "hf":
            settings += ", Hugging Face's `BertForPreTraining`"
        by_step = {c["step"]: c for c in r["curve"]}
        ppl = " / ".join(f"{by_step[s]['perplexity']:.0f}" if s in by_step else "–"
                         for s in steps)
        acc = " / ".join(f"{by_step[s]['mask_acc']:.3f}" if s in by_step else "–"
                         for s in steps)
        lines.append(f"| `{r['variant']}` | {settings} | {ppl} | {acc} | "
                     f"{r['final']['unchanged_acc']:.3f} | {r['tokens_per_s']:,.0f} |")
    return "\n".join(lines)


SPLITS = {"ours": "0.8/0.1/0.1", "labml": "0.81/0.09/0.10", "mask-only": "1/0/0, broken"}


def experiment_section(path) -> str:
    """The markdown table of an `experiment.json`: each masking's mean ± sd over seeds and
    its paired difference from ours with a confidence interval."""
    e = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    first = e.get("first_seed", 0)             # absent in files older than --seed
    others = [k[:-len("_minus_ours")] for k in next(iter(e["comparison"].values()))
              if k.endswith("_minus_ours")]
    head = " | ".join(f"{m} ({SPLITS.get(m, '?')})" for m in ["ours", *others])
    diffs = " | ".join(f"{m} - ours [95% CI]" for m in others)
    lines = [f"Preset `{e['preset']}`, {e['steps']:,} steps, seeds "
             f"{first}..{first + e['seeds'] - 1}; "
             "mean ± sd over seeds; differences paired by seed, with a 95% confidence interval "
             "(Student's t over the seeds); **bold**: the interval excludes 0.", "",
             f"| held-out metric | {head} | {diffs} |",
             "|---|" + "---|" * (1 + 2 * len(others))]
    for metric, row in e["comparison"].items():
        cells = [f"{row[m]['mean']:.4f} ± {row[m]['sd']:.4f}" for m in ["ours", *others]]
        for m in others:
            d = row[f"{m}_minus_ours"]
            text = f"{d['mean_diff']:+.4f}"
            if d.get("ci_low") is not None:
                text += f" [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
            elif d.get("p") is not None:                  # files written before intervals
                text += f" (p {d['p']:.3f})"
            cells.append(f"**{text}**" if d["exceeds_noise"] else text)
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_section(path) -> str:
    """The markdown of a `mlm_bert.bench --json` result."""
    b = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    med = statistics.median
    return "\n".join([
        f"`{b['size']}` size, batch {b['batch'][0]} x {b['batch'][1]}, {b['device']}, "
        f"torch threads: {b['threads']}, torch {b['torch']}, {b['rounds']} rounds of "
        f"{b['steps_per_round']} steps each (median over rounds).", "",
        "| model | parameters | tokens/s |", "|---|---|---|",
        f"| ours (`mlm_bert.model.Bert`, MLM + NSP) | {b['params_ours']:,} | "
        f"{med(b['tokens_per_s_ours']):,.0f} |",
        f"| ours, vocabulary projection on every position | {b['params_ours']:,} | "
        f"{med(b['tokens_per_s_ours_all_positions']):,.0f} |",
        f"| Hugging Face `BertForMaskedLM` (MLM) | {b['params_hf']:,} | "
        f"{med(b['tokens_per_s_hf']):,.0f} |", "",
        f"Median per-round ratio ours / Hugging Face: **{b['median_ratio']:.2f}x** "
        f"({b['median_ratio_all_positions']:.2f}x with the projection on every position)."])


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the body between the `name` markers replaced.

    Raises:
        ValueError: the markers are missing.
    """
    pattern = re.compile(rf"(<!-- BEGIN bert:{name} -->\n).*?(\n<!-- END bert:{name} -->)",
                         re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no <!-- BEGIN bert:{name} --> ... <!-- END bert:{name} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


EXIT_CODES = """exit status: 0 written; 2 usage error (a missing or unreadable input, a page
without the markers: the line says which); 130 interrupted (Ctrl-C; the page is unchanged)."""


def build_parser() -> argparse.ArgumentParser:
    prog = "python -m mlm_bert.report"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="a run directory (python -m mlm_bert.train)")
    parser.add_argument("--experiment", metavar="PATH",
                        help="experiment.json of python -m mlm_bert.experiment")
    parser.add_argument("--bench", metavar="PATH",
                        help="the --json output of python -m mlm_bert.bench")
    parser.add_argument("--ablation", metavar="PATH",
                        help="ablation.json of python -m mlm_bert.tools.ablate")
    parser.add_argument("--doc", metavar="PATH",
                        help=f"the page to rewrite, which must hold the markers (default: "
                             f"docs/bert.md beside this package, {DEFAULT_DOC})")
    parser.add_argument("--img", metavar="DIR",
                        help="where the curve plot goes (default: img/ beside the page)")
    return parser


def main(argv=None) -> int:
    prog = "python -m mlm_bert.report"
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.run or args.experiment or args.bench or args.ablation):
        parser.error("give a run directory, --experiment, --bench or --ablation")
    doc = pathlib.Path(args.doc) if args.doc else DEFAULT_DOC
    if not doc.is_file():
        hint = "" if args.doc else " (this package is not in a checkout): give --doc PATH"
        return cli.usage_error(prog, f"no page {doc}{hint}")
    img = pathlib.Path(args.img) if args.img else doc.parent / "img"
    try:
        text = doc.read_text(encoding="utf-8")
        if args.run:
            text = replace_section(text, "run", run_section(args.run, img, doc))
        if args.experiment:
            text = replace_section(text, "experiment", experiment_section(args.experiment))
        if args.bench:
            text = replace_section(text, "bench", bench_section(args.bench))
        if args.ablation:
            text = replace_section(text, "ablation", ablation_section(args.ablation))
        write_text(doc, text)
    except KeyboardInterrupt:
        return cli.interrupted(prog)
    except (OSError, ValueError, KeyError, TypeError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        return cli.usage_error(prog, what)
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
