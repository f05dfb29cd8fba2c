"""The next-sentence-pair gate (`python -m verify.nsp`).

`nsp_corpus` (the self-describing synthetic corpus), `nsp_imdb` (IMDB reviews as documents),
`nsp_pairs` (pairs read back through the corpus, the optional assembled form), `nsp_checks`
(the first checks and the report), `nsp_draws` (how B is drawn, read and cut) and
`nsp_epochs` (epochs 0 and 1 compared). The public API is `verify.check_nsp`.
"""
