"""torchrun / DistributedDataParallel helpers: one process per GPU, rank 0 writes."""
import os

import torch
import torch.distributed as dist


def init_distributed():
    """Returns (rank, world_size, local_rank); (0, 1, 0) when not launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return rank, world, local


def is_main(rank):
    return rank == 0


def barrier(world):
    if world > 1:
        dist.barrier()


def reduce_mean(value, world, device):
    if world == 1:
        return float(value)
    t = torch.tensor([float(value)], device=device)
    dist.all_reduce(t)
    return float(t.item()) / world


def cleanup():
    # torchrun with one process still initialises a group (init_distributed); destroy whatever was created
    if dist.is_initialized():
        dist.destroy_process_group()
