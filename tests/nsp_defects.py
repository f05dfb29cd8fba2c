"""Realistic NSP defects, one each, made by changing one step of the correct third-party
generator of `tests/nsp_thirdparty.py` (`python -m verify.nsp tests.nsp_defects:NAME`).
`DEFECTS` maps each to the gate's check that names it."""

import numpy as np

from tests.nsp_thirdparty import CLS, SEP, ThirdParty


class EpochIgnored(ThirdParty):
    """Seeded per document but not per epoch: the same pairs every epoch (Megatron-style
    sample mappings built once)."""

    def rng(self, seed, epoch, d):
        return np.random.default_rng([seed, d])


class FixedPartner(ThirdParty):
    """Each document's random B comes from one partner document chosen once per seed (labels
    and the rest redrawn per epoch): a cached partner table."""

    def __call__(self, documents, *, seed, epoch=0, max_seq_len=128):
        self.seed = seed
        self.partner = None
        return super().__call__(documents, seed=seed, epoch=epoch, max_seq_len=max_seq_len)

    def other_document(self, d, rng):
        if self.partner is None:
            n = len(self.nonempty)
            shift = np.random.default_rng(self.seed).integers(1, n, size=n)
            self.partner = {doc: self.nonempty[(k + s) % n]
                            for k, (doc, s) in enumerate(zip(self.nonempty, shift))}
        return self.partner[d]


class StartsAtFirstSentence(ThirdParty):
    """Random B always read from the other document's first sentence."""

    def start_sentence(self, doc, rng):
        return 0


class StartNeverLast(ThirdParty):
    """Off by one: the random start is drawn from `[0, len(doc) - 1)`, never the last sentence
    (but the first of a one-sentence document)."""

    def start_sentence(self, doc, rng):
        return int(rng.integers(max(1, len(doc) - 1)))


class StartByToken(ThirdParty):
    """Random B starts at the sentence of a uniform *token* of the other document: sentences
    weighted by length."""

    def start_sentence(self, doc, rng):
        lengths = np.array([len(s) for s in doc], np.float64)
        return int(rng.choice(len(doc), p=lengths / lengths.sum()))


class RandomBOneSentence(ThirdParty):
    """Random B is one random sentence, never read on to the target."""

    def random_b(self, d, rng, want):
        return super().random_b(d, rng, 1)


class IsNextBOneSentence(ThirdParty):
    """IsNext B is only the sentence after A, not the rest of the chunk."""

    def isnext_b(self, doc, a_end, end):
        return doc[a_end]


class RandomBIgnoresA(ThirdParty):
    """Random B read to the whole target, as if A were empty (then truncation cuts it)."""

    def random_b(self, d, rng, want):
        return super().random_b(d, rng, self.max_tokens)


class DocumentByLength(ThirdParty):
    """The random document is drawn in proportion to its length (a uniform token of the
    corpus, then its document)."""

    def other_document(self, d, rng):
        if getattr(self, "_docs_seen", None) is not self.docs:     # sizes once per call
            self._docs_seen = self.docs
            self._sizes = np.array([sum(len(s) for s in self.docs[k]) for k in self.nonempty],
                                   np.float64)
        sizes = self._sizes.copy()
        sizes[self.nonempty.index(d)] = 0
        return self.nonempty[int(rng.choice(len(sizes), p=sizes / sizes.sum()))]


class NearbyDocument(ThirdParty):
    """The random document is drawn from a window of 64 documents around A's (a shuffle
    buffer): every document is used about as often, but never far from A's."""

    def other_document(self, d, rng):
        k = self.nonempty.index(d)
        lo = max(0, min(k - 32, len(self.nonempty) - 65))
        window = [x for x in self.nonempty[lo:lo + 65] if x != d]
        return window[int(rng.integers(len(window)))]


class CutsAFrontBBack(ThirdParty):
    """A is always cut at its front and B at its back (keep the text near the [SEP] between
    them): front and back are balanced when both sides are pooled."""

    def cut_front(self, side, rng):
        return side == 0


class CutsOneTooMany(ThirdParty):
    """Off by one: truncates while `len(A) + len(B) >= max_seq_len - 3`."""

    def too_long(self, a, b):
        return len(a) + len(b) >= self.max_tokens


class TypesOffByOne(ThirdParty):
    """token_type_ids: the [SEP] after A already typed 1."""

    def types(self, la, lb, n):
        t = super().types(la, lb, n)
        t[la + 1] = 1
        return t


class NoMiddleSep(ThirdParty):
    """input_ids `[CLS] A B [SEP] [PAD]`: the [SEP] between the segments forgotten."""

    def ids(self, a, b):
        return np.concatenate([[CLS], a, b, [SEP], [0]])


class WithSegments:
    """Mixin: `tokens_a`, `tokens_b` and `is_random_next` beside the assembled form, so that
    the gate checks the assembled form against them (without them it reads the segments by
    token type, and a type error shows as a misplaced [SEP])."""

    def emit(self, a, b, label):
        out = super().emit(a, b, label)
        out.pop("next_sentence_label")
        return {**out, "tokens_a": a, "tokens_b": b, "is_random_next": label}


class TypesOffByOneWithSegments(WithSegments, TypesOffByOne):
    """TypesOffByOne, segments given."""


class NoMiddleSepWithSegments(WithSegments, NoMiddleSep):
    """NoMiddleSep, segments given."""


DEFECTS = {
    "epoch_ignored": (EpochIgnored, "labels redrawn each epoch"),
    "fixed_partner": (FixedPartner, "random B redrawn each epoch"),
    "starts_at_first_sentence": (StartsAtFirstSentence, "random B starts at a uniform sentence"),
    "start_never_last": (StartNeverLast, "random B starts at a uniform sentence"),
    "start_by_token": (StartByToken, "random B's start independent of sentence length"),
    "random_b_one_sentence": (RandomBOneSentence, "B reaches the target (random next)"),
    "isnext_b_one_sentence": (IsNextBOneSentence, "B reaches the target (IsNext)"),
    "random_b_ignores_a": (RandomBIgnoresA, "B read only to the target less A's"),
    "document_by_length": (DocumentByLength, "random B's document uniform over document sizes"),
    "nearby_document": (NearbyDocument, "random B's document uniform over the corpus order"),
    "cuts_a_front_b_back": (CutsAFrontBBack, "cuts front vs back: B, random next"),
    "cuts_one_too_many": (CutsOneTooMany, "cut only down to the limit"),
    "types_off_by_one": (TypesOffByOneWithSegments,
                         "token_type_ids 0 through the first [SEP], 1 after"),
    "types_off_by_one_by_type": (TypesOffByOne,
                                 "assembled input is [CLS] A [SEP] B [SEP] (+ padding)"),
    "no_middle_sep": (NoMiddleSepWithSegments,
                      "assembled input is [CLS] A [SEP] B [SEP] (+ padding)"),
    "no_middle_sep_by_type": (NoMiddleSep,
                              "assembled input is [CLS] A [SEP] B [SEP] (+ padding)"),
}

for _name, (_cls, _check) in DEFECTS.items():
    globals()[_name] = _cls()


class EpochShiftsDocument(ThirdParty):
    """Streams seeded with `seed + epoch + d`: document d in epoch 1 replays the draws of
    document d + 1 in epoch 0 (each document's own epochs differ)."""

    def rng(self, seed, epoch, d):
        return np.random.default_rng(seed + epoch + d)


DEFECTS["epoch_shifts_document"] = (EpochShiftsDocument,
                                    "labels independent of nearby documents in the other epoch")
epoch_shifts_document = EpochShiftsDocument()


class DocumentsDealt(ThirdParty):
    """Random documents dealt from a shuffled deck (without replacement, a new deck when it
    runs out): every document serves about equally often, more evenly than independent
    uniform draws."""

    def __call__(self, documents, *, seed, epoch=0, max_seq_len=128):
        self.deck, self.deck_rng = [], np.random.default_rng([seed, epoch, 7])
        return super().__call__(documents, seed=seed, epoch=epoch, max_seq_len=max_seq_len)

    def other_document(self, d, rng):
        while True:
            if not self.deck:
                self.deck = list(self.deck_rng.permutation(self.nonempty))
            other = int(self.deck.pop())
            if other != d:
                return other
            self.deck.insert(0, other)


DEFECTS["documents_dealt"] = (DocumentsDealt,
                              "random B's documents spread as independent draws")
documents_dealt = DocumentsDealt()
