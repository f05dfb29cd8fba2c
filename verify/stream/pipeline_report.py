"""The pipeline gate's report: `Report`'s table, JSON and verdicts, with the pipeline's header
(its seed, or none: a pipeline seeds itself), whole-word counts where the stream carried word
ids, and a *likely cause* line when the failures fit one known cause (a missing `set_epoch`
fails a dozen checks, most of them consequences).

A cause is named when its key checks all failed and every failure is one it explains (its key
checks and their consequences); the first cause that fits is printed.
"""

from __future__ import annotations

import dataclasses

from ..token.verdicts import Report
from ..words.wwm_runner import WWMReport

__all__ = ["PipelineReport", "likely_cause", "CAUSES"]

_REPEATS = "no mask pattern repeats beyond the birthday bound"
_SAME = "an example seen again is masked afresh"
_EPOCHS = "epochs mask independently (up to 8 batches apart)"
_RANKS = "ranks mask independently (up to 8 batches apart)"
_DIAGONAL = "other epochs of other ranks mask independently (up to 8 batches apart)"
_NEIGHBOURS = "each epoch reshuffles the order (neighbours kept)"
_POSITIONS = "each epoch reshuffles the order (position correlation)"
_SHARE = "every rank gets its 1/world_size share"
_DISJOINT = "ranks see disjoint examples (beyond the sampler's padding)"
_COVERAGE = "every example is seen in every epoch"
_TWICE = "no example shown twice in an epoch (beyond the sampler's padding)"
_LAGS = "batches mask independently (1 to 8 batches apart)"
_DISTRIBUTION = "distribution"      # stands for every check of the masks' laws

# (key checks (one of each tuple must fail), consequences, the cause)
CAUSES = (
    (((_NEIGHBOURS, _POSITIONS), (_SAME, _EPOCHS)), {_REPEATS, _DIAGONAL, _DISTRIBUTION},
     "set_epoch is not called: every epoch replays the previous epoch's order and masks "
     "(call the sampler's and the collator's set_epoch(epoch) before each epoch)"),
    (((_NEIGHBOURS, _POSITIONS),), set(),
     "the sampler is not reshuffled each epoch (DistributedSampler.set_epoch(epoch) is not "
     "called, or shuffle is off: pass --no-shuffle where a fixed order is intended)"),
    (((_SAME, _EPOCHS),), {_REPEATS, _DIAGONAL, _DISTRIBUTION},
     "the masks ignore the epoch (the collator's set_epoch is not called, or its generator is "
     "seeded without the epoch)"),
    (((_SHARE,), (_DISJOINT,)), {_RANKS, _DIAGONAL, _REPEATS, _TWICE, _DISTRIBUTION},
     "every rank loads the whole dataset (no DistributedSampler, or one without "
     "num_replicas=world_size and rank=rank)"),
    (((_DISJOINT,), (_COVERAGE,)), {_TWICE, _DISTRIBUTION},
     "the ranks shuffle differently (a sampler seeded per rank, e.g. seed + rank): their shards "
     "overlap and leave examples out; every rank must draw the same permutation"),
    (((_COVERAGE,), (_TWICE,)), {_SHARE, _DISTRIBUTION},
     "examples are drawn with replacement (a sampler with replacement=True, or a weighted "
     "one): some are left out of each epoch, others repeated"),
    (((_COVERAGE,),), {_SHARE},
     "each epoch is cut short (a loop that stops after len(dataset) // global batch steps, or "
     "DataLoader(drop_last=True): pass --drop-last where that is intended)"),
    (((_TWICE,),), {_SHARE, _LAGS, _DISTRIBUTION},
     "every example is loaded more than once per epoch (an IterableDataset not split between "
     "DataLoader workers, or a dataset concatenated with itself)"),
    (((_RANKS,),), {_REPEATS, _DIAGONAL, _DISTRIBUTION},
     "every rank draws the same masks (a generator seeded alike on every rank)"),
    ((("words all-or-nothing",),), {_SAME, _DISTRIBUTION},
     "the masks are drawn piece by piece, not per word (the word ids do not reach the "
     "masker)"),
    ((("selection independent of neighbouring positions",),), {_DISTRIBUTION},
     "whole-word masking gated token by token: put the word ids in the batches (word_ids) or "
     "pass --wwm, and the whole-word checks apply"),
)

_PIPELINE_CHECKS = {_REPEATS, _SAME, _EPOCHS, _RANKS, _DIAGONAL, _NEIGHBOURS, _POSITIONS,
                    _SHARE, _DISJOINT, _COVERAGE, _TWICE, _LAGS}


def likely_cause(report: Report, words: bool = False) -> str | None:
    """The one cause that explains every failure of the report, or None."""
    failed = {c.name for c in report.failures}
    if not failed:
        return None
    for keys, consequences, cause in CAUSES:
        if words and "word_ids" in cause:
            continue
        if not all(any(k in failed for k in key) for key in keys):
            continue
        explained = {k for key in keys for k in key} | consequences
        rest = {n for n in failed if n not in explained}
        if _DISTRIBUTION in consequences:
            rest = {n for n in rest if n in _PIPELINE_CHECKS or _is_exact(report, n)}
        if not rest:
            return f"{cause}; it explains all {len(failed)} failures"
    return None


def _is_exact(report: Report, name: str) -> bool:
    return any(c.name == name and c.kind == "exact" for c in report.checks)


@dataclasses.dataclass
class PipelineReport(Report):
    """A `Report` of the pipeline gate. `pipeline_seed`: the seed passed to the pipeline (None:
    it seeds itself); `words`: gated as whole-word masking (counts are `WordCounts`)."""

    pipeline_seed: int | None = None
    words: bool = False
    gate: str = "pipeline"

    @property
    def likely_cause(self) -> str | None:
        return likely_cause(self, self.words)

    @property
    def inconclusive(self) -> list[str]:
        if self.words:
            return WWMReport.inconclusive.fget(self)
        return Report.inconclusive.fget(self)

    def __str__(self) -> str:
        lines = Report.__str__(self).split("\n")
        seed = "no seed (the pipeline seeds itself)" if self.pipeline_seed is None else \
            f"seed {self.pipeline_seed} (passed to the pipeline)"
        runs = ", ".join(f"{k}: {v['calls']} batches, the largest [seq, batch] {v['shape']}, "
                         f"in {v['seconds']:.1f} s" for k, v in self.runs.items())
        level = "whole-word masking (word_ids)" if self.words else "token-level masking"
        lines[1] = f"pipeline gate, {level}: {self.tokens} positions, {seed}; {runs}"
        cause = self.likely_cause
        if cause:
            lines.append(f"likely cause: {cause}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        if self.words:
            d = WWMReport.to_dict(WWMReport(**{f.name: getattr(self, f.name)
                                               for f in dataclasses.fields(Report)}))
            d["mode"] = "pipeline-wwm"
            d.pop("source", None)
        else:
            d = Report.to_dict(self)
            d["mode"] = "pipeline"
        d["pipeline_seed"], d["likely_cause"] = self.pipeline_seed, self.likely_cause
        return d
