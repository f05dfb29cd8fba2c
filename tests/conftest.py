"""Shared fixtures: the backends under test and Hypothesis's profiles.

`MLM_BACKENDS=numpy,jax pytest` narrows the backends (all installed ones by default); a backend
whose framework is not installed is skipped, never failed. `HYPOTHESIS_PROFILE=ci` (what
`make test` sets) runs a fixed, derandomised set of examples so CI cannot flake on a new draw.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from verify.engine.frameworks import selected_backends

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=150, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BACKENDS = selected_backends()


@pytest.fixture(scope="session", params=BACKENDS, ids=lambda b: b.name)
def backend(request):
    """Each selected backend in turn; skipped when its framework is missing."""
    b = request.param
    if not b.available():
        pytest.skip(f"{b.framework} is not installed")
    return b
