"""The tooling around the teaching BERT: what measures it and writes docs/bert.md.

`bench` (throughput beside Hugging Face's BERT), `experiment` (labml's masking against ours),
`ablate` (recipe variants at equal steps), `report` (the generated sections of docs/bert.md)
and `plot` (training curves). They are also importable and runnable under their old names
(`python -m mlm_bert.report`), because `mlm_bert` searches this folder too; so they import
with absolute names (`mlm_bert.runs`), which mean the same under either name.
"""
