"""The next-sentence-pair gate (`python -m verify.nsp`).

`nsp_corpus` (the self-describing synthetic corpus), `nsp_imdb` (IMDB reviews as documents),
`nsp_checks` (the checks and their report). The public API is `verify.check_nsp`.
"""
