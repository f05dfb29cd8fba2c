"""`python -m verify.bench`: masking throughput of every registry masker beside a copy.

* `maskers`: each registry masker as timed calls (set-up untimed, the call timed);
* `timing`: rotation of inputs, turns of calls, the copy bandwidth;
* `collate`: the collators, ours and Hugging Face's, in examples/s (padding and masking);
* `report`: docs/benchmarks.md from the JSON results (`python -m verify.bench.report`);
* `__main__`: the command line.
"""
