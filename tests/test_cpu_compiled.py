"""The compiled CPU passes (`mlm_torch.compiled`: `native_cpu.c`, `exact_cpu.c`) draw the same
streams as their NumPy formulations: the same bits (and, native, the same generator state
after the call), for every config, dtype, layout and slice size; without a compiler, or when the build fails,
the NumPy formulation runs, says why, and leaves no partial library behind."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")

from mlm_ref import MaskingConfig  # noqa: E402
from mlm_torch import compiled, cpu, exact, streams  # noqa: E402
from tests.strategies import batches, configs  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent

needs_library = pytest.mark.skipif(compiled.library() is None,
                                   reason=f"compiled pass unavailable: {compiled.status()}")


def _both_ways(x, config, seed):
    """`(compiled, numpy)`: each `(x_masked, y, generator state after the call)`."""
    out = []
    for compiled_pass in (True, False):
        g = torch.Generator().manual_seed(seed)
        x_masked, y = cpu.mask_tokens_cpu(x, config, generator=g, compiled_pass=compiled_pass)
        out.append((x_masked, y, g.get_state()))
    return out


def _assert_same(a, b):
    for got, want in zip(a, b):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def _drawn_batch(data, kw) -> torch.Tensor:
    """A Hypothesis batch for config `kw`, strided (transposed) half the time when 2-d:
    the passes must follow logical, row-major order, not memory."""
    x = torch.from_numpy(data.draw(batches(kw)))
    if x.dim() == 2 and data.draw(st.booleans()):
        x = x.t()
    return x


@needs_library
@settings(max_examples=150)
@given(data=st.data())
def test_the_compiled_pass_draws_the_numpy_formulations_bits(data):
    kw = data.draw(configs())
    x = _drawn_batch(data, kw)
    before = x.clone()
    got, want = _both_ways(x, MaskingConfig(**kw), data.draw(st.integers(0, 2**32)))
    _assert_same(got, want)
    assert torch.equal(x, before)


@needs_library
@settings(max_examples=150)
@given(data=st.data())
def test_the_compiled_exact_pass_draws_the_numpy_formulations_bits(data):
    kw = data.draw(configs())
    x = _drawn_batch(data, kw)
    before = x.clone()
    key = data.draw(st.one_of(st.integers(-2**63, 2**63 - 1),
                              st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2)))
    config = MaskingConfig(**kw)
    got = exact.mask_tokens_exact_cpu(x, config, key=key)
    want = exact.mask_tokens_exact_cpu(x, config, key=key, compiled_pass=False)
    _assert_same(got, want)
    assert torch.equal(x, before)


@needs_library
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_the_compiled_exact_pass_matches_over_many_blocks(dtype):
    # many 1024-position blocks, > SPLIT selected (the NumPy side's other branch), ids below
    # zero and above the special ids' table, excluded random ids, randint's high bits in use
    for n_tokens in (30522, 50):
        config = MaskingConfig(padding_token=0, mask_token=3, no_mask_tokens=(1, 2),
                               n_tokens=n_tokens, random_exclude=(0, 1, 2, 3, n_tokens - 7))
        x = torch.randint(-5, n_tokens + 9, (301, 257), generator=torch.Generator().manual_seed(6))
        got = exact.mask_tokens_exact_cpu(x.to(dtype), config, key=77)
        want = exact.mask_tokens_exact_cpu(x.to(dtype), config, key=77, compiled_pass=False)
        _assert_same(got, want)


@needs_library
@settings(max_examples=100)
@given(data=st.data())
def test_the_compiled_rows_give_the_numpy_formulations_bits(data):
    # one key per row (mask_rows) and a collator's examples (mask_examples)
    kw = data.draw(configs())
    config = MaskingConfig(**kw)
    batch, seq = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 70))
    dtype = data.draw(st.sampled_from([torch.int32, torch.int64]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = torch.from_numpy(rng.integers(0, kw["n_tokens"] + 6, (batch, seq))).to(dtype)
    keys = torch.from_numpy(rng.integers(0, 2**32, (batch, 2)))
    got = streams.mask_rows(x, keys, config)
    want = streams.mask_rows(x, keys, config, compiled_pass=False)
    _assert_same(got, want)
    indices = rng.integers(0, 2**32, batch)
    x = x.to(torch.int64)
    got = streams.mask_examples(x, 5, 3, indices, config)
    want = streams.mask_examples(x, 5, 3, indices, config, compiled_pass=False)
    _assert_same(got, want)


@needs_library
@pytest.mark.parametrize("chunk", [1, 7, 1000, 2**16])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_the_compiled_pass_matches_across_slices_and_blocks(chunk, dtype, monkeypatch):
    # several slices (CHUNK) and, within one, several of the C file's 1024-position blocks;
    # ids below zero and above the special ids' table take the table's ends
    monkeypatch.setattr(cpu, "CHUNK", chunk)
    config = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=(101, 102),
                           n_tokens=30522, random_exclude=(0, 101, 102, 103, 20000))
    x = torch.randint(-5, 30600, (37, 2111), generator=torch.Generator().manual_seed(1))
    if chunk == 1:
        x = x[:3]
    got, want = _both_ways(x.to(dtype), config, seed=5)
    _assert_same(got, want)


@needs_library
@pytest.mark.parametrize("p", [0.0, 0.15, 0.5, 0.502, 0.75, 0.99, 1.0])
def test_the_compiled_pass_finds_the_candidates_on_either_side_of_a_byte_bound_of_128(p):
    # a candidate byte bound <= 128 is searched 8 bytes at a time, a larger one byte by byte
    config = MaskingConfig(padding_token=0, mask_token=3, no_mask_tokens=(1, 2), n_tokens=40,
                           masking_prob=p, randomize_prob=0.3, no_change_prob=0.3)
    x = torch.randint(0, 45, (301, 77), generator=torch.Generator().manual_seed(4))
    got, want = _both_ways(x, config, seed=9)
    _assert_same(got, want)


@needs_library
def test_the_compiled_pass_writes_every_outcome_at_bert_rates():
    # a pass that skipped the copy, the fill or a category would show here at once
    config = MaskingConfig(padding_token=0, mask_token=103, no_mask_tokens=(101, 102),
                           n_tokens=30522)
    x = torch.randint(1000, 30000, (512, 256), generator=torch.Generator().manual_seed(2))
    x_masked, y = cpu.mask_tokens_cpu(x, config, generator=torch.Generator().manual_seed(3))
    selected = y != 0
    assert torch.equal(y[selected], x[selected])
    assert torch.equal(x_masked[~selected], x[~selected])
    rates = [selected.float().mean().item(),
             (x_masked[selected] == 103).float().mean().item(),
             (x_masked[selected] == x[selected]).float().mean().item()]
    assert rates == pytest.approx([0.15, 0.8, 0.1 + 0.1 / 30522], abs=0.01)


def test_the_stream_is_splitmix64_from_the_generators_two_words():
    # SplitMix64's published first outputs from state 1234567 (Vigna's splitmix64.c)
    want = [6457827717110365317, 3203168211198807973, 9817491932198370423,
            4593380528125082431, 16408922859458223821]
    assert cpu._splitmix(np.uint64(1234567), np.arange(5)).tolist() == want
    # a call draws exactly two words, whatever the batch
    for n in (0, 5, 70000):
        g = torch.Generator().manual_seed(3)
        cpu.mask_tokens_cpu(torch.ones(n, dtype=torch.int64), MaskingConfig(
            padding_token=0, mask_token=2, n_tokens=9), generator=g)
        h = torch.Generator().manual_seed(3)
        torch.empty(2, dtype=torch.int64).random_(-2**63, None, generator=h)
        assert torch.equal(g.get_state(), h.get_state())


def _fresh_process(env_extra: dict, cache: pathlib.Path) -> list[str]:
    """In a new interpreter with `env_extra`: the status line, then whether the compiled
    default gave the NumPy formulation's bits."""
    code = (
        "import torch\n"
        "from mlm_ref import MaskingConfig\n"
        "from mlm_torch import compiled, cpu\n"
        "c = MaskingConfig(padding_token=0, mask_token=3, no_mask_tokens=(1,), n_tokens=50)\n"
        "x = torch.randint(0, 50, (64, 33), generator=torch.Generator().manual_seed(0))\n"
        "a = cpu.mask_tokens_cpu(x, c, generator=torch.Generator().manual_seed(1))\n"
        "b = cpu.mask_tokens_cpu(x, c, generator=torch.Generator().manual_seed(1),\n"
        "                        compiled_pass=False)\n"
        "print(compiled.status())\n"
        "print(all(torch.equal(u, v) for u, v in zip(a, b)))\n")
    env = {k: v for k, v in os.environ.items() if k != "MLM_TORCH_NO_COMPILE"}
    env.update(MLM_TORCH_CACHE=str(cache), **env_extra)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.mark.parametrize("env_extra, why", [
    ({"MLM_TORCH_NO_COMPILE": "1"}, "MLM_TORCH_NO_COMPILE is set"),
    ({"CC": "/nonexistent/cc"}, "no C compiler"),
    ({"CC": "false"}, "failed"),
], ids=["switched-off", "no-compiler", "build-fails"])
def test_without_the_library_the_numpy_formulation_runs_and_says_why(env_extra, why, tmp_path):
    status, same = _fresh_process(env_extra, tmp_path)
    assert status.startswith("not compiled") and why in status
    assert same == "True"
    assert not list(tmp_path.iterdir()), "a failed build left files behind"


@needs_library
def test_the_library_is_built_once_per_cache_folder_and_then_reused(tmp_path):
    status, same = _fresh_process({}, tmp_path)
    assert status.startswith("compiled by ") and same == "True"
    (built,) = tmp_path.iterdir()
    stamp = built.stat().st_mtime_ns
    status, same = _fresh_process({}, tmp_path)
    assert status.endswith(f" into {built}") and same == "True"
    assert built.stat().st_mtime_ns == stamp


@needs_library
def test_a_damaged_library_in_the_cache_is_built_again(tmp_path):
    status, _ = _fresh_process({}, tmp_path)
    (built,) = tmp_path.iterdir()
    built.write_bytes(b"not a shared library")
    status, same = _fresh_process({}, tmp_path)
    assert status.startswith("compiled by ") and status.endswith(f" into {built}")
    assert same == "True" and built.stat().st_size > 1000


@needs_library
def test_processes_that_build_at_once_each_load_a_whole_library(tmp_path):
    code = ("from mlm_torch import compiled\n"
            "print(compiled.status())\n")
    env = {k: v for k, v in os.environ.items() if k != "MLM_TORCH_NO_COMPILE"}
    env["MLM_TORCH_CACHE"] = str(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=ROOT) for _ in range(4)]
    statuses = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(s.startswith("compiled by ") for s in statuses), statuses
    assert [p.name for p in tmp_path.iterdir()] == [statuses[0].rpartition("/")[2]]
