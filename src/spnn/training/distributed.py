"""torch.distributed helpers: the same code runs as 1 process or as N (torchrun or `--nproc`)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["world", "init_from_env", "average_gradients", "barrier", "is_main"]


def init_from_env() -> None:
    """Join the process group described by torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR...)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def average_gradients(params) -> None:
    """All-reduce and average the gradients of ``params`` across processes."""
    rank, size = world()
    if size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def all_mean(value: float, device) -> float:
    rank, size = world()
    if size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / size


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()
