"""The token-level gate (`python -m verify.stats`): feed a masker synthetic batches, count on
its device what it did, decide the checks.

Layers, each importing only those above it in this list (and `verify.engine`):

* `inputs`: the synthetic batches; `adapters`: every masker seen as torch -> torch;
* `counts`: accumulation where the masker ran (torch tensors on a GPU; NumPy arrays on a CPU,
  the tensors' own memory, and for a pipeline's stream, without torch), read back once as `HostCounts` (`host_counts`, NumPy only, with the outcome
  codes and `is_replay`);
* `random_ids`, `checks` (agreement between maskers too), `invariants`: checks built from
  `HostCounts`;
* `summary`: effective probabilities with intervals; `verdicts`: the report, printed or JSON;
* `plan`: tokens needed for a given effect; `runner`: runs the maskers and decides every
  check under one Holm budget.

The public API is `verify.check_masker`, `verify.check_maskers`, `verify.assert_masker_conforms`.
"""
