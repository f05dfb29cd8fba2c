"""Issue 13, backend items: each test here failed before its fix.

Silent wrong results on large unsigned ids, tables as large as the largest special id, unclear
errors (torch exact mode on unsigned dtypes, meta and sparse tensors, JAX under jit/vmap, torch
tensors given to JAX), and key forms that meant different things in different backends.
"""

import numpy as np
import pytest

from verify.engine.frameworks import BACKENDS

KW = dict(padding_token=0, mask_token=103, n_tokens=30522)


# -- silent wrong results ------------------------------------------------------------------

@pytest.mark.parametrize("value", [2**60 + 1, 2**64 - 1, 2**53 + 1])
@pytest.mark.parametrize("mode", ["native", "exact"])
def test_large_uint64_ids_survive_where_unselected_and_in_the_labels(backend, mode, value):
    x = np.full(64, value, dtype=np.uint64)
    mlm = backend.mlm(**KW)
    got, y, _ = backend.mask(mlm, x, **({"key": 0} if mode == "exact" else {"seed": 0}))
    assert got.dtype == y.dtype == np.uint64
    selected = y != 0
    assert 0 < selected.sum() < 64
    # the ids are compared as integers: no round trip through float64
    assert (got[~selected] == np.uint64(value)).all()
    assert (y[selected] == np.uint64(value)).all()


def test_torch_cpu_native_selects_uint64_ids_at_or_above_2_to_the_63():
    torch = pytest.importorskip("torch")
    from mlm_torch import MLM
    x = torch.full((100_000,), 2**63 + 5, dtype=torch.uint64)
    _, y = MLM(**KW)(x, generator=torch.Generator().manual_seed(0))
    rate = (y.numpy() != 0).mean()
    assert abs(rate - 0.15) < 0.01, rate


# -- bounded structures for large special ids ---------------------------------------------

@pytest.mark.parametrize("kw", [dict(KW, no_mask_tokens=[2**40]),
                                dict(KW, mask_token=2**31 - 2)],
                         ids=["no_mask_2**40", "mask_token_2**31-2"])
def test_torch_builds_no_table_as_large_as_a_special_id(kw):
    torch = pytest.importorskip("torch")
    from mlm_torch import MLM, cpu, tensors
    from mlm_ref import MaskingConfig
    cfg = MaskingConfig(**kw)
    assert cpu.eligibility_table(cfg) == (None, None)
    for dtype in (torch.int64, torch.int32, torch.uint64):
        special, top, _ = tensors._special(cfg, torch.device("cpu"), dtype)
        assert special.numel() <= tensors.TABLE_MAX + 1     # a table only when it is small
    big = max(cfg.ineligible_tokens)
    x = torch.tensor([big, 5, 7, big, 0, 103] * 500, dtype=torch.int64)
    mlm = MLM(**kw, masking_prob=1.0)
    for out in (mlm(x, generator=torch.Generator().manual_seed(0)), mlm(x, key=0)):
        _, y = out
        never = torch.isin(x, torch.tensor(cfg.ineligible_tokens))
        assert (y[never] == 0).all() and (y[~never] == x[~never]).all()
    from mlm_torch.mlm import mask_tokens_torch        # the GPU-without-Triton formulation
    _, y = mask_tokens_torch(x, cfg)
    assert (y[x == big] == 0).all()


# -- clear errors, or working: torch ------------------------------------------------------

@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_torch_exact_mode_works_on_unsigned_dtypes_bit_for_bit(dtype):
    torch = pytest.importorskip("torch")
    numpy, torch_backend = BACKENDS["numpy"], BACKENDS["torch"]
    kw = dict(padding_token=0, mask_token=40000, no_mask_tokens=[65535], n_tokens=65000,
              masking_prob=0.5, randomize_prob=0.4, no_change_prob=0.2)
    x = np.random.default_rng(0).integers(0, 65536, size=(257, 3)).astype(dtype)
    x[::7] = 40000
    want = numpy.mask(numpy.mlm(**kw), x, key=7)
    got = torch_backend.mask(torch_backend.mlm(**kw), x, key=7)
    for g, w in zip(got[:2], want[:2]):
        assert g.dtype == w.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w)
    # and the torch-ops formulation of the native mode keeps the contract on them
    from mlm_torch.mlm import mask_tokens_torch
    from mlm_ref import MaskingConfig
    from tests.test_mlm_invariants import _assert_contract
    xt = torch.from_numpy(x)
    xm, y = mask_tokens_torch(xt, MaskingConfig(**kw), generator=torch.Generator().manual_seed(1))
    _assert_contract(MaskingConfig(**kw), x, xm.numpy(), y.numpy())


def test_torch_refuses_meta_and_sparse_tensors_by_name():
    torch = pytest.importorskip("torch")
    from mlm_torch import MLM
    mlm = MLM(**KW)
    meta = torch.zeros(8, dtype=torch.int64, device="meta")
    sparse = torch.arange(8).to_sparse()
    for x, word in ((meta, "meta"), (sparse, "sparse")):
        for call in (lambda: mlm(x), lambda: mlm(x, key=0)):
            with pytest.raises(TypeError, match=word):
                call()


# -- clear errors, or working: JAX --------------------------------------------------------

@pytest.fixture
def jax():
    return pytest.importorskip("jax")


def test_jax_takes_raw_key_data_and_int_seeds_under_jit_and_vmap(jax):
    import jax.numpy as jnp
    from mlm_jax import MLM
    mlm = MLM(**KW, check_ids=False)
    x = jnp.arange(1000, 1064, dtype=jnp.int32).reshape(8, 8)
    want = mlm(x, key=5)
    for key in (jax.random.PRNGKey(5), jax.random.key_data(jax.random.key(5)),
                jnp.asarray(5, jnp.int32), jnp.asarray([0, 5], jnp.int32)):
        got = jax.jit(lambda x, k: mlm(x, key=k))(x, key)
        assert all((g == w).all() for g, w in zip(got, want))
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in (5, 6)])
    batched = jax.vmap(lambda x, k: mlm(x, key=k))(jnp.stack([x, x]), keys)
    assert all((b[0] == w).all() for b, w in zip(batched, want))
    assert all((b[1] == w).all() for b, w in zip(batched, mlm(x, key=6)))
    seeds = jax.vmap(lambda x, s: mlm(x, key=s))(jnp.stack([x, x]), jnp.asarray([5, 6]))
    assert all((s[0] == w).all() for s, w in zip(seeds, want))


def test_jax_refuses_a_torch_tensor_by_name(jax):
    torch = pytest.importorskip("torch")
    from mlm_jax import MLM
    with pytest.raises(TypeError, match="torch.Tensor; mlm_jax takes JAX or NumPy arrays"):
        MLM(**KW)(torch.arange(8, dtype=torch.int32), key=0)


# -- one key rule, one seed rule ----------------------------------------------------------

def _exact(backend, key, x=np.arange(1000, 1064, dtype=np.int32)):
    return backend.mask(backend.mlm(**KW, masking_prob=0.5), x, key=key)[:2]


@pytest.mark.parametrize("key, same_as", [
    (np.uint64(2**64 - 1), [0, 2**32 - 1]),
    (np.array([0, -1], dtype=np.int32), [0, 2**32 - 1]),
    (np.array(7, dtype=np.int64), 7),
    (np.int8(-1), [0, 2**32 - 1]),
], ids=["uint64-seed", "int32-bit-patterns", "0-d-seed", "negative-int8-seed"])
def test_every_backend_accepts_the_same_key_forms(backend, key, same_as):
    numpy = BACKENDS["numpy"]
    want = _exact(numpy, same_as)
    got = _exact(backend, key)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


BAD_KEYS = [
    (3.0, TypeError, "key must be an int seed or two uint32 words"),
    (True, TypeError, "bool"),
    ("0", TypeError, "key must be"),
    ([1.0, 2.0], TypeError, "dtype float64"),
    ([1, 2, 3], ValueError, r"two uint32 words \(shape \(2,\)\), got shape \(3,\)"),
    ([0, 2**32], ValueError, r"each in \[0, 2\*\*32\)"),
    ([-1, 2], ValueError, r"each in \[0, 2\*\*32\)"),
    (2**64, ValueError, "fit in int64"),
]


@pytest.mark.parametrize("key, error, message", BAD_KEYS, ids=[repr(k[0]) for k in BAD_KEYS])
def test_every_backend_refuses_a_bad_key_with_the_same_error(backend, key, error, message):
    with pytest.raises(error, match=message):
        _exact(backend, key)


@pytest.mark.parametrize("seed, error", [(1.5, TypeError), ("1", TypeError), (True, TypeError),
                                         (-1, ValueError)])
def test_a_bad_native_seed_is_refused_by_name(seed, error):
    from mlm_ref import MLM
    with pytest.raises(error, match="rng"):
        MLM(**KW)(np.arange(4), rng=seed)
