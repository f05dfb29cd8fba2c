"""`python -m verify.pipeline --plan`: what each pipeline check can see in a stream of the
planned size, and the positions an effect needs, without running the user's pipeline.

The planned stream is `--examples` examples (default 4,096) of 64 to 128 tokens, over
`--epochs` epochs and `--world-size` ranks, batches of 32: the size a run's checks are decided
at. The MDEs are measured, not guessed: the plan gates our reference pipeline of that size
(each epoch a fresh order split between the ranks; each example masked with its own stateless
key, `mlm_ref.streams`, or, with `--wwm`, whole words drawn by `mlm_ref.wwm`) and reads each
statistical check's MDE at the first Holm level (`verify.engine.planner`). For a token-level
stream `--effect` (as `verify.stats --effect`) gives the eligible positions the stream must
hold for the designated check to have 50% and 95% power (`verify.token.plan`).
"""

from __future__ import annotations

import numpy as np

from mlm_ref.config import MaskingConfig

from ..engine.planner import format_mde_rows, mde_rows

__all__ = ["reference_pipeline", "format_pipeline_plan", "PLAN_EXAMPLES", "PLAN_BATCH"]

PLAN_EXAMPLES = 4096
PLAN_BATCH = 32


class _Reference:
    """Our pipeline over `examples` synthetic examples: `ref(*, epoch, rank, world_size)`."""

    def __init__(self, config: MaskingConfig, examples: int, seed: int, wwm: bool):
        self.config, self.seed, self.wwm = config, seed, wwm
        rng = np.random.default_rng([seed, 0x9_1A_4])
        low = max([config.padding_token, config.mask_token, *config.no_mask_tokens]) + 1
        lengths = rng.integers(64, 129, examples)
        self.data = [rng.integers(low, config.n_tokens, n) for n in lengths]
        self.words = [np.cumsum(rng.random(n) < 0.7) - 1 for n in lengths]

    def __call__(self, *, epoch, rank, world_size):
        from mlm_ref.streams import example_keys, mask_rows
        from mlm_ref.wwm import mask_words
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        mine = order[rank::world_size]
        for number, start in enumerate(range(0, len(mine), PLAN_BATCH)):
            index = mine[start:start + PLAN_BATCH]
            x = self._padded(self.data, index, self.config.padding_token)
            if self.wwm:
                w = self._padded(self.words, index, -1)
                rng = np.random.default_rng([self.seed, epoch, rank, number])
                out, y = (a.T for a in mask_words(x.T, w.T, self.config, rng=rng))
            else:
                out, y = mask_rows(x, example_keys(self.seed, epoch, index), self.config)
            labels = np.where(y == self.config.padding_token, -100, y)
            batch = {"input_ids": out, "labels": labels, "index": index}
            if self.wwm:
                batch["word_ids"] = w
            yield batch

    @staticmethod
    def _padded(rows, index, fill: int) -> np.ndarray:
        x = np.full((len(index), max(len(rows[i]) for i in index)), fill, dtype=np.int64)
        for r, i in enumerate(index):
            x[r, :len(rows[i])] = rows[i]
        return x


def reference_pipeline(config: MaskingConfig, *, examples: int = PLAN_EXAMPLES, seed: int = 0,
                       wwm: bool = False):
    """Our reference pipeline of the planned size (see the module description)."""
    return _Reference(config, examples, seed, wwm)


def format_pipeline_plan(checks: list, *, alpha: float, sizes: tuple, effects_rows=None) -> str:
    """The plan as text.

    Args:
        checks: the checks of `verify.pipeline.check_pipeline` on `reference_pipeline` (the
            command line makes the run: this gate module needs no command).
        alpha: the run's family-wise false-alarm probability.
        sizes: `(examples, epochs, world_size, positions)` of the planned stream.
        effects_rows: `verify.token.plan.plan` rows for the effects (token-level streams).
    """
    examples, epochs, world, positions = sizes
    rows = mde_rows(checks, alpha)
    out = [format_mde_rows(rows, f"pipeline gate plan: {examples:,} examples x {epochs} epochs "
                                 f"x {world} ranks, {positions:,} positions (measured on our "
                                 f"reference pipeline), family-wise alpha {alpha:g} over "
                                 f"{len(rows)} statistical checks (Holm)")]
    if effects_rows:
        level = effects_rows[0]["level"]
        powers = list(effects_rows[0]["tokens"])
        out += ["", f"eligible positions the stream must hold to detect each effect, at the "
                    f"first Holm level {level:.3g}",
                f"{'effect':28s} {'designated check':40s} " + " ".join(
                    f"{f'{int(100 * p)}% power':>14s}" for p in powers)]
        out += [f"{r['effect']:28s} {r['check']:40s} " + " ".join(
            f"{r['tokens'][p]:14.3g}" for p in powers) for r in effects_rows]
    return "\n".join(out)
