"""The house rules on imports: mlm_ref needs only NumPy, mlm_torch never loads JAX, mlm_jax never
loads PyTorch, and verify loads a backend only when it is used."""

import importlib.util
import subprocess
import sys

import pytest

RULES = [
    ("mlm_ref", ["torch", "jax", "scipy"]),
    ("mlm_torch", ["jax"]),
    ("mlm_jax", ["torch"]),
    ("verify.backends", ["torch", "jax"]),
]


@pytest.mark.parametrize("module, forbidden", RULES, ids=[r[0] for r in RULES])
def test_importing_a_package_does_not_load_another_framework(module, forbidden):
    needs = {"mlm_torch": "torch", "mlm_jax": "jax"}.get(module)
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    code = (f"import sys, {module}\n"
            f"print(','.join(m for m in {forbidden!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "", f"importing {module} loaded {loaded}"
