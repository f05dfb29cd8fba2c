"""verify: black-box checks that a masker does what BERT prescribes (docs/contract.md).

The harness feeds synthetic batches to a masker, sees only `(x, x_masked, y)`, and decides
exact invariants and statistical checks under one family-wise false-alarm budget (Holm).
In a user's own pytest::

    from mlm_ref import MaskingConfig
    from verify import assert_masker_conforms

    def test_my_masker_conforms():
        config = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), n_tokens=1000)
        assert_masker_conforms(my_masker, config, tokens=2_000_000)

`my_masker` is any callable on a torch long tensor `[seq_len, batch]` returning
`(x_masked, y)` (seeded through `torch.manual_seed`), one of this project's `MLM` objects, or
a name from `verify.registry` (`numpy`, `torch`, `jax`, `labml`, `hf-torch`, `hf-numpy`) or
`MODULE:ATTR`. Submodules (and torch) load on first use, so `import verify` stays cheap for the
other tools in this package.
"""

from .engine import DEFAULT_ALPHA

__all__ = ["check_masker", "check_maskers", "assert_masker_conforms", "check_wwm_maskers",
           "check_wwm_masker", "check_pipeline", "assert_pipeline_conforms", "check_nsp",
           "DEFAULT_ALPHA"]


def check_maskers(maskers, config=None, **kwargs):
    """Check several maskers, each alone and every pair against each other; returns a
    `Report` (`.passed`, `str(report)`, `.to_dict()`). See
    `verify.token.runner.check_maskers`."""
    from .token.runner import check_maskers as run
    return run(maskers, config, **kwargs)


def check_masker(masker, config=None, **kwargs):
    """Check one masker; keywords as `check_maskers` (tokens, seed, alpha, device, ...)."""
    return check_maskers([masker], config, **kwargs)


def assert_masker_conforms(masker, config=None, **kwargs):
    """Raise `AssertionError` with the failing checks (expected vs observed) unless `masker`
    passes every check; returns the report otherwise."""
    report = check_masker(masker, config, **kwargs)
    if not report.passed:
        raise AssertionError(f"masker does not conform to the MLM contract:\n"
                             f"{report.failure_message()}\n\n{report}")
    return report


def check_pipeline(pipeline, config=None, **kwargs):
    """Check the stream a data pipeline produces across epochs and ranks; see
    `verify.pipeline.check_pipeline`."""
    from .pipeline import check_pipeline as run
    return run(pipeline, config, **kwargs)


def assert_pipeline_conforms(pipeline, config=None, **kwargs):
    """Raise `AssertionError` unless the pipeline passes; see `verify.pipeline`."""
    from .pipeline import assert_pipeline_conforms as run
    return run(pipeline, config, **kwargs)


def check_nsp(generator="ours", **kwargs):
    """Check a next-sentence-pair generator (`ours`, `google`, `MODULE:ATTR` or a callable
    `(documents, *, seed, epoch)`); returns an `NSPReport`. See `verify.nsp.check_nsp`."""
    from .nsp import check_nsp as run
    return run(generator, **kwargs)


def check_wwm_maskers(maskers, config, **kwargs):
    """Check whole-word maskers against the WWM contract (docs/statistics.md, "Whole-word
    masking"); a `WWMReport` with `.passed`, `str(report)`, `.to_dict()`. Maskers: `numpy`,
    `torch`, `jax`, `hf-wwm`, `MODULE:ATTR` or callables `fn(x, word_ids=w, seed=s)`. See
    `verify.words.wwm_runner.check_wwm_maskers` (tokens, seed, alpha, source)."""
    from .words.wwm_runner import check_wwm_maskers as run
    return run(maskers, config, **kwargs)


def check_wwm_masker(masker, config, **kwargs):
    """Check one whole-word masker; keywords as `check_wwm_maskers`."""
    return check_wwm_maskers([masker], config, **kwargs)
