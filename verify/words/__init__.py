"""The whole-word-masking gate (`python -m verify.stats --wwm`).

`word_batches` and `text_words` (inputs with word ids), `wwm_adapters` (whole-word maskers
behind one interface), `wwm_counts` (what a masker did, per word and per piece), `wwm_checks`
and `wwm_runner` (every check under one Holm budget). Built on `verify.engine` and on the
token-level gate's counting conventions. The public API is `verify.check_wwm_maskers`.
"""
