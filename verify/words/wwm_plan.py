"""`python -m verify.stats --wwm --plan`: what each whole-word check tests and what it can see.

For every statistical check of the WWM gate: its null hypothesis, the stratum (the words or
pairs it looks at), its false-alarm share (the Holm family's smallest level, alpha / m, m the
statistical checks of the run: a correct masker fails it with at most that probability) and its
minimal detectable effect (50% power at that level) at the run's size. The MDE is measured,
not guessed: the plan runs our NumPy reference (`mlm_ref.MLM`, whole-word mode) on the gate's
own inputs at `--tokens` and reads each check's MDE off its counts, as a real run would.
"""

from __future__ import annotations

from mlm_ref.config import MaskingConfig

from .wwm_checks import WWM_STATISTICAL, wwm_checks
from .wwm_joint import JOINT_STATISTICAL

__all__ = ["NULLS", "wwm_plan", "format_wwm_plan", "print_wwm_plan"]

_PAIR = "pairs of eligible words"
# check -> (null hypothesis, stratum)
NULLS = dict(zip(WWM_STATISTICAL, [
    ("selected ~ Binomial(eligible words, p)", "all eligible words"),
    ("one selection rate for every word length", "eligible words by length 1..7, 8+"),
    ("one selection rate for every first position", "eligible words by 16 position buckets"),
    ("one selection rate in every call", "eligible words by call"),
    ("variance of the count = binomial's (two-sided)", "sequences with >= 8 eligible words"),
    ("count ~ Binomial(m, p)", "sequences by eligible words m"),
    ("selections independent", _PAIR + " adjacent in a sequence"),
    ("selections independent", "an eligible word and itself in the replayed call"),
    ("(all [MASK], all original, all other, mixed) ~ word_outcome_probs",
     "selected words by length class"),
    ("(mask, original, other) ~ outcome_probs", "first piece of each selected word"),
    ("(mask, original, other) ~ outcome_probs", "last piece of selected words of 2+ pieces"),
    ("visible random ids uniform over drawable ids", "visible random pieces, all ids"),
    ("visible random ids uniform over drawable ids", "visible random pieces, 64 id ranges"),
    ("every id's count ~ Binomial (Bonferroni over ids)", "visible random pieces, per id"),
    ("equal neighbouring random ids at most 1/(K-1) (one-sided)",
     "adjacent visible random pieces of one word"),
    ("categories of words independent (two-sided)", "pairs of selected words of a sequence"),
    ("categories of words independent (two-sided)",
     "pairs of selected words of a call starting on the same row"),
    ("categories of words independent (two-sided)",
     "pairs of selected words of a call with the same index in their sequence"),
    ("selections of words independent (two-sided)",
     _PAIR + " of a call starting on the same row"),
    ("selections of words independent (two-sided)",
     _PAIR + " of a call with the same index in their sequence"),
    ("selections independent", "a word and the next word of its sequence with the same id"),
    ("a random piece equals its original with probability 1/V' (two-sided, exact)",
     "pieces of words certified random by another piece"),
    ("a random piece shows [MASK] with probability 1/V' (two-sided, exact)",
     "pieces of words certified random by another piece"),
    ("categories in a call and its replay independent (two-sided)",
     "a word selected in a call and in its replay"),
    ("equal with probability 1/K, K the ids a visible draw can show (two-sided, exact)",
     "a piece showing a random id in a call and in its replay"),
    ("one split of (all [MASK], all original, other or mixed) at every first position",
     "selected words by 16 position buckets"),
    ("one split of (all [MASK], all original, other or mixed) in every call",
     "selected words by call"),
    ("one split of (all [MASK], all original, other or mixed) whether or not the previous "
     "eligible word is selected", "selected words after an eligible word of their sequence"),
]))
assert set(NULLS) == set(WWM_STATISTICAL) and set(JOINT_STATISTICAL) <= set(NULLS)


def _reference(config: MaskingConfig):
    """Our NumPy whole-word masker as a gate callable."""
    from mlm_ref import MLM
    from ..engine.resolve import factory_kwargs
    mlm = MLM(**factory_kwargs(config), random_exclude=config.random_exclude)

    def reference(x, *, word_ids, seed):
        return mlm(x, word_ids=word_ids, rng=seed)
    return reference


def wwm_plan(config: MaskingConfig, *, tokens: int, seed: int, alpha: float, maskers: int = 1,
             source=None) -> list[dict]:
    """One row per statistical check: name, null, stratum, level (false-alarm share), MDE and
    its unit at `tokens` tokens per masker, `maskers` maskers sharing the Holm family."""
    from .wwm_adapters import resolve_wwm
    from .wwm_runner import run_wwm_masker
    counts = run_wwm_masker(resolve_wwm(_reference(config), config), tokens=tokens, seed=seed,
                            source=source)
    checks = wwm_checks(counts, config, "plan")
    level = alpha / (len(checks) * maskers)
    rows = []
    for c in checks:
        mde = c.mde(level) if c.mde is not None else float("nan")
        null, stratum = NULLS[c.name]
        rows.append({"check": c.name, "null": null, "stratum": stratum, "level": level,
                     "mde": mde, "unit": c.mde_unit or "not applicable", "n": c.n})
    return rows


def format_wwm_plan(rows: list[dict], tokens: int, alpha: float) -> str:
    """The plan as text: one block per check."""
    out = [f"whole-word gate plan: {tokens:.3g} tokens per masker, family-wise alpha {alpha:g}, "
           f"each check's false-alarm share at most {rows[0]['level']:.3g} (Holm); MDE: the "
           f"effect found with 50% power (about 4x the tokens for near certainty; most MDEs "
           f"shrink as 1/sqrt(tokens))", ""]
    for r in rows:
        out.append(f"{r['check']}\n    null: {r['null']}; stratum: {r['stratum']} "
                   f"(n = {r['n']:,})\n    false-alarm share <= {r['level']:.3g}; MDE "
                   f"{r['mde']:.3g} {r['unit']}")
    return "\n".join(out)


def print_wwm_plan(config, *, tokens: int, seed: int, alpha: float, maskers: int,
                   source=None) -> int:
    """`verify.stats --wwm --plan`: print the plan at `tokens` (measured on our NumPy
    reference) and return the exit status 0."""
    rows = wwm_plan(config, tokens=tokens, seed=seed, alpha=alpha, maskers=maskers,
                    source=source)
    print(format_wwm_plan(rows, tokens, alpha))
    return 0
