"""`python -m verify`: which command does what."""

import sys

COMMANDS = """usage: python -m verify.<command> [options]   (each has --help)

  verify.stats        check maskers against the contract: exact invariants and statistical
                      tests under one false-alarm budget (ours, published, or MODULE:ATTR)
  verify.pipeline     check the masks a data pipeline really produces across batches,
                      workers, epochs and ranks (MODULE:ATTR; torchrun for real ranks)
  verify.exact        exact mode: the same key must give identical masks in every backend
  verify.nsp          check next-sentence-prediction pairs: label rate 0.5, IsNext really next,
                      random B from another document, lengths, balanced truncation
  verify.conformance  write docs/conformance.md: published maskers and ours, checked
  verify.conformance.wwm  its whole-word section: Hugging Face's whole-word mode on IMDB
                      reviews (whole-word masking itself: verify.stats --wwm)
  verify.bench        time every masker on cpu or cuda beside a copy's bandwidth
  verify.bench.report write docs/benchmarks.md from bench JSON files
  verify.bench.memory peak memory of each backend and mode, as a multiple of the input
  verify.bench.gpu_check  everything a CUDA GPU can tell (`make gpu-check`); exits 0 without one
  (torchrun --nproc-per-node N -m verify.stats|verify.pipeline ... runs over N ranks)
"""

if __name__ == "__main__":
    print(COMMANDS, end="")
    sys.exit(0 if len(sys.argv) == 1 or sys.argv[1] in ("-h", "--help") else 2)
