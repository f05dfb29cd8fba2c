"""mlm_bert: a teaching BERT trained from scratch with this project's masker (docs/bert.md).

Read it in this order, one idea a module: `data` (IMDB reviews as documents of sentences),
`tokenizer` (WordPiece and word ids), `items` (next-sentence pairs and masked fixed-length items
from stateless streams), `model` (joint embedding, pre-LN encoder, tied MLM head, NSP head),
`trainer` (AdamW, warm-up and decay, checkpoints that resume exactly), `evaluate` (accuracy,
perplexity, the unigram baseline, top-k predictions). The command lines are `train`, `predict`,
`bench`, `experiment` and `report` (`python -m mlm_bert.train --preset smoke`).

Importing the package imports nothing heavy; the modules need torch and `tokenizers`.
"""
