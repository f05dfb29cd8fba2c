"""The harness: feed a masker inputs, count what it did on the device, decide the checks.

Layers, each importing only those above it in this list:

* `primitives`: the statistics (Pearson with sparse bins merged, Holm, the MDE) and `Check`;
* `inputs`: the synthetic batches; `maskers`: every masker seen as torch -> torch;
* `counts`: on-device accumulation, read back once as `HostCounts`;
* `checks`, `invariants`, `agreement`: checks built from `HostCounts`;
* `summary`: effective probabilities with intervals; `report`: the verdicts, printed or JSON;
* `runner`: runs the maskers and decides every check under one Holm budget.

The whole-word-masking gate sits beside them, built from the same primitives: `words` and
`text_words` (inputs with word ids), `wwm_adapters`, `wwm_counts`, `wwm_checks`, `wwm_runner`.

The public API is `verify.check_masker`, `verify.check_maskers`,
`verify.assert_masker_conforms`, and for whole words `verify.check_wwm_maskers`.
"""

# One family-wise false-alarm budget per run: a CI gate at 1e-5 raises a false alarm in fewer
# than 1 run in 10,000; Holm keeps the rate at or below it whatever the dependence.
DEFAULT_ALPHA = 1e-5
