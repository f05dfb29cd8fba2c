"""The skeleton every gate plugs into; it never imports a gate.

* `primitives`: the statistics (Pearson with sparse bins merged, Holm, the MDE) and `Check`;
* `guard`: every call into the user's code under one guard (errors, exits, interrupts, a
  deadline); `resolve`: the one `MODULE:ATTR` resolver;
* `arguments`: the one argument validator and the per-call seeds; `exits`: the one exit-code
  table;
* `distributed`: ranks under `torchrun`, counts summed over them;
* `frameworks`: one small adapter per framework for our three backends;
* `imdb`: the one reader of the IMDB reviews.

The gates (`verify.token`, `verify.words`, `verify.stream`, `verify.sentence_pairs`) build
their inputs, counts and checks on top of it.
"""

# One family-wise false-alarm budget per run: a CI gate at 1e-5 raises a false alarm in fewer
# than 1 run in 10,000; Holm keeps the rate at or below it whatever the dependence.
DEFAULT_ALPHA = 1e-5
