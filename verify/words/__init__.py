"""The whole-word-masking gate (`python -m verify.stats --wwm`).

`pair_words` (the default inputs: sentence pairs with word ids as fast tokenizers give them),
`word_batches` and `text_words` (other inputs with word ids), `wwm_adapters` and
`wwm_protocol` (whole-word maskers behind one interface; offsets, pieces, layout),
`wwm_counts` (what a masker did, per word and per piece), `wwm_joint` and `wwm_cells` (independence
between words, the 1/V' cells, replays), `wwm_checks` and `wwm_runner` (every check under one Holm
budget), `wwm_plan` (`--wwm --plan`). Built on `verify.engine` and on the
token-level gate's counting conventions. The public API is `verify.check_wwm_maskers`.
"""
