"""Single-process or torchrun-launched DistributedDataParallel, behind one small object.

Under `torchrun --nproc_per_node N` the environment carries RANK, WORLD_SIZE and LOCAL_RANK; each
process then trains on its shard of every global batch, NCCL on GPUs and gloo on CPU. A process that
torchrun launched joins a process group even when N is 1, so `torchrun --nproc_per_node 1` runs the DDP
code path (bench/gpu_check.py checks NCCL that way on a one-GPU machine). Without torchrun everything
here is a no-op, so the training loop reads the same in both cases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    grouped: bool = False  # in a process group (launched by torchrun)

    @property
    def enabled(self) -> bool:
        return self.grouped

    @property
    def main(self) -> bool:
        """The process that writes files and shows progress."""
        return self.rank == 0

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of `values` over processes (a copy; the input is untouched)."""
        values = values.detach().clone()
        if self.enabled:
            dist.all_reduce(values)
            values /= self.world
        return values

    def any(self, flag: bool) -> bool:
        """True on every process when `flag` is true on any: all stop at the same step."""
        if not self.enabled:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, obj: object) -> list:
        """Every process's `obj`, in rank order (for per-process RNG states)."""
        if not self.enabled:
            return [obj]
        gathered = [None] * self.world
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def start() -> Context:
    """Join the process group torchrun set up, or run alone; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world == 1 and "TORCHELASTIC_RUN_ID" not in os.environ:  # not launched by torchrun
        return Context(device=device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(rank=dist.get_rank(), world=world, local_rank=local_rank, device=device, grouped=True)
