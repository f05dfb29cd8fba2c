"""`python -m verify.conformance`: the published maskers and ours, checked and written up as
docs/conformance.md (`page` renders it; `__main__` is the command line)."""
