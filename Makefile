# Two commands for a fresh clone: `make verify` (the harness on every backend) and `make test`.
# Both create .venv on first use; torch is pinned to the release whose CPU wheel lies on disk.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
DEVICE ?= cpu

.PHONY: verify test install clean conformance bench

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[all]"
	$(PY) -m pip install --quiet --no-deps labml-nn
	touch $(STAMP)

install: $(STAMP)

# The main job: the statistical harness on the three backends, then exact-mode agreement.
verify: $(STAMP)
	$(PY) -m verify.stats --device $(DEVICE)
	$(PY) -m verify.exact --device $(DEVICE)

# The test suite as CI runs it: Hypothesis's `ci` profile, long statistical runs deselected.
test: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest -q -m "not slow"

# Regenerate docs/conformance.md and its plots (about two minutes on 2 CPU cores).
conformance: $(STAMP)
	$(PY) -m verify.conformance --out docs/conformance.md --plot docs/img

# Time every masker on $(DEVICE) and regenerate docs/benchmarks.md from every results file.
bench: $(STAMP)
	$(PY) -m verify.bench --device $(DEVICE) --json results/bench-$(DEVICE).json
	$(PY) -m verify.bench.report results/bench-*.json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
