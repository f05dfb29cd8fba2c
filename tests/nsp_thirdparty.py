"""A correct NSP generator written from docs/nsp.md as a third party would, independently of
`mlm_ref.nsp`: NumPy's `default_rng` per (seed, epoch, document), a target drawn per chunk
(Megatron's habit, where ours and Google's draw one per document), Hugging Face-style output
(`input_ids`, `token_type_ids`, `attention_mask` padded to `max_seq_len`,
`next_sentence_label`) and a `RuntimeError` for a corpus it cannot serve.

`tests/nsp_defects.py` breaks it one step at a time by overriding one method each.
"""

import numpy as np

CLS, SEP, PAD = 101, 102, 0


class ThirdParty:
    """`ThirdParty()(documents, *, seed, epoch)`: the gate's generator signature."""

    short_seq_prob = 0.1
    assembled = True          # Hugging Face-style dicts; False: (tokens_a, tokens_b, label)

    def __call__(self, documents, *, seed, epoch=0, max_seq_len=128):
        docs = [[np.asarray(s, np.int64) for s in d if len(s)] for d in documents]
        self.nonempty = [d for d, doc in enumerate(docs) if doc]
        if len(self.nonempty) < 2:
            raise RuntimeError("need at least two non-empty documents for random next sentences")
        self.docs, self.max_tokens, self.max_seq_len = docs, max_seq_len - 3, max_seq_len
        out = []
        for d, doc in enumerate(docs):
            if len(doc) >= 2:
                rng = self.rng(seed, epoch, d)
                out += [self.emit(a, b, label) for a, b, label in self.document(d, rng)]
        return out

    def rng(self, seed, epoch, d):
        return np.random.default_rng([seed, epoch, d])

    def target(self, rng):
        if rng.random() < self.short_seq_prob:
            return int(rng.integers(2, self.max_tokens + 1))
        return self.max_tokens

    def document(self, d, rng):
        """(A, B, is_random_next) of document d's chunks."""
        doc, i = self.docs[d], 0
        while i < len(doc):
            target = self.target(rng)
            is_random = bool(rng.random() < 0.5)            # before A is looked at
            start, end, length = i, i, 0
            while end < len(doc) and length < target:
                length += len(doc[end])
                end += 1
            if end - start == 1:                              # no next sentence inside
                if end < len(doc):
                    end += 1
                else:
                    start -= 1
            a_end = int(rng.integers(start + 1, end))
            a = np.concatenate(doc[start:a_end])
            if is_random:
                b = self.random_b(d, rng, max(1, target - len(a)))
                i = max(a_end, i + 1)
            else:
                b = self.isnext_b(doc, a_end, end)
                i = end
            yield (*self.truncate(a, b, rng), int(is_random))

    def isnext_b(self, doc, a_end, end):
        return np.concatenate(doc[a_end:end])

    def other_document(self, d, rng):
        r = int(rng.integers(len(self.nonempty) - 1))
        k = self.nonempty.index(d)
        return self.nonempty[r + (r >= k)]

    def start_sentence(self, doc, rng):
        return int(rng.integers(len(doc)))

    def random_b(self, d, rng, want):
        doc = self.docs[self.other_document(d, rng)]
        parts, length = [], 0
        for sentence in doc[self.start_sentence(doc, rng):]:
            parts.append(sentence)
            length += len(sentence)
            if length >= want:
                break
        return np.concatenate(parts)

    def too_long(self, a, b):
        return len(a) + len(b) > self.max_tokens

    def cut_front(self, side, rng):
        """Whether this cut takes the front token of `side` (0 = A, 1 = B)."""
        return bool(rng.random() < 0.5)

    def truncate(self, a, b, rng):
        a, b = list(a), list(b)
        while self.too_long(a, b):
            side = 0 if len(a) > len(b) else 1 if len(b) > len(a) else int(rng.random() < 0.5)
            seg = (a, b)[side]
            seg.pop(0 if self.cut_front(side, rng) else -1)
        return np.array(a, np.int64), np.array(b, np.int64)

    def types(self, la, lb, n):
        t = np.zeros(n, np.int64)
        t[la + 2:la + lb + 3] = 1
        return t

    def ids(self, a, b):
        return np.concatenate([[CLS], a, [SEP], b, [SEP]])

    def emit(self, a, b, label):
        if not self.assembled:
            return a, b, label
        ids = self.ids(a, b)
        n = self.max_seq_len
        padded = np.full(n, PAD, np.int64)
        padded[:ids.size] = ids
        return {"input_ids": padded, "token_type_ids": self.types(len(a), len(b), n),
                "attention_mask": (np.arange(n) < ids.size).astype(np.int64),
                "next_sentence_label": label}


class EmptyForOneDocument(ThirdParty):
    """Correct too: a corpus it cannot serve gives no pairs (and plain tuples)."""

    assembled = False

    def __call__(self, documents, *, seed, epoch=0, max_seq_len=128):
        if sum(1 for d in documents if any(len(s) for s in d)) < 2:
            return []
        return super().__call__(documents, seed=seed, epoch=epoch, max_seq_len=max_seq_len)


thirdparty = ThirdParty()
empty_for_one_document = EmptyForOneDocument()
