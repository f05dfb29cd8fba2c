"""What the counting of a token-level run leaves on the host: the outcome codes and their
constants, and `HostCounts`, every counter read back as NumPy arrays. NumPy only (the
whole-word and pipeline gates read these without PyTorch); `counts.Counts` fills them on the
device.

What is decoded from the outputs (the harness is black-box): a position is *selected* when its
label is not `padding_token` (padding is never eligible, so a selected position's label, its
original token, cannot be padding). Its *outcome* is `mask` when the output is `mask_token`,
`original` when the output equals the input, `other` otherwise. Each position gets one code:

    0 ineligible   1 eligible, not selected
    2, 3, 4  selected, original drawable as a random id:   mask, original, other
    5, 6, 7  selected, original not drawable:              mask, original, other

(a random draw can hit the original only when the original is drawable, so the outcome law
differs slightly between the two groups; every category check compares like with like).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlm_ref.config import MaskingConfig

__all__ = ["HostCounts", "INVARIANTS", "COARSE_BINS", "FULL_HISTOGRAM_MAX", "ID_TABLE_MAX",
           "CODES", "POS_BUCKETS", "SEGMENTS", "REPEAT_CLASSES", "DISPERSION_MIN",
           "PATTERN_MIN", "mask_share", "repeated_patterns", "is_replay", "read_back"]

CODES = 8
# Exact invariants counted on the device: the number of positions that violate each.
INVARIANTS = {
    "input not mutated": "positions of the caller's input changed by the call",
    "labels are padding or the original": "labels neither padding_token nor the input token",
    "unselected positions unchanged": "positions with a padding label whose output changed",
    "ineligible positions never selected": "padding/[MASK]/no-mask positions with a label",
    "replacements are [MASK], original or a drawable id":
        "selected outputs outside {mask_token, original} and outside the random-id range",
}
COARSE_BINS = 64
POS_BUCKETS = 8          # position buckets for the random-id-by-position table
SEGMENTS = 4             # segment index (number of [SEP] before the position), capped
REPEAT_CLASSES = 8       # log2(occurrences of the id in its call / a uniform id's), +4, capped
PATTERN_MIN = 20         # sequences with this many selected and unselected positions take part
                         # in the check that no selection pattern repeats
DISPERSION_MIN = 8       # groups with fewer trials are left out of the dispersion sums
# Above this vocabulary size the per-id random-id histogram is skipped (coarse bins remain);
# above ID_TABLE_MAX the per-id code table and the in-call repeat classes are.
FULL_HISTOGRAM_MAX = 1 << 22
ID_TABLE_MAX = 1 << 18


def is_replay(call: int) -> bool:
    """Whether `call` feeds the same batch as the call before it (the harness feeds every
    batch twice, `verify.token.inputs`)."""
    return call % 2 == 1


def repeated_patterns(patterns: np.ndarray) -> int:
    """How many sequences repeat the selection pattern of an earlier one (fingerprint 0 marks
    a sequence with too few selections to take part)."""
    fp = patterns[patterns != 0]
    return int(fp.size - np.unique(fp).size)


def mask_share(cfg: MaskingConfig) -> float | None:
    """P(output is [MASK]) at a selected position whose original is drawable, or None when it
    is 0 or 1 (nothing random to test) or no eligible id is drawable."""
    ineligible = set(cfg.ineligible_tokens)
    # the first few ids hold a drawable, eligible one whenever any exists
    ids = range(min(cfg.n_tokens, len(ineligible) + len(cfg.random_exclude) + 2))
    original = next((t for t in ids if cfg.is_random_id(t) and t not in ineligible), None)
    if original is None:
        return None
    q = cfg.outcome_probs(original).mask
    return q if 0.0 < q < 1.0 else None


@dataclasses.dataclass
class HostCounts:
    """One masker's counts over a run, on the host: what every check and plot reads.

    Args:
        invariants: positions that break each exact invariant of `INVARIANTS`.
        strata: `{stratum: [k, CODES]}` code counts per position, column (`col`), segment
            (`seg`), coarse id range (`idbin`), in-call repeat class (`repeat`: how often the
            id occurs in its call against a uniform id, in octaves), neighbourhood (`nbr`:
            2 * left neighbour eligible + right neighbour eligible) and id (`id`, absent above
            `ID_TABLE_MAX`).
        by_call: code counts per call `[calls, CODES]`.
        pairs: `{kind: [CODES, CODES]}` code pairs of neighbouring positions (`seq`),
            neighbouring columns (`col`), the same position in a replayed call (`replay`) and in
            the next fresh call (`fresh`).
        other_hist: visible random replacements per id `[n_tokens + 1]` (None when the
            vocabulary is above `FULL_HISTOGRAM_MAX`); the last bin collects the rest.
        orig_hist: selected drawable originals per id, same layout.
        coarse_other, coarse_orig: the same over `COARSE_BINS` equal id ranges (+1 bin).
        other_by_orig: visible random ids (drawable originals) `[original's bin, id's bin]`.
        other_by_pos, orig_by_pos: the same ids, and their originals, per position bucket.
        replay_same_other: (positions whose outputs were random ids in both calls of a replay,
            of those the same id).
        repeated_patterns: sequences with at least `PATTERN_MIN` selected and unselected
            positions whose set of selected positions repeats an earlier sequence's
            (fingerprinted in 64 bits).
        seq_hist: sequences by `[n_eligible, n_selected]`.
        dispersion: `{level: (sum of terms, groups, summed variance)}` of binomial dispersion
            sums kept on the device.
        host_problems: breaches seen on the host (shape, dtype, determinism, errors), by check.
        seconds, shape, calls: how the run went (filled in by the runner).
        joint: the joint tables of `verify.token.power.joint` (category by how a position
            was selected; random-id collisions within calls).
        usage, shapes: the runs of the masker as users call it, seeded once and with nearby
            seeds (`power.seeding`), and on varied call shapes (`power.call_shapes`); None
            when not made.
    """

    invariants: dict[str, int]
    strata: dict[str, np.ndarray]
    by_call: np.ndarray
    pairs: dict[str, np.ndarray]
    other_hist: np.ndarray | None
    orig_hist: np.ndarray | None
    coarse_other: np.ndarray
    coarse_orig: np.ndarray
    other_by_orig: np.ndarray
    other_by_pos: np.ndarray
    orig_by_pos: np.ndarray
    replay_same_other: tuple[int, int]
    repeated_patterns: int
    seq_hist: np.ndarray
    dispersion: dict[str, tuple[float, float, float]]
    host_problems: dict[str, list[str]]
    seconds: float = 0.0
    shape: tuple[int, int] = (0, 0)
    calls: int = 0
    joint: dict | None = None      # `verify.token.power.joint.JointCounts.host`
    usage: object = None           # `verify.token.power.seeding.UsageCounts` (runner)
    shapes: object = None          # `verify.token.power.call_shapes.ShapeCounts` (runner)

    @property
    def eligible(self) -> int:
        return int(self.by_call[:, 1:].sum())

    @property
    def selected(self) -> int:
        return int(self.by_call[:, 2:].sum())

    @property
    def outcomes(self) -> np.ndarray:
        """Selected positions `[original drawable?, (mask, original, other)]` (row 0: not)."""
        total = self.by_call.sum(0)
        return np.stack([total[5:8], total[2:5]])


def read_back(counts, strata_rows: dict) -> HostCounts:
    """The `HostCounts` of a `counts.Counts`, read back once: `strata_rows` gives each
    stratum's `(first row, rows)` in its table."""
    get, v = counts.xp.to_numpy, counts.config.n_tokens
    table = get(counts.table).reshape(-1, CODES)
    strata = {k: table[start:start + size] for k, (start, size) in strata_rows.items()}
    # in call order, one call at a time: the sum a single running total would give
    dispersion = np.cumsum(get(counts.dispersion), axis=0)[-1] if len(counts.dispersion) \
        else np.zeros((3, 3))
    if counts.id_table:
        bins = np.arange(v) * counts.coarse // v
        strata["idbin"] = np.stack([np.bincount(bins, strata["id"][:, c], counts.coarse)
                                    for c in range(CODES)], axis=1).astype(np.int64)
    calls, n1 = counts.calls_counted, counts.seq_len + 1
    return HostCounts(
        invariants={k: int(v) for k, v in zip(INVARIANTS, get(counts.invariants))},
        strata=strata, by_call=get(counts.by_call)[:calls],
        pairs=dict(zip(("seq", "col", "replay", "fresh"), get(counts.pairs).reshape(
            4, CODES, CODES))),
        **counts.random_ids.host(),
        replay_same_other=tuple(int(v) for v in get(counts.replay_same_other)),
        repeated_patterns=repeated_patterns(get(counts.patterns)[:calls]),
        seq_hist=get(counts.seq_hist).reshape(n1, n1),
        dispersion={level: tuple(float(v) for v in dispersion[i]) for i, level in
                    enumerate(("position in call", "id in call", "[MASK] per sequence"))},
        host_problems={k: list(v) for k, v in counts.host_problems.items()},
        joint=counts.joint.host())
