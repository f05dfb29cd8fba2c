"""The token gate's counting in C (`verify.token.tally.compiled`, `count_call.c`) gives the NumPy
formulation's counts, every counter bit for bit: on hand-made calls that break invariants and
hold ids past the vocabulary, at every shape (one column, one position), with and without a
[SEP] id, and over whole gate runs of our masker and of planted defects, inline and on threads.
The C pass that makes a CPU batch makes the NumPy formulation's, id for id. Without a compiler,
or with `MLM_VERIFY_NO_COMPILE=1`, NumPy counts and says why."""

import dataclasses
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from mlm_ref.config import MaskingConfig
from tests.test_counts_namespaces import LARGE, SMALL, _assert_same, assert_same_runs
from verify.token.tally import batches
from verify.token.tally import compiled as compiled_counts
from verify.token.counts import Counts

ROOT = pathlib.Path(__file__).resolve().parent.parent
needs_library = pytest.mark.skipif(compiled_counts.library() is None,
                                   reason=f"compiled counting: {compiled_counts.status()}")
NO_SEP = dataclasses.replace(SMALL, no_mask_tokens=())
TINY = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=(101, 102), n_tokens=40,
                     random_exclude=(5,))    # random ids collide; specials past the vocabulary


def _calls(config: MaskingConfig, seq: int, batch: int, calls: int, seed: int):
    """Replayed pairs of inputs with [CLS], [SEP], padding, [MASK] and ids past the vocabulary
    (and below 0), masked with every outcome, with broken invariants sprinkled in: a selected
    ineligible id, a changed unselected position, a label that is not the input, an output
    past the vocabulary, a mutated input."""
    rng = np.random.default_rng(seed)
    for call in range(calls):
        if call % 2 == 0:
            x = rng.integers(-2, config.n_tokens + 5, (seq, batch))
            x[rng.random((seq, batch)) < 0.05] = config.mask_token
            x[0] = 101
            x[seq // 2] = 102
            x[rng.random((seq, batch)) < 0.1] = config.padding_token
        sel = rng.random((seq, batch)) < 0.3
        kind = rng.random((seq, batch))
        other = rng.integers(-1, config.n_tokens + 2, (seq, batch))
        other[rng.random((seq, batch)) < 0.1] = config.n_tokens + 3   # past the vocabulary
        out = np.where(sel, np.where(kind < 0.6, config.mask_token,
                                     np.where(kind < 0.75, x, other)), x)
        out[rng.random((seq, batch)) < 0.01] = 7                      # unselected changed
        y = np.where(sel, x, config.padding_token)
        y[rng.random((seq, batch)) < 0.01] = 5                        # a label not the input
        x_after = x.copy()
        x_after[rng.random((seq, batch)) < 0.01] = 9                  # the input mutated
        yield x, x_after, out, y


def _host(config, shape, compiled: bool, calls: int = 6, seed: int = 3) -> dict:
    counts = Counts(config, *shape, calls, "cpu", arrays="numpy", compiled=compiled)
    assert counts.compiled == compiled
    for x, x_after, out, y in _calls(config, *shape, calls, seed):
        counts.update(x, x_after, out, y)
    # the fingerprints themselves, not only how many repeat
    return dict(dataclasses.asdict(counts.host()), patterns=counts.patterns)


@needs_library
@pytest.mark.parametrize("config", [SMALL, NO_SEP, TINY], ids=["with-sep", "without-sep", "tiny"])
@pytest.mark.parametrize("shape", [(48, 8), (1, 7), (9, 1), (130, 3)])
@pytest.mark.parametrize("seed", [3, 4])
def test_the_c_pass_counts_what_numpy_counts(config, shape, seed):
    in_c = _host(config, shape, True, seed=seed)
    _assert_same(in_c, _host(config, shape, False, seed=seed))
    if shape[0] * shape[1] >= 50:   # every invariant broken somewhere, every pair kind seen
        assert all(v > 0 for v in in_c["invariants"].values()), in_c["invariants"]
        assert in_c["replay_same_other"][0] > 0 and in_c["pairs"]["fresh"].sum() > 0
    if shape[0] >= 100:  # sequences long enough to be fingerprinted
        assert np.count_nonzero(in_c["patterns"]) > 0
    if config is TINY and shape[0] * shape[1] >= 50:
        assert min(in_c["joint"]["collisions"]) > 0


def test_past_the_per_id_tables_numpy_counts():
    assert not Counts(LARGE, 8, 4, 2, "cpu", arrays="numpy").compiled


@needs_library
@pytest.mark.parametrize("chunk", [1 << 12, 1 << 16], ids=["inline", "threaded"])
def test_a_gate_run_counted_in_c_gives_the_counts_of_one_counted_in_numpy(chunk, monkeypatch):
    pytest.importorskip("torch")
    from verify.token import runner
    from verify.token.adapters import resolve
    config = dataclasses.replace(SMALL, random_exclude=())
    names = ("torch", "tests.broken_maskers:MutatesInput", "tests.broken_maskers:WrongLabels",
             "tests.broken_maskers:RandomIdsIgnoreSeed", "tests.broken_maskers:MasksSpecialTokens")
    maskers = [resolve(m, config) for m in names]
    args = dict(tokens=4 * chunk, seed=5, device="cpu", chunk=chunk)
    in_c = runner.run_maskers(maskers, **args)
    monkeypatch.setattr(compiled_counts, "library", lambda: None)
    in_numpy = runner.run_maskers(maskers, **args)
    assert_same_runs(in_c, in_numpy)
    assert in_c[1].invariants["input not mutated"] > 0


@pytest.mark.parametrize("env, why", [({"MLM_VERIFY_NO_COMPILE": "1"}, "MLM_VERIFY_NO_COMPILE"),
                                      ({"CC": "false"}, "failed")],
                         ids=["switched-off", "build-fails"])
def test_without_the_library_numpy_counts_and_says_why(env, why, tmp_path):
    code = ("from tests.test_counts_compiled import SMALL, _host\n"
            "from verify.token.tally import compiled as compiled_counts\n"
            "print(compiled_counts.status())\n"
            "print(_host(SMALL, (16, 4), False)['invariants'])\n")
    full = {k: v for k, v in os.environ.items() if k != "MLM_VERIFY_NO_COMPILE"}
    full.update(MLM_VERIFY_CACHE=str(tmp_path), **env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    status, invariants = done.stdout.strip().splitlines()
    assert status.startswith("not compiled") and why in status
    assert invariants == str(_host(SMALL, (16, 4), False)["invariants"])
    assert not list(tmp_path.iterdir()), "a failed build left files behind"


@needs_library
@pytest.mark.parametrize("config", [SMALL, NO_SEP, TINY], ids=["with-sep", "without-sep", "tiny"])
@pytest.mark.parametrize("shape, seed", [((128, 64), 5), ((1, 1), 0), ((7, 3), 2**32 - 1)])
def test_the_c_pass_makes_the_numpy_formulations_batch(config, shape, seed):
    id_of = np.random.default_rng(seed).integers(0, config.n_tokens, 1 << 16)
    made = [batches.make_batch(config, *shape, seed, id_of=id_of, mask_fraction=0.02,
                               compiled_pass=c) for c in (True, False)]
    assert made[0].dtype == np.int64 and made[0].shape == shape
    assert np.array_equal(*made)


def test_a_cpu_batch_has_its_documented_layout():
    """Half the columns text-like (Zipf ids, [CLS] first, [SEP]s), half full length, 2% [MASK]
    before the padding tail, uniform ids spread over the whole vocabulary."""
    # every special id past the vocabulary: a uniform id never looks like one
    config = MaskingConfig(padding_token=45, mask_token=44, no_mask_tokens=(41, 42), n_tokens=40)
    x = batches.make_batch(config, 128, 4096, 1, id_of=np.full(1 << 16, 7), mask_fraction=0.02,
                           compiled_pass=False)   # every text position: id 7 or a special
    text = x[0] == 41
    assert 0.47 < text.mean() < 0.53
    padded = x == config.padding_token
    assert 0.47 < (~padded.any(0)).mean() < 0.53      # full length
    assert np.all(padded[1:] >= padded[:-1])          # padding is a tail
    assert np.all((x[1:, text] == 42).sum(0)[~padded[2, text]] >= 1)
    live = x[:, ~text][~padded[:, ~text]]
    assert abs((live == config.mask_token).mean() - 0.02) < 0.002
    assert set(np.unique(live)) == set(range(40)) | {config.mask_token}
    assert set(np.unique(x[1:, text])) <= {7, 42, config.mask_token, config.padding_token}
