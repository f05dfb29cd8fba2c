"""The NumPy and PyTorch threefry ports: known answers, bitwise equality with `jax.random`, errors.

Three kinds of evidence: Random123's published answers pin the block function; equality with
the installed JAX over drawn seeds, keys, shapes and ranges pins the layout and the samplers;
values stored from JAX once pin the ports themselves, so a JAX release that changes its bits
fails the equality tests while the stored-answer tests still pass (telling which side moved).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlm_ref import threefry as np_threefry

PORTS = ["numpy", "torch"]
U32 = 2**32 - 1

# Shapes come from a small set: JAX compiles once per shape, and Hypothesis mixes them.
SHAPES = [(), (0,), (1,), (7,), (2, 3), (3, 0, 2), (2, 1, 5), (1, 3, 3)]
SEEDS = st.one_of(st.sampled_from([0, 1, 42, -1, -(2**31) - 1, 2**32, 2**32 + 5,
                                   -(2**63), 2**63 - 1]),
                  st.integers(-(2**63), 2**63 - 1))
KEYS = st.tuples(st.integers(0, U32), st.integers(0, U32)).map(list)
RANGES = st.one_of(
    st.sampled_from([(0, 1), (0, 30522), (0, 2**31 - 1), (-(2**31), 2**31 - 1),
                     (-5, 2**16 - 5), (0, 2**16 + 1), (7, 7), (9, 3)]),
    st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1)))
FEW = settings(max_examples=25, deadline=None)


def port(name):
    """The module under test; the torch port is skipped when torch is not installed."""
    if name == "torch":
        pytest.importorskip("torch")
        from mlm_torch import threefry
        return threefry
    return np_threefry


def u32(x) -> np.ndarray:
    """Any port output (NumPy or torch; ints or float32) as uint32 bits, for bitwise checks."""
    if not isinstance(x, np.ndarray):
        import torch
        x = x.cpu()
        x = x.numpy() if x.dtype in (torch.uint32, torch.float32, torch.int32) \
            else x.numpy().astype(np.uint32)
    if x.dtype in (np.float32, np.int32):
        return x.view(np.uint32)
    assert x.dtype == np.uint32, x.dtype
    return x


@pytest.fixture(scope="module")
def jr():
    """`jax.random` in its default configuration, which the ports reproduce."""
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64 or not jax.config.jax_threefry_partitionable:
        pytest.skip("the ports follow JAX's defaults: x64 off, partitionable threefry on")
    return jax.random


def jax_key(jr, key):
    """A typed JAX key from an int seed or raw key data."""
    if isinstance(key, int):
        return jr.key(key)
    return jr.wrap_key_data(np.asarray(key, dtype=np.uint32))


# -- known answers ------------------------------------------------------------------------

# Random123's kat_vectors for threefry2x32 with 20 rounds: (key, counter, output).
RANDOM123 = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
             ((U32, U32), (U32, U32), (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]


@pytest.mark.parametrize("name", PORTS)
@pytest.mark.parametrize("key, ctr, want", RANDOM123)
def test_block_function_gives_random123_answers(name, key, ctr, want):
    y0, y1 = port(name).threefry2x32(list(key), ctr[0], ctr[1])
    assert (int(u32(y0)), int(u32(y1))) == want


@pytest.mark.parametrize("name", PORTS)
def test_block_function_is_elementwise_over_broadcast_counters(name):
    t = port(name)
    x1 = [[0, 1, 2], [U32, 5, 6]]
    y0, y1 = t.threefry2x32([3, 4], 0, x1)
    assert u32(y0).shape == u32(y1).shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one0, one1 = t.threefry2x32([3, 4], 0, x1[i][j])
            assert (u32(y0)[i, j], u32(y1)[i, j]) == (u32(one0), u32(one1))


# Obtained once from jax 0.10.2 (CPU, default config): for jax.random.key(seed),
# uniform(key, (8,), jnp.float32) as the hex of its float bits, and
# randint(key, (8,), 0, 30522, dtype=jnp.int32).
STORED = {
    0: ([0x3F729A4E, 0x3F7A8436, 0x3EAA221C, 0x3EEFF550,
         0x3F11E43A, 0x3E2979A0, 0x3E9ED1D4, 0x3F3081CC],
        [31, 26658, 3908, 20995, 15479, 8733, 11994, 24917]),
    42: ([0x3EFA3824, 0x3F2E0730, 0x3F1DC3F8, 0x3F0F9EC0,
          0x3EE6BAE4, 0x3F15FB4E, 0x3D9935B0, 0x3F466F24],
         [17520, 25956, 11061, 21547, 15383, 29769, 21425, 4587]),
}


@pytest.mark.parametrize("name", PORTS)
@pytest.mark.parametrize("seed", sorted(STORED))
def test_ports_reproduce_values_stored_from_jax_0_10_2(name, seed):
    t = port(name)
    want_uniform, want_randint = STORED[seed]
    assert u32(t.uniform(seed, (8,))).tolist() == want_uniform
    assert u32(t.randint(seed, (8,), 0, 30522)).view(np.int32).tolist() == want_randint
    # the partitionable layout: a value depends on its flat index only, not on the shape
    assert u32(t.uniform(seed, (2, 4, 3))).ravel()[:8].tolist() == want_uniform


# -- equality with jax.random -------------------------------------------------------------

@pytest.mark.parametrize("name", PORTS)
@FEW
@given(seed=SEEDS)
def test_key_data_of_a_seed_equals_jax_key(jr, name, seed):
    want = np.asarray(jr.key_data(jr.key(seed)))
    assert (u32(port(name).key_data(seed)) == want).all()
    assert (u32(port(name).key_data(np.int64(seed))) == want).all()


@pytest.mark.parametrize("name", PORTS)
@FEW
@given(key=st.one_of(SEEDS, KEYS), num=st.integers(0, 5))
def test_split_equals_jax_split(jr, name, key, num):
    want = np.asarray(jr.key_data(jr.split(jax_key(jr, key), num)))
    got = u32(port(name).split(key, num))
    assert got.shape == (num, 2) and (got == want).all()


@pytest.mark.parametrize("name", PORTS)
@FEW
@given(key=st.one_of(SEEDS, KEYS), data=st.lists(st.integers(0, U32), max_size=3))
def test_fold_in_and_derive_key_equal_successive_jax_fold_ins(jr, name, key, data):
    want = jax_key(jr, key)
    for d in data:
        want = jr.fold_in(want, d)
    want = np.asarray(jr.key_data(want))
    assert (u32(port(name).derive_key(key, *data)) == want).all()
    if data:
        assert (u32(port(name).fold_in(key, data[0])) ==
                np.asarray(jr.key_data(jr.fold_in(jax_key(jr, key), data[0])))).all()


@pytest.mark.parametrize("name", PORTS)
@FEW
@given(key=st.one_of(SEEDS, KEYS), shape=st.sampled_from(SHAPES))
def test_random_bits_equal_jax_bits(jr, name, key, shape):
    import jax.numpy as jnp
    want = np.asarray(jr.bits(jax_key(jr, key), shape, jnp.uint32))
    got = u32(port(name).random_bits(key, shape))
    assert got.shape == shape and (got == want).all()


@FEW
@given(keys=st.lists(KEYS, min_size=1, max_size=4), n=st.integers(0, 40))
def test_torch_keys_hashed_side_by_side_give_each_keys_jax_bits(jr, keys, n):
    import jax.numpy as jnp
    torch = pytest.importorskip("torch")
    from mlm_torch import threefry
    got = threefry.counter_bits(torch.tensor(keys, dtype=torch.int64), n)   # [m, n]
    assert tuple(got.shape) == (len(keys), n)
    for row, key in zip(got, keys):
        assert (u32(row) == np.asarray(jr.bits(jax_key(jr, key), (n,), jnp.uint32))).all()


@pytest.mark.parametrize("name", PORTS)
@FEW
@given(key=st.one_of(SEEDS, KEYS), shape=st.sampled_from(SHAPES))
def test_uniform_equals_jax_uniform_bit_for_bit(jr, name, key, shape):
    import jax.numpy as jnp
    want = np.asarray(jr.uniform(jax_key(jr, key), shape, jnp.float32))
    got = port(name).uniform(key, shape)
    assert str(got.dtype).endswith("float32") and tuple(got.shape) == shape
    assert (u32(got) == want.view(np.uint32)).all()


@pytest.mark.parametrize("name", PORTS)
@settings(max_examples=40, deadline=None)
@given(key=st.one_of(SEEDS, KEYS), shape=st.sampled_from(SHAPES), bounds=RANGES)
def test_randint_equals_jax_randint(jr, name, key, shape, bounds):
    import jax.numpy as jnp
    lo, hi = bounds
    want = np.asarray(jr.randint(jax_key(jr, key), shape, lo, hi, dtype=jnp.int32))
    got = port(name).randint(key, shape, lo, hi)
    assert str(got.dtype).endswith("int32") and tuple(got.shape) == shape
    assert (u32(got).view(np.int32) == want).all()


# -- errors -------------------------------------------------------------------------------

BAD_CALLS = [
    ("key_data", (True,), TypeError, "key"),
    ("key_data", (2**64,), ValueError, "key"),
    ("key_data", ([1, 2, 3],), ValueError, "key"),
    ("key_data", ([1.0, 2.0],), TypeError, "key"),
    ("key_data", ([-1, 2],), ValueError, "key"),
    ("key_data", ([0, 2**32],), ValueError, "key"),
    ("key_data", ("seed",), TypeError, "key"),
    ("fold_in", (0, -1), ValueError, "data"),
    ("fold_in", (0, 2**32), ValueError, "data"),
    ("derive_key", (0, 1, 2**32), ValueError, "indices"),
    ("split", (0, -1), ValueError, "num"),
    ("uniform", (0, 5), TypeError, "shape"),
    ("uniform", (0, (2, -1)), ValueError, "shape"),
    ("randint", (0, (2,), 0, 2**31), ValueError, "maxval"),
    ("randint", (0, (2,), -(2**31) - 1, 0), ValueError, "minval"),
]


@pytest.mark.parametrize("name", PORTS)
@pytest.mark.parametrize("fn, args, error, word", BAD_CALLS)
def test_bad_arguments_raise_errors_naming_the_argument(name, fn, args, error, word):
    with pytest.raises(error, match=word):
        getattr(port(name), fn)(*args)


# -- torch specifics ----------------------------------------------------------------------

def test_torch_keys_round_trip_as_int64_and_int32_bit_patterns():
    torch = pytest.importorskip("torch")
    t = port("torch")
    k = t.split(7, 3)
    assert k.dtype == torch.int64 and tuple(k.shape) == (3, 2)
    assert (u32(t.split(k[2])) == np_threefry.split(np_threefry.split(7, 3)[2])).all()
    as_bits = k[2].to(torch.int32)                     # the same words, two's complement
    assert (u32(t.key_data(as_bits)) == u32(k[2])).all()
    assert t.random_bits(k[0], (4,)).dtype == torch.uint32


def test_torch_cuda_results_equal_cpu_results():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    t = port("torch")
    key = t.derive_key(42, 3, 1, device="cuda")
    assert key.is_cuda and (u32(key) == u32(t.derive_key(42, 3, 1))).all()
    for shape in [(), (0,), (5,), (33, 1000)]:
        assert (u32(t.uniform(key, shape)) == u32(t.uniform(key.cpu(), shape))).all()
        assert (u32(t.randint(key, shape, 0, 30522)) ==
                u32(t.randint(key.cpu(), shape, 0, 30522))).all()
        assert (u32(t.split(key, 4)) == u32(t.split(key.cpu(), 4))).all()


@FEW
@given(pairs=st.lists(st.tuples(KEYS, st.integers(0, U32)), min_size=0, max_size=12),
       num=st.integers(1, 4))
def test_torch_keyed_bits_and_split_rows_equal_the_reference_hash(pairs, num):
    """`keyed_bits` (NumPy rounds on the CPU, torch rounds elsewhere) and `split_rows` give
    each (key, counter) the reference block function's words, counters >= 2**31 included."""
    torch = pytest.importorskip("torch")
    from mlm_torch import threefry
    keys = torch.tensor([k for k, _ in pairs], dtype=torch.int64).reshape(-1, 2)
    counters = torch.tensor([c for _, c in pairs], dtype=torch.int64)
    y0, y1 = threefry.keyed_bits(keys, counters)
    for (key, c), a, b in zip(pairs, u32(y0), u32(y1)):
        want = np_threefry.threefry2x32(key, np.uint32(0), np.uint32(c))
        assert (a, b) == (int(want[0]), int(want[1]))
    got = threefry.split_rows(keys, num)                                 # [m, num, 2]
    assert tuple(got.shape) == (len(pairs), num, 2)
    for key, row in zip(keys.tolist(), got.numpy()):
        assert (row == np_threefry.split(key, num)).all()


@FEW
@given(pairs=st.lists(st.tuples(KEYS, st.integers(0, U32)), min_size=1, max_size=12))
def test_torch_host_rounds_equal_the_torch_rounds(pairs):
    """The CPU's host formulation (NumPy's uint32 arrays, Python ints for one key) and the
    torch int32 rounds that GPUs run give every (key, counter) the same words."""
    torch = pytest.importorskip("torch")
    from mlm_torch import threefry
    for key, c in pairs:
        y0, y1 = threefry.threefry2x32(key, 0, c)                        # torch rounds
        want = (int(u32(y0)), int(u32(y1)))
        assert threefry.threefry2x32_int(*key, 0, c) == want
        h0, h1 = threefry.threefry2x32_numpy(np.uint32(key[0]), np.uint32(key[1]),
                                             np.array([c], dtype=np.uint32))
        assert (int(h0[0]), int(h1[0])) == want


@FEW
@given(key=KEYS, counters=st.lists(st.integers(0, U32), min_size=1, max_size=6))
def test_host_lanes_hash_each_counter_as_a_single_hash_does(key, counters):
    """`threefry2x32_lanes` (several counters under one key, in the lanes of one Python int)
    gives each counter the words of `threefry2x32_int` and of the reference."""
    pytest.importorskip("torch")
    from mlm_torch import threefry_host
    got = threefry_host.threefry2x32_lanes(*key, counters)
    assert got == [threefry_host.threefry2x32_int(*key, 0, c) for c in counters]
    for (a, b), c in zip(got, counters):
        y0, y1 = np_threefry.threefry2x32(key, 0, c)
        assert (a, b) == (int(y0), int(y1))


@pytest.mark.parametrize("m, num", [(1, 1), (3, 1), (1, 7), (32, 3), (4, 32), (1, 129),
                                    (5, 30)])
def test_host_hash_of_few_words_in_int_lanes_equals_the_reference(m, num):
    """`threefry2x32_numpy` hashes up to `PACKED_MAX` words in the lanes of Python ints and
    more in NumPy's uint32: both give the reference's words, keys broadcast over counters."""
    pytest.importorskip("torch")
    from mlm_torch import threefry_host
    rng = np.random.default_rng(m * 1000 + num)
    k = rng.integers(0, 2**32, size=(m, 2), dtype=np.uint64).astype(np.uint32)
    c = rng.integers(0, 2**32, size=num, dtype=np.uint64).astype(np.uint32)
    y0, y1 = threefry_host.threefry2x32_numpy(k[:, :1], k[:, 1:], c)         # [m, num]
    assert y0.shape == y1.shape == (m, num) and y0.dtype == y1.dtype == np.uint32
    for r in range(m):
        w0, w1 = np_threefry.threefry2x32(k[r].tolist(), np.zeros(num, np.uint32), c)
        assert (y0[r] == w0).all() and (y1[r] == w1).all()
