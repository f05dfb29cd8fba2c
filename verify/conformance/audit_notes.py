"""What the audit's findings mean for the users of each masker, and how to make it conform
where it can: facts read in the published sources (cited in `verify/published/`), printed
under each masker's measured findings in docs/conformance.md."""

__all__ = ["NOTES", "WWM_NOTES", "MASK_IN_INPUT"]

# Shared by every masker that selects a [MASK] id found in its input.
MASK_IN_INPUT = (
    "\"ineligible positions never selected\" counts `[MASK]` ids that the gate puts in its "
    "inputs (the contract makes them ineligible, so that a pipeline that masks twice cannot "
    "mask a mask): this library selects them like any other piece. Its own inputs never hold "
    "`[MASK]` before masking, so in its usual pipeline this finding has no effect.")

NOTES: dict[str, list[str]] = {
    "megatron": [
        "**What it means.** The selection is not BERT's: a **fixed count** per sequence "
        "(`min(p * target_length, round(p * len))`, `[CLS]` and `[SEP]` counted in `len` though "
        "never selected, so short sequences lose about 2p of a prediction), taken as **spans of "
        "up to 3 whole words** (weights 1/n). Neighbouring tokens are selected together far "
        "more often than independent selection gives, and the count per sequence barely "
        "varies. This is by design (the n-gram masking of SpanBERT-style objectives), but it is "
        "not the i.i.d. 15% of the BERT paper that `pretrain_bert.py` is named after. The "
        "category split is hard-coded 80/10/10 in `_get_token_mask` (`--mask-prob` changes the "
        "selection rate only), and random ids come from the whole vocabulary, special ids "
        "included, which the contract allows (`random_exclude` is empty by default). " +
        MASK_IN_INPUT, "",
        "**How to conform.** Not by configuration: `pretrain_bert.py` hard-codes "
        "`masking_max_ngram=3` (edit it to 1 to remove the spans); the fixed count has no "
        "option. Each sample's generator is `RandomState(seed + index)`, so runs with "
        "neighbouring seeds share streams shifted by one sample (docs/pipelines.md, "
        "\"Megatron's seed + index\").", ""],
    "keras-hub": [
        "**What it means.** With its default `unselectable_token_ids=[0]`, only `[PAD]` is "
        "protected: `[CLS]` and `[SEP]` are selected (and so masked, replaced or predicted) at "
        "the full rate, and the `[MASK]` ids of the input too. The Python path selects by an "
        "independent draw per position from Python's global `random`, so a program that "
        "seeds `random` once per worker shares streams across workers the way NumPy's global "
        "generator does (docs/pipelines.md, \"The pitfalls\").", "",
        "**How to conform.** Pass the special ids: `unselectable_token_ids=[pad_id, cls_id, "
        "sep_id, mask_id]` (Keras Hub's own BERT preprocessor does this); `keras-hub-configured` "
        "below is that configuration.", ""],
    "keras-hub-configured": [
        "**What it means.** `MaskedLMMaskGenerator(unselectable_token_ids=[0, 101, 102, 103])`: the "
        "configuration a user should write; the remaining findings, if any, are the layer's "
        "own. Inside a `tf.data` pipeline the layer runs TensorFlow Text's "
        "`RandomItemSelector` instead of the Python path (`keras-hub-tf`, when run).", ""],
    "keras-hub-tf": [
        "**What it means.** Inside `tf.data` (the layer's TF path, TensorFlow Text's "
        "`RandomItemSelector` and `MaskValuesChooser`, told the special ids here) the "
        "selection is not a draw per position: `RandomItemSelector` shuffles each row's "
        "selectable positions and keeps the first `ceil(rate * count)` (capped by "
        "`mask_selection_length`, a cap its TensorFlow Text name, `max_selections_per_batch`, "
        "says is per batch but applies per row), so the count per sequence is fixed and "
        "rounded up, unlike the same layer's Python path. One layer, two laws, depending on "
        "whether it runs inside `tf.data`.",
        ""],
    "google-bert": [
        "**What it means.** A **fixed count** per sequence, `min(max_predictions_per_seq, "
        "max(1, round(p * len)))` with `[CLS]`/`[SEP]` in `len` and never selected; with the "
        "script's default `--max_predictions_per_seq 20` and sequences longer than 133 tokens "
        "the cap binds and the selection rate falls below 15%. A fixed count makes the "
        "selections of a sequence negatively dependent: two neighbouring positions are "
        "selected together less often than independent draws give. The masks are **static**: "
        "the script writes `--dupe_factor` (10) masked copies of the corpus, and training "
        "reads the same files every epoch, so an example sees at most 10 masks over training "
        "(the pipeline gate fails static masks: `python -m verify.pipeline "
        "tests.pipelines:static_mask`). " + MASK_IN_INPUT, "",
        "**How to conform.** Not by configuration: the count is fixed by design (raise "
        "`--max_predictions_per_seq` to `round(0.15 * max_seq_length) + 1` at least, so that "
        "the cap never binds); use dynamic masking in the input pipeline instead of "
        "`create_pretraining_data.py`'s static masks.", ""],
    "fairseq": [
        "**What it means.** The count is rounded probabilistically (`int(p * len + u)`), so it "
        "varies far less than a binomial count; `<s>`/`</s>` (`[CLS]`/`[SEP]` here) are "
        "selectable; random ids skip the dictionary's first four symbols (here ids 0 to 3). Each "
        "example's generator is seeded with `hash((seed, epoch, index)) % 10**6`: in a corpus "
        "of more than about a thousand examples, examples share seeds, and two examples of the "
        "same length that share a seed get the same mask (the gate's repeated selection "
        "patterns). The release asserts that no input holds `[MASK]`; the re-implementation "
        "leaves that input check out, so the gate's `[MASK]` inputs are counted as selected "
        "ineligible positions.", "",
        "**How to conform.** Not by configuration: the rounding and the seed space are fixed in "
        "`MaskTokensDataset`; the special symbols can be kept out of the selection only by "
        "removing them before masking.", ""],
}

WWM_NOTES: dict[str, list[str]] = {
    "megatron-wwm": [
        "Megatron's words come from `##` pieces, as here; its categories are drawn **per "
        "piece** inside a selected span, so a selected word can come out partly `[MASK]`, "
        "partly random, partly unchanged (the gate's mixed outcome), where the contract draws "
        "one category per word.", ""],
    "google-bert-wwm": [
        "`--do_whole_word_mask` groups `##` pieces into words for the selection, but each piece "
        "of a selected word still draws its own category (the script's loop over the word's "
        "indices): the mixed outcomes the gate counts.", ""],
}
