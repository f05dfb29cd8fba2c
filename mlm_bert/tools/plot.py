"""The curves of a run: training losses, accuracies (held-out also at `[MASK]` and unchanged
positions) and held-out perplexity, from metrics.jsonl."""

from __future__ import annotations

import pathlib

from mlm_bert.runs import write_atomically

__all__ = ["plot_curves"]


def plot_curves(records: list[dict], path, *, title: str = "") -> pathlib.Path:
    """Draw the curves of `records` (from `read_metrics`) into a PNG at `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.6))
    steps = [r["step"] for r in train]
    ax1.plot(steps, [r["mlm_loss"] for r in train], label="MLM loss (train)")
    ax1.plot(steps, [r["nsp_loss"] for r in train], label="NSP loss (train)")
    ax1.set_xlabel("step")
    ax1.legend()
    ax2.plot(steps, [r["mlm_acc"] for r in train], label="MLM accuracy (train)")
    ax2.plot(steps, [r["nsp_acc"] for r in train], label="NSP accuracy (train)")
    if evals:
        ax2.plot([r["step"] for r in evals], [r["mlm_acc"] for r in evals], "o-",
                 label="MLM accuracy (held-out)")
        ax2.plot([r["step"] for r in evals], [r["nsp_acc"] for r in evals], "s-",
                 label="NSP accuracy (held-out)")
        # the stages: copying shows at the unchanged positions, context at [MASK]
        for key, label in (("mask_acc", "at [MASK] (held-out)"),
                           ("unchanged_acc", "at unchanged (held-out)")):
            points = [(r["step"], r[key]) for r in evals if r.get(key) is not None]
            if points:
                ax2.plot(*zip(*points), "^--", label=f"MLM accuracy {label}")
        ax3.plot([r["step"] for r in evals], [r["perplexity"] for r in evals], "o-")
        ax3.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.legend(fontsize=8)
    ax3.set_title("held-out perplexity (masked positions)")
    ax3.set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = pathlib.Path(path)
    try:
        write_atomically(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path
