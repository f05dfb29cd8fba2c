"""Distributed runs on `torch.distributed`: each rank counts a block of calls, the counts are
summed, and the result is the single-process run's, exactly.

`torchrun --nproc-per-node N -m verify.stats ...` starts N ranks; `verify.stats` initialises the
process group (`Ranks`, `init`: gloo on a CPU, NCCL for CUDA tensors) and, called with
`distributed=True`, `runner.run_masker` asks `share()` which calls this rank makes. How the
run stays the single-process run:

* **Blocks of replayed pairs.** The run's pairs of calls `(2k, 2k + 1)` are cut into N
  contiguous blocks, one per rank (`calls`): a call and its replay stay on one rank, so the
  replay pairs and everything else counted within a call are counted as in one process. The
  determinism check (call 0 made twice) runs on the rank that owns call 0.
* **Block boundaries.** The fresh consecutive-call pair of a block's first call `2k` with call
  `2k - 1` (the previous rank's last) is counted after the run: every rank shares the codes of
  its last counted call (`all_gather`) and the next rank adds the pair (`_boundary`).
* **A run that stops** (a masker that raises or breaks the output contract) stops a single
  process at that call: the earliest stopping call of all ranks is agreed (`all_reduce` MIN),
  and the ranks whose blocks start after it contribute nothing, as the calls a single process
  would not have made.
* **Sums.** Every counter of `Counts` is a sum over calls (`Counts.tensors`; the per-call rows,
  `by_call` and the per-call dispersion sums, are filled by their call's rank only, zero
  elsewhere) and is summed with `all_reduce` SUM: integers exactly, and the float dispersion
  sums are added in call order on the host after the reduction, so they are exact too. Problems
  seen on the host are gathered (`all_gather_object`) and merged in rank order, which is call
  order.

The counts, hence every statistic of the report, are the same for any number of ranks (for a
masker whose outputs depend only on its input and seed, as the contract requires).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["requested", "init", "finish", "share", "rank", "Share", "Ranks"]


def requested() -> bool:
    """Whether this process was started as one of several ranks (torchrun's WORLD_SIZE > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def init(device: str) -> None:
    """Join the process group torchrun describes: gloo for CPU tensors, and NCCL for CUDA
    tensors when `device` is CUDA (each rank on the GPU of its LOCAL_RANK)."""
    if str(device).startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group(backend="gloo")


def finish() -> None:
    """Leave the process group (a no-op outside a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank (0 outside a distributed run)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def share() -> "Share | None":
    """This rank's share of a run, or None when not in a distributed run of several ranks."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return Share(dist.get_rank(), dist.get_world_size())


class Share:
    """Rank `rank` of `world`: which calls it makes, and how its counts join the others'."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def calls(self, calls: int) -> range:
        """This rank's contiguous block of whole pairs of calls (possibly empty)."""
        pairs = -(-calls // 2)
        first, last = self.rank * pairs // self.world, (self.rank + 1) * pairs // self.world
        return range(2 * first, min(2 * last, calls))

    def reduce(self, counts, mine: range, stopped: int | None) -> None:
        """Make `counts` (this rank's, over the calls `mine`, stopped at call `stopped` or not)
        the counts of the whole run, on every rank."""
        dev = counts.device
        big = torch.iinfo(torch.int64).max
        first_stop = torch.tensor([big if stopped is None else stopped], device=dev)
        dist.all_reduce(first_stop, op=dist.ReduceOp.MIN)
        if len(mine) and mine.start > int(first_stop):  # a single process never got here
            counts.restart()
        self._boundary(counts)
        for t in counts.tensors():  # NumPy counters (a CPU run) summed in place, as tensors
            dist.all_reduce(torch.as_tensor(t), op=dist.ReduceOp.SUM)
        made = torch.tensor([counts.calls_counted if counts.first_counted is not None else 0],
                            device=dev)
        dist.all_reduce(made, op=dist.ReduceOp.MAX)
        counts.calls_counted = int(made)
        problems = [None] * self.world
        dist.all_gather_object(problems, counts.host_problems)
        merged: dict[str, list[str]] = {}
        for p in problems:  # rank order is call order
            for check, messages in p.items():
                merged.setdefault(check, []).extend(messages)
        counts.host_problems = merged

    def _boundary(self, counts) -> None:
        """Add the fresh pair of this block's first call with the previous block's last."""
        code_shape = (counts.seq_len, counts.batch)
        dev = counts.device
        last = torch.zeros(1 + counts.seq_len * counts.batch, dtype=torch.int64, device=dev)
        last[0] = -1
        if counts.last_codes is not None:
            last[0] = counts.calls_counted - 1
            last[1:] = torch.as_tensor(counts.last_codes).reshape(-1)
        gathered = [torch.empty_like(last) for _ in range(self.world)]
        dist.all_gather(gathered, last)
        if counts.first_counted is None or counts.first_counted[0] == 0:
            return
        index, code = counts.first_counted
        for g in gathered:
            if int(g[0]) == index - 1:
                xp = counts.xp
                counts.add_fresh_pair(xp.asarray(g[1:].view(code_shape), xp.int64, dev),
                                      xp.asarray(code, xp.int64, dev))
                return
        raise RuntimeError(f"distributed run: no rank counted call {index - 1}")


class Ranks:
    """The command line's side of a distributed run: join the group, agree that every rank
    accepted its arguments before any masker runs, and end on rank 0's exit status.

    Args:
        device: the run's device (`cuda` adds NCCL for CUDA tensors; gloo serves CPU ones).
    """

    def __init__(self, device: str):
        init(device)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.leader = self.rank == 0
        self._ready: bool | None = None

    def ready(self, ok: bool = True) -> bool:
        """Once per rank: whether every rank is ready to run (`ok`); later calls repeat it."""
        if self._ready is None:
            flag = torch.tensor([int(ok)])
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            self._ready = bool(flag)
        return self._ready

    def status(self, status: int) -> int:
        """Rank 0's exit status, on every rank."""
        value = torch.tensor([status if self.leader else 0])
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return int(value)

    def close(self) -> None:
        finish()
