"""The pipeline gate (`python -m verify.pipeline`): a data pipeline's stream across epochs
and ranks.

`collect` (the batches, decoded, gathered over ranks), `pipeline_pairs` (shared selections
between rows that should be independent), `pipeline_checks` (invariants, repeats beyond the
birthday bound, the stream counted as the token-level gate counts). The public API is
`verify.check_pipeline` and `verify.assert_pipeline_conforms`.
"""
