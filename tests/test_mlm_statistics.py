"""A statistical smoke test per backend: the selection rate and the 3-way split at ~1e6 tokens.

The full harness (`verify.stats`) runs many more checks; this one is small, fast and has a
stated false-alarm rate. Each backend gets two tests, each at level 1e-7 (two-sided z bound
5.33 for the rate, chi-square(2) bound 32.2 for the split); over the six tests of a run the
chance that a correct masker fails for a fresh seed is below 6e-7. The seeds are fixed, so CI
is deterministic; the rate bounds what a new seed could do. The same checks must reject, at this
N, the published module's 0.81/0.09/0.10 split and a selection rate of 0.16.
"""

import numpy as np
import pytest
from scipy import stats

from mlm_ref import MaskingConfig

LEVEL = 1e-7
Z_BOUND = stats.norm.isf(LEVEL / 2)        # 5.33
CHI2_BOUND = stats.chi2.isf(LEVEL, df=2)   # 32.2
CONFIG = dict(padding_token=0, mask_token=1, no_mask_tokens=[2, 3], n_tokens=1000)


def _batch(seed: int = 7) -> np.ndarray:
    """[1024, 1024] ids with [CLS]/[SEP]-like tokens, padding tails and a few [MASK]s."""
    rng = np.random.default_rng(seed)
    x = rng.integers(4, CONFIG["n_tokens"], size=(1024, 1024))
    x[0], x[-1] = 2, 3
    lengths = rng.integers(512, 1024, size=1024)
    x[np.arange(1024)[:, None] >= lengths[None, :]] = 0
    x[rng.random(x.shape) < 0.01] = 1
    return x


def selection_z(cfg: MaskingConfig, x, y) -> float:
    eligible = ~np.isin(x, cfg.ineligible_tokens)
    n, k, p = eligible.sum(), (y != cfg.padding_token).sum(), cfg.masking_prob
    return float((k - n * p) / np.sqrt(n * p * (1 - p)))


def split_chi2(cfg: MaskingConfig, x, x_masked, y) -> tuple[float, np.ndarray, np.ndarray]:
    """Pearson chi-square of (mask, original, other) at selected positions; every original id
    here can be drawn, so one set of expected probabilities serves every position."""
    selected = y != cfg.padding_token
    out, orig = x_masked[selected], x[selected]
    observed = np.array([(out == cfg.mask_token).sum(), (out == orig).sum(), 0])
    observed[2] = selected.sum() - observed[:2].sum()
    expected = selected.sum() * np.array(cfg.outcome_probs(original=4).as_tuple())
    return float(((observed - expected) ** 2 / expected).sum()), observed, expected


def _labml_like(cfg: MaskingConfig, x: np.ndarray, seed: int):
    """The published defect: "unchanged" and "random" drawn independently -> 81/9/10."""
    rng = np.random.default_rng(seed)
    selected = ~np.isin(x, cfg.ineligible_tokens) & (rng.random(x.shape) < cfg.masking_prob)
    unchanged = selected & (rng.random(x.shape) < cfg.no_change_prob)
    random = selected & (rng.random(x.shape) < cfg.randomize_prob) & ~unchanged
    out = np.where(selected & ~unchanged, cfg.mask_token, x)
    out = np.where(random, rng.integers(0, cfg.n_tokens, x.shape), out)
    return out, np.where(selected, x, cfg.padding_token)


def test_selection_rate_and_split_match_the_contract(backend):
    x = _batch()
    mlm = backend.mlm(**CONFIG)
    x_masked, y, _ = backend.mask(mlm, x, seed=2024)
    z = selection_z(mlm.config, x, y)
    chi2, observed, expected = split_chi2(mlm.config, x, x_masked, y)
    assert abs(z) < Z_BOUND, f"selection rate off: z={z:.2f}, bound {Z_BOUND:.2f}"
    assert chi2 < CHI2_BOUND, (f"split off: chi2={chi2:.1f} > {CHI2_BOUND:.1f}; "
                               f"observed {observed}, expected {np.round(expected)}")


def test_the_smoke_checks_reject_the_published_81_9_10_split():
    cfg = MaskingConfig(**CONFIG)
    x = _batch()
    x_masked, y = _labml_like(cfg, x, seed=3)
    assert abs(selection_z(cfg, x, y)) < Z_BOUND  # its rate is right ...
    assert split_chi2(cfg, x, x_masked, y)[0] > CHI2_BOUND  # ... its split is not


@pytest.mark.parametrize("rate", [0.14, 0.16])
def test_the_smoke_checks_reject_a_selection_rate_off_by_a_point(rate):
    cfg = MaskingConfig(**CONFIG)
    skewed = MaskingConfig(**{**CONFIG, "masking_prob": rate})
    from mlm_ref import mask_tokens
    x = _batch()
    _, y = mask_tokens(x, skewed, rng=5)
    assert abs(selection_z(cfg, x, y)) > Z_BOUND
