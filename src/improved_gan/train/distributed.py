"""Several processes on PyTorch's distributed engine: ``torchrun --nproc_per_node N -m improved_gan ...``.

The trainers stay plain loops. This module gives them:

- :func:`detect_env` / :func:`init` / :func:`session`: torchrun's variables (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) → a process group with a timeout (gloo on CPU, NCCL
  on CUDA) and a :class:`DistContext` (rank, world size, ``is_main``, device). Without those variables,
  or with ``WORLD_SIZE=1``, everything is a single process and every helper is a no-op.
- :func:`wrap_ddp`: DistributedDataParallel with ``broadcast_buffers=False`` by default (D is called on
  the real and on the generated batch before one backward; per-forward buffer broadcasts would also
  overwrite the running statistics of batch-norm layers between those calls).
- :func:`broadcast_module_`, :func:`broadcast_tensor`, :func:`broadcast_object`: rank 0's values to
  every rank (data-dependent init, the VBN reference batch, a resumed checkpoint), done before wrapping.
- :func:`reduce_mean`: logged metrics averaged over ranks. :func:`barrier`: after rank-0 writes.
- :meth:`DistContext.shard` / :class:`ShardedSampler`: the global batch is drawn from a generator seeded
  identically on every rank and each rank keeps its contiguous slice, so that N ranks see exactly the
  batches one process with the same ``--batch-size`` would see (``--batch-size`` is the global batch).

Failures: a rendezvous that does not complete within the timeout, or a peer that dies (its sockets
close) or stops answering a collective for longer than the timeout, raise :class:`DistributedError`
(an :class:`~improved_gan.errors.ImprovedGanError`, so the CLI prints one line and exits with status 2)
inside :func:`session`; the process group is then destroyed and the process ends.

The batch-dependent techniques across ranks (global minibatch discrimination, global feature
matching, synchronised batch norm) live in :mod:`improved_gan.train.distributed_ops`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import inspect
import os
import warnings
from collections.abc import Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn

from improved_gan.errors import ImprovedGanError

DEFAULT_TIMEOUT_S = 600.0
_REQUIRED = ("MASTER_ADDR", "MASTER_PORT")


class DistributedError(ImprovedGanError):
    """The process group could not be formed, or a peer died or stopped answering."""


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """What torchrun (or a hand-written launcher) put in the environment."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


def detect_env(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """torchrun's variables, or None for a single process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "-1"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise DistributedError(f"WORLD_SIZE/RANK/LOCAL_RANK must be integers ({exc})") from None
    if world == 1:
        return None
    missing = [k for k in ("RANK", *_REQUIRED) if k not in env]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world} is set but {', '.join(missing)} is not; launch with "
                               "torchrun (which sets them all) or set RANK, MASTER_ADDR and MASTER_PORT")
    if not 0 <= rank < world or world < 1:
        raise DistributedError(f"RANK={rank} is outside [0, WORLD_SIZE={world})")
    return DistEnv(rank, world, local, env["MASTER_ADDR"], int(env["MASTER_PORT"]))


@dataclasses.dataclass
class DistContext:
    """Where this process stands. The default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    ops_group: object | None = None  # second group, for the collectives inside autograd (distributed_ops)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_slice(self, n_global: int) -> slice:
        """This rank's contiguous rows of a global batch of ``n_global`` (which must divide evenly)."""
        if n_global % self.world_size:
            raise DistributedError(f"a global batch of {n_global} does not split over {self.world_size} "
                                   "processes; choose a batch size divisible by the number of processes")
        n = n_global // self.world_size
        return slice(self.rank * n, (self.rank + 1) * n)

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """``x[local_slice(len(x))]``: the rows of a global batch this rank trains on."""
        return x if not self.distributed else x[self.local_slice(x.shape[0])]

    def __deepcopy__(self, memo):  # process-wide (holds process groups): copies of modules share it
        return self

    def check_batch(self, name: str, n_global: int) -> None:
        if self.distributed:
            self.local_slice(n_global)  # raises with a message naming the fix
            if n_global // self.world_size < 2:
                raise DistributedError(f"{name}={n_global} leaves fewer than 2 samples per process on "
                                       f"{self.world_size} processes")


def init(device: str | torch.device = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S,
         environ: Mapping[str, str] | None = None) -> DistContext:
    """Join the process group described by the environment (a single-process context when none is)."""
    dev = torch.device(device)
    env = detect_env(environ)
    if env is None:
        return DistContext(device=dev, timeout_s=timeout_s)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DistributedError("--device cuda was given but CUDA is not available")
        dev = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        backend = "gloo"
    timeout = datetime.timedelta(seconds=timeout_s)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, init_method="env://", rank=env.rank, world_size=env.world_size,
                                    timeout=timeout)
        except (dist.DistError, RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"rank {env.rank} of {env.world_size} could not join the process group at "
                f"{env.master_addr}:{env.master_port} within {timeout_s:g} s ({type(exc).__name__}: "
                f"{_first_line(exc)}). Start all {env.world_size} processes with the same MASTER_ADDR and "
                "MASTER_PORT, check that the port is free and reachable, or raise --dist-timeout"
            ) from None
    ops_group = dist.new_group(backend=backend, timeout=timeout)
    return DistContext(env.rank, env.world_size, env.local_rank, dev, backend, timeout_s, ops_group)


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def is_communication_error(exc: BaseException) -> bool:
    """True for the errors gloo/NCCL raise when a peer dies or a collective times out."""
    if isinstance(exc, dist.DistError):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    return any(s in text for s in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset",
                                   "Timed out", "timed out", "ProcessGroup"))


@contextlib.contextmanager
def session(device: str | torch.device = "cpu",
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[DistContext]:
    """``with session(opts.device, opts.dist_timeout) as ctx:`` around a whole run: joins the group,
    turns communication failures into :class:`DistributedError` naming this rank, always leaves it."""
    ctx = init(device, timeout_s)
    try:
        yield ctx
    except DistributedError:
        raise
    except (RuntimeError, dist.DistError) as exc:
        if ctx.distributed and is_communication_error(exc):
            raise DistributedError(
                f"rank {ctx.rank} of {ctx.world_size} lost contact with the other processes: another rank "
                f"died, was killed or stopped answering for {ctx.timeout_s:g} s ({_first_line(exc)}). "
                "See the other ranks' output for the first failure"
            ) from None
        raise
    finally:
        shutdown(ctx)


# ---------------------------------------------------------------------------------------- modules


def wrap_ddp(module: nn.Module, ctx: DistContext, broadcast_buffers: bool = False, **kwargs) -> nn.Module:
    """DistributedDataParallel(module) on several ranks, ``module`` itself on one.

    Parameters and buffers are copied from rank 0 when wrapping. ``broadcast_buffers=False`` (default)
    keeps each rank's buffers between steps (batch-norm running statistics are then per rank unless the
    layers are synchronised, see :func:`improved_gan.train.distributed_ops.convert_sync_batch_norm`)."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters and broadcast_buffers:
        kwargs["forward_sync_buffers"] = True  # newer torch: sync at init and at every forward
    elif not broadcast_buffers:
        kwargs["broadcast_buffers"] = False  # sync buffers neither per forward nor (older torch) at init
    else:
        kwargs["broadcast_buffers"] = True
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*deprecated", category=FutureWarning)
        wrapped = DDP(module, device_ids=device_ids, **kwargs)
    if not broadcast_buffers:
        broadcast_module_(module, ctx, buffers_only=True)  # same starting buffers on every rank
    return wrapped


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (for state dicts, evaluation, methods)."""
    return getattr(module, "module", module)


@torch.no_grad()
def broadcast_module_(module: nn.Module, ctx: DistContext, src: int = 0, buffers_only: bool = False) -> None:
    """Copy ``src``'s parameters (unless ``buffers_only``) and floating/integer buffers to every rank."""
    if not ctx.distributed:
        return
    tensors = [] if buffers_only else [p.data for p in module.parameters()]
    tensors += [b for b in module.buffers()]
    for t in tensors:
        dist.broadcast(t, src)


def broadcast_tensor(t: torch.Tensor, ctx: DistContext, src: int = 0) -> torch.Tensor:
    """``src``'s tensor on every rank (same shape and dtype on all ranks; returned, also in place)."""
    if ctx.distributed:
        t = t.contiguous()
        dist.broadcast(t, src)
    return t


def broadcast_object(obj, ctx: DistContext, src: int = 0):
    """``src``'s picklable object on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src)
    return box[0]


def reduce_mean(values: Mapping[str, float], ctx: DistContext) -> dict[str, float]:
    """The mean over ranks of each value, in one all-reduce (keys must be the same on every rank)."""
    if not ctx.distributed:
        return dict(values)
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=ctx.device)  # NCCL: CUDA
    dist.all_reduce(t)
    t /= ctx.world_size
    return dict(zip(keys, t.tolist(), strict=True))


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (after rank 0 wrote a checkpoint or a figure the others may read)."""
    if not ctx.distributed:
        return
    if ctx.backend == "gloo":  # names the ranks that did not arrive
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=ctx.timeout_s), wait_all_ranks=True)
    else:
        dist.barrier()


def seed_rank_rng(seed: int, ctx: DistContext) -> None:
    """Give each rank its own global torch RNG stream (dropout, Gaussian-noise layers) after the models
    were initialised identically; a no-op on one process, so single-process runs are unchanged."""
    if ctx.distributed:
        torch.manual_seed(seed + 1_000_003 * (ctx.rank + 1))


def gather_rng_states(ctx: DistContext) -> list[torch.Tensor] | None:
    """Every rank's global torch RNG state (for rank 0's checkpoint); None on one process."""
    if not ctx.distributed:
        return None
    states: list = [None] * ctx.world_size
    dist.all_gather_object(states, torch.get_rng_state())
    return states


def restore_rank_rng(states: list[torch.Tensor] | None, ctx: DistContext) -> None:
    """Put back this rank's global RNG state saved by :func:`gather_rng_states`."""
    if states is None or not ctx.distributed:
        return
    if len(states) != ctx.world_size:
        raise DistributedError(f"the checkpoint was written by {len(states)} processes; resume it with "
                               f"the same number (now {ctx.world_size})")
    torch.set_rng_state(states[ctx.rank])


def gather_flat(module: nn.Module, ctx: DistContext) -> list[torch.Tensor]:
    """Every rank's parameters, flattened (for checking that ranks agree)."""
    flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    if not ctx.distributed:
        return [flat]
    out = [torch.empty_like(flat) for _ in range(ctx.world_size)]
    dist.all_gather(out, flat)
    return out


def assert_in_sync(module: nn.Module, ctx: DistContext, name: str = "model", atol: float = 0.0) -> None:
    """Raise DistributedError when the ranks' parameters differ (DDP should keep them identical)."""
    copies = gather_flat(module, ctx)
    worst = max(float((c - copies[0]).abs().max()) for c in copies) if copies[0].numel() else 0.0
    if worst > atol:
        raise DistributedError(f"the ranks' copies of {name} differ by up to {worst:.3g}; they should be "
                               "identical under DistributedDataParallel")


class ShardedSampler:
    """DistributedSampler's role for the plain loops: each epoch one permutation of ``num_samples``
    indices from ``seed + epoch`` (the same on every rank, call :meth:`set_epoch`), cut into global
    batches of ``global_batch`` (the last partial batch is dropped); each rank yields its contiguous
    slice of every global batch, so the union over ranks of step k is one process's batch k."""

    def __init__(self, num_samples: int, global_batch: int, ctx: DistContext, seed: int = 0,
                 shuffle: bool = True):
        ctx.local_slice(global_batch)
        if global_batch > num_samples:
            raise DistributedError(f"global batch {global_batch} is larger than the {num_samples} samples")
        self.num_samples, self.global_batch, self.ctx = num_samples, global_batch, ctx
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples // self.global_batch

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=gen)
        else:
            order = torch.arange(self.num_samples)
        local = self.ctx.local_slice(self.global_batch)
        for k in range(len(self)):
            yield order[k * self.global_batch:(k + 1) * self.global_batch][local]
