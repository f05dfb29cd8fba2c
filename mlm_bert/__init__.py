"""mlm_bert: a teaching BERT trained from scratch with this project's masker (docs/bert.md).

Read it in this order, one idea a module: `data` (IMDB reviews as documents of sentences),
`tokenizer` (WordPiece and word ids), `items` (next-sentence pairs and masked fixed-length items
from stateless streams), `model` (joint embedding, pre-LN encoder, tied MLM head, NSP head),
`trainer` (AdamW, warm-up and decay over steps or a time budget, checkpoints that resume
exactly), `evaluate` (accuracy and perplexity, at `[MASK]`, random and unchanged positions and
per whole word, top-k predictions), `baselines` (unigram and context n-gram on the same
positions), `presets` (the named runs), then the command lines `train` and `predict`. `runs`
keeps run directories whole through kills.

The tooling that measures the model and writes docs/bert.md lives apart, in `mlm_bert.tools`
(`bench`, `experiment`, `ablate`, `report`, `plot`); it is also reachable under the old names
(`python -m mlm_bert.report`), because this package searches `tools/` for its submodules too.

Importing the package imports nothing heavy; the modules need torch and `tokenizers`.
"""

import os as _os

# `mlm_bert.report` etc. resolve to mlm_bert/tools/report.py (the command lines' old names)
__path__.append(_os.path.join(_os.path.dirname(__file__), "tools"))
