"""The pipeline gate (`python -m verify.pipeline`): a data pipeline's stream across epochs
and ranks.

`collect` (the batches, decoded, gathered over ranks), `pipeline_pairs` (shared selections
between rows that should be independent), `pipeline_checks` (invariants, repeats beyond the
birthday bound, the stream counted as the token-level gate counts), `pipeline_order` (which
examples, to which rank, in which order), `pipeline_fields` (`attention_mask`,
`token_type_ids`), `pipeline_words` (whole-word pipelines), `pipeline_report` (the report and
its likely cause), `pipeline_seed` (`--seed`). The public API is
`verify.check_pipeline` and `verify.assert_pipeline_conforms`.
"""
