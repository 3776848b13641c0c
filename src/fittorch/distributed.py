"""Data-parallel training on ``torch.distributed``, launched by torchrun.

fittorch has no cluster code of its own: ``torchrun`` (``python -m torch.distributed.run``)
starts one process per device, sets ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/``MASTER_ADDR``,
and handles multi-node rendezvous and restarts. :func:`setup` reads that environment,
creates the process group (nccl on CUDA, gloo on the CPU, one GPU per local rank) and
destroys it when the process exits, also after an error.

:class:`DistContext` is everything the trainer and the loop need. In one process every
method is the identity and costs nothing, so the loop has a single code path. Under DDP
the collectives happen at epoch (or stop-check) boundaries only; none runs per step
except the gradient all-reduce (DDP's own, or :meth:`DistContext.average_grads` for a step
that calls the model's parts itself).

See ``docs/distributed.md``.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field

import torch

from .errors import CheckpointError, ConfigError

#: Under DDP, a ``should_stop`` raised mid-epoch (a signal, a time limit) is agreed across
#: ranks every this many batches; a stop set at an epoch end is agreed at that epoch end.
STOP_CHECK_EVERY = 50

_OWNED = {"initialized": False}  # whether fittorch created the default process group


@dataclass
class DistContext:
    """This process's place in the job: rank, world size, device, and the collectives."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    stop_check_every: int = STOP_CHECK_EVERY
    _agreed_stop: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def is_main(self) -> bool:
        """True on rank 0: the one process that writes files and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    # -- collectives (identity in one process) ------------------------------------------
    def reduce_sum(self, total, count: int):
        """Sum a device tensor (or None, counted as 0) and a count over ranks."""
        if not self.enabled:
            return total, count
        import torch.distributed as dist

        if total is None:
            total = torch.zeros((), device=self.device)
        buf = torch.stack([total.detach().double().reshape(()),
                           torch.tensor(float(count), dtype=torch.float64, device=total.device)])
        buf = buf.to(self._comm_device())
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf[0].to(total.device).to(total.dtype), int(buf[1].item())

    def mean_of(self, values: torch.Tensor) -> float:
        """The mean of ``values`` over every rank's entries (the epoch's batch losses)."""
        if not self.enabled:
            return float(values.float().mean())
        total, count = self.reduce_sum(values.float().sum(), len(values))
        return float(total) / count

    def max_value(self, value: float) -> float:
        """The largest ``value`` over ranks (e.g. the epoch's wall time, so histories match)."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        buf = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(buf, op=dist.ReduceOp.MAX)
        return float(buf[0])

    def any_true(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (stop flags)."""
        if not self.enabled:
            return bool(flag)
        return self.max_value(1.0 if flag else 0.0) > 0.5

    def check_stop(self, state, batches_done: int) -> bool:
        """Mid-epoch stop check. One process: ``state.should_stop``. Under DDP the ranks
        agree every ``stop_check_every`` batches (all ranks run the same number of
        batches, so they reach each check together) and stop at the same batch.

        The agreed answer is kept for the batch, so a callback that must act on a stop
        (a checkpoint saved before the loop leaves) can call this too: it and the loop
        get the same answer on every rank, even if a signal lands in between."""
        if not self.enabled:
            return state.should_stop
        if batches_done % self.stop_check_every:
            return False
        key = (state.epoch, batches_done, state.global_step)
        if self._agreed_stop is None or self._agreed_stop[0] != key:
            self._agreed_stop = (key, self.any_true(state.should_stop))
        if self._agreed_stop[1]:
            state.should_stop = True
        return self._agreed_stop[1]

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def all_gather_object(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank (e.g. RNG states for a checkpoint)."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_rank_states(self, local: dict) -> list | None:
        """Every rank's ``local`` state (tensors moved to the CPU), in rank order, on every
        rank; None in one process. For checkpoints: what differs between ranks (RNG states,
        the epoch's batch losses, an unfinished accumulation window's gradients) is saved
        for each rank, and on resume each rank takes ``states[trainer.dist.rank]``."""
        if not self.enabled:
            return None
        def to_cpu(x):
            if isinstance(x, torch.Tensor):
                return x.detach().cpu()
            if isinstance(x, dict):
                return {k: to_cpu(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return type(x)(to_cpu(v) for v in x)
            return x

        return self.all_gather_object({k: to_cpu(v) for k, v in local.items()})

    def broadcast_object(self, obj, src: int = 0):
        """Rank ``src``'s ``obj`` on every rank (e.g. a checkpoint path chosen by rank 0)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def record_error(self, exc: BaseException) -> None:
        """Under torchrun, write ``exc`` to the launcher's error file, so its failure summary
        shows this rank's error as the root cause (instead of "To enable traceback see ...").
        Errors that only report a peer's failure (a closed connection) are not recorded, so
        the rank that really failed is named. Call it inside the ``except`` block."""
        if not self.enabled or not os.environ.get("TORCHELASTIC_ERROR_FILE") or not isinstance(exc, Exception):
            return
        if _is_peer_failure(exc):
            return
        try:
            from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

            ErrorHandler().record_exception(exc)
        except Exception:  # noqa: BLE001 - reporting must never hide the real error
            pass

    # -- model ------------------------------------------------------------------------
    def wrap_model(self, model):
        """``model`` wrapped in DistributedDataParallel (call once; the Trainer keeps it).

        DDP broadcasts rank 0's parameters and buffers at construction, so every rank
        starts from the same weights. The user's module stays ``trainer.model``.
        """
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids, output_device=ids[0] if ids else None)

    def replicate(self, model):
        """``model``, with rank 0's parameters and buffers broadcast to every rank (as DDP does).

        For a custom step that calls the model's parts itself (``self.model.generator(...)``):
        such a step runs the bare module, and its gradients are averaged by
        :meth:`average_grads` in ``Step.optimizer_step`` instead of by DDP's backward hooks.
        """
        if not self.enabled:
            return model
        import torch.distributed as dist

        with torch.no_grad():
            for t in [*model.parameters(), *model.buffers()]:
                dist.broadcast(t.data, src=0)
        return model

    def average_grads(self, params) -> None:
        """Average the gradients of ``params`` over ranks, in place (one all-reduce per dtype).

        Parameters without a gradient are left out; every rank must have the same ones
        (true when every rank runs the same step code). The mean over ranks of each rank's
        mean-loss gradient equals one process's gradient over the global batch, as with DDP.
        """
        if not self.enabled:
            return
        import torch.distributed as dist

        by_dtype: dict = {}
        for p in params:
            if p.grad is not None:
                by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        for grads in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)  # a sum; divided below
            flat.div_(self.world_size)
            for g, part in zip(grads, flat.split([g.numel() for g in grads])):
                g.copy_(part.view_as(g))

    def eval_model(self, model, *, sync_buffers: bool = True):
        """The module to evaluate or predict with: the bare module, never DDP.

        DDP's forward may broadcast buffers, a collective that would hang when ranks run
        different numbers of evaluation batches (or only rank 0 predicts). Buffers
        (BatchNorm statistics) are instead broadcast from rank 0 here, once, so every
        rank evaluates the same model. ``sync_buffers=False`` (predict) runs no collective:
        each rank uses its own buffers, equal to rank 0's after any validation pass.
        """
        from torch.nn.parallel import DistributedDataParallel as DDP

        if not self.enabled:
            return model
        module = model.module if isinstance(model, DDP) else model  # bare: a step that syncs its own grads
        buffers = [b for b in module.buffers()]
        if buffers and sync_buffers:
            import torch.distributed as dist

            for b in buffers:
                dist.broadcast(b.data, src=0)
        return module

    # -- data -------------------------------------------------------------------------
    def eval_order(self, source):
        """This rank's disjoint share of an evaluation set (no padding: each sample counts once)."""
        if not self.enabled:
            return None
        from .data import InMemoryData, LoaderData

        if isinstance(source, InMemoryData) or (isinstance(source, LoaderData) and source.loader is None
                                                and not source.iterable):
            return torch.arange(len(source))[self.rank :: self.world_size]
        return None

    def prepare_source(self, source, *, role: str, seed: int):
        """Shard a ready DataLoader: a DistributedSampler for training (padded, so every rank
        runs the same number of steps), a plain disjoint shard for evaluation."""
        from .data import LoaderData

        if not self.enabled or not isinstance(source, LoaderData) or source.loader is None:
            return source
        return LoaderData(_shard_loader(source.loader, self, role=role, seed=seed),
                          num_workers=source.num_workers, pin_memory=source.pin_memory)

    def rank_seed(self, seed: int) -> int:
        """The global-RNG seed of this rank: ``seed`` on rank 0, distinct on the others
        (independent dropout masks per rank). The data order does not use it."""
        return int(seed) if self.rank == 0 else int(seed) + 7919 * self.rank

    # -- checkpoints --------------------------------------------------------------------
    def check_world_size(self, saved: int, source: str = "the checkpoint") -> None:
        """Refuse a resume under a different world size, with the fix."""
        if int(saved) != self.world_size:
            raise CheckpointError(
                f"{source} was written by a run with world size {saved}, but this run has world size "
                f"{self.world_size}. A resume must use the same number of processes (each rank's data shard, "
                f"RNG state and step count depend on it): launch with --nproc_per_node {saved} (torchrun) or "
                f"--nproc {saved} (fittorch fit). To continue with another size, load only the weights "
                "(trainer.load(path)) and start a new run."
            )

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def _is_peer_failure(exc: BaseException) -> bool:
    import torch.distributed as dist

    text = str(exc)
    backend_error = getattr(dist, "DistBackendError", ())
    return (isinstance(exc, backend_error) if backend_error else False) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "NCCL communicator was aborted"))


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={value!r} is not an integer; torchrun sets it to one.") from None


def setup(device: torch.device) -> DistContext:
    """The :class:`DistContext` of this process, creating the process group if needed.

    - Launched by torchrun (``WORLD_SIZE`` > 1): initialise the default process group,
      ``nccl`` on CUDA and ``gloo`` otherwise; on CUDA each process uses ``cuda:LOCAL_RANK``
      unless an explicit index was given. The group is destroyed at exit.
    - A process group already initialised by the user: join it as is.
    - Otherwise: one process, nothing to do.
    """
    import torch.distributed as dist

    available = dist.is_available()
    if available and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK")
        local = rank if local is None else local
        device = _rank_device(device, local, world)
        return DistContext(rank=rank, local_rank=local, world_size=world, device=device)
    world = _env_int("WORLD_SIZE")
    if world is None or world <= 1:
        return DistContext(device=device)
    rank, local = _env_int("RANK"), _env_int("LOCAL_RANK")
    if rank is None:
        raise ConfigError(
            f"WORLD_SIZE={world} is set but RANK is not. Start distributed runs with torchrun, which sets both: "
            "torchrun --nproc_per_node N your_script.py"
        )
    local = rank if local is None else local
    if not available:
        raise ConfigError(f"WORLD_SIZE={world}, but this torch build has no torch.distributed support.")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(
            f"Distributed training runs on CUDA (nccl) or the CPU (gloo); device {device} is not supported "
            "with WORLD_SIZE > 1. Pass device='cpu', or launch a single process."
        )
    device = _rank_device(device, local, world)
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {}
    timeout = os.environ.get("FITTORCH_DIST_TIMEOUT")
    if timeout:
        import datetime

        kwargs["timeout"] = datetime.timedelta(seconds=float(timeout))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device
    dist.init_process_group(backend=backend, rank=rank, world_size=world, **kwargs)
    if not _OWNED["initialized"]:
        atexit.register(shutdown)
    _OWNED["initialized"] = True
    return DistContext(rank=rank, local_rank=local, world_size=world, device=device)


def _rank_device(device: torch.device, local_rank: int, world: int) -> torch.device:
    if device.type == "cuda" and device.index is None and world > 1:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank}, but this node has {torch.cuda.device_count()} visible GPU(s), and "
                "nccl needs one GPU per process. Start at most that many processes (fittorch fit --nproc N, "
                "torchrun --nproc_per_node N), or train the processes on the CPU (gloo) with device='cpu' "
                "(config: device: cpu)."
            )
        return torch.device("cuda", local_rank)
    return device


def shutdown() -> None:
    """Destroy the process group fittorch created (registered with ``atexit``; safe to call twice)."""
    import torch.distributed as dist

    if _OWNED["initialized"] and dist.is_available() and dist.is_initialized():
        _OWNED["initialized"] = False
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - exiting anyway; a peer may already be gone
            pass


# -- DataLoader sharding --------------------------------------------------------------
class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, ...`` of a dataset: disjoint, unpadded (for evaluation)."""

    def __init__(self, n: int, rank: int, world_size: int):
        self.indices = list(range(rank, n, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _shard_loader(loader, ctx: DistContext, *, role: str, seed: int):
    from torch.utils.data import DataLoader, IterableDataset, RandomSampler
    from torch.utils.data.distributed import DistributedSampler

    if isinstance(loader.dataset, IterableDataset):
        return loader  # the dataset shards itself (documented): fittorch cannot split a stream
    if isinstance(loader.sampler, (DistributedSampler, ShardSampler)):
        return loader
    if loader.batch_size is None:
        raise ConfigError(
            f"The {role} DataLoader uses a custom batch_sampler, which fittorch cannot shard across "
            f"{ctx.world_size} processes. Give it a sampler that splits the data by rank yourself, or pass "
            "the Dataset instead of a DataLoader and let fittorch batch and shard it."
        )
    if role == "train":
        sampler = DistributedSampler(loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                     shuffle=isinstance(loader.sampler, RandomSampler), seed=seed,
                                     drop_last=loader.drop_last)
    else:
        sampler = ShardSampler(len(loader.dataset), ctx.rank, ctx.world_size)
    kwargs = dict(batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                  collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                  timeout=loader.timeout, worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                  persistent_workers=loader.persistent_workers)
    if loader.num_workers > 0:
        kwargs["prefetch_factor"] = loader.prefetch_factor
        kwargs["multiprocessing_context"] = loader.multiprocessing_context
    return DataLoader(loader.dataset, **kwargs)


def current() -> DistContext:
    """The context of this process without creating a process group (rank/world of an existing one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        local = _env_int("LOCAL_RANK")
        return DistContext(rank=dist.get_rank(), local_rank=dist.get_rank() if local is None else local,
                           world_size=dist.get_world_size())
    return DistContext()
