"""The per-call passes of the token gate's counting (`verify.token.counts`): what an input alone
gives (`input_terms`, NumPy or torch), and the per-position counting of a call in C
(`compiled`, `count_call.c`), which gives the NumPy formulation's counts where it is built."""
