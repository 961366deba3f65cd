"""Data-parallel training across processes (``torchrun``, DistributedDataParallel).

Nothing here is needed for a single process. Under ``torchrun`` (which sets
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``) :func:`~.loop.fit` joins the
process group (NCCL on GPUs, gloo on CPUs), wraps the model in
``DistributedDataParallel``, gives every process its share of each epoch's
batches, lets rank 0 alone write checkpoints and print, and checks at the end
that every process holds the same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistContext:
    """This process's place in a run: ``rank`` of ``world`` processes (1 when not distributed)."""

    rank: int = 0
    world: int = 1
    created: bool = False

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints and reports progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset or invalid).

    Examples
    --------
    >>> env_world_size() >= 1
    True
    """
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def local_device(device: str) -> str:
    """``cuda`` becomes this process's GPU (``cuda:LOCAL_RANK``) under ``torchrun``; other names unchanged.

    Examples
    --------
    >>> local_device("cpu")
    'cpu'
    """
    if device == "cuda" and env_world_size() > 1:
        import torch

        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    return device


def setup(device: str = "cpu") -> DistContext:
    """Join the process group when launched by ``torchrun`` (or use one that exists).

    Parameters
    ----------
    device : str
        The model's device: NCCL is used for CUDA, gloo otherwise.
    """
    import torch.distributed as dist

    if not dist.is_available():
        return DistContext()
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), False)
    if env_world_size() <= 1:
        return DistContext()
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), True)


def teardown(ctx: DistContext, ok: bool = True) -> None:
    """Leave the process group if :func:`setup` created it (after a barrier when all went well)."""
    if ctx.created:
        import torch.distributed as dist

        if ok:
            dist.barrier()
        dist.destroy_process_group()


def shard(order, ctx: DistContext):
    """This process's part of an epoch's sample order: equal lengths on every rank (DDP needs it).

    Examples
    --------
    >>> shard(list(range(7)), DistContext(1, 2))
    [1, 3, 5]
    """
    if not ctx.active:
        return order
    n = (len(order) // ctx.world) * ctx.world
    if n == 0:
        raise ValueError(f"{len(order)} training images cannot be shared by {ctx.world} processes")
    return order[:n][ctx.rank :: ctx.world]


def wrap(module, device: str):
    """``DistributedDataParallel`` of ``module`` (on its GPU for CUDA)."""
    from torch.nn.parallel import DistributedDataParallel

    if str(device).startswith("cuda"):
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        return DistributedDataParallel(module, device_ids=[index])
    return DistributedDataParallel(module)


def average_gradients(params, ctx: DistContext) -> None:
    """All-reduce and average gradients (for models that cannot be wrapped in DDP)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ctx.world


def broadcast(value, ctx: DistContext):
    """Rank 0's ``value`` (any picklable object) on every process."""
    if not ctx.active:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_agreement(module, ctx: DistContext) -> float:
    """A checksum of the parameters, verified equal on every process.

    Raises
    ------
    RuntimeError
        If the processes hold different weights.
    """
    import torch

    with torch.no_grad():
        total = sum(float(p.double().sum()) for p in module.parameters())
    if ctx.active:
        import torch.distributed as dist

        sums = [None] * ctx.world
        dist.all_gather_object(sums, total)
        if any(s != sums[0] for s in sums):
            raise RuntimeError(f"the {ctx.world} training processes ended with different weights: {sums}")
    return total
