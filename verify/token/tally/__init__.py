"""The per-call passes of the token gate on a CPU (`verify.token.counts`, `verify.token.inputs`):
the batch (`batches`), what the counts derive from it alone (`input_terms`), and the C passes
that make the batch and count a call (`compiled`: `make_batch.c`, `count_call.c`), which give
the NumPy formulations' ids and counts where they are built."""
