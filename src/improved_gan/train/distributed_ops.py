"""The paper's batch-dependent techniques across ranks, made exact under DistributedDataParallel.

**The rule behind every gradient here.** DDP averages parameter gradients over ranks, so a run on W
ranks minimises ``(1/W) Σ_r L_r`` where ``L_r`` is rank r's loss. When each ``L_r`` is the mean over
rank r's B/W rows, that is the single-process loss on the global batch of B rows, *provided* each rank
back-propagates the gradient of the whole sum ``Σ_r L_r`` into its own inputs. For a collective whose
output every rank uses (an all-gather, an all-reduce), rank s's input gradient is therefore the **sum
over ranks** of the gradients arriving at the output: the backward of :func:`all_gather_with_grad` is
an all-reduce (sum) of the incoming gradient followed by the local slice, and the backward of
:func:`all_reduce_with_grad` is an all-reduce of the gradient. A gather whose backward kept only the
local slice of the local gradient would drop the other ranks' terms (W times too small when every rank
uses the whole gathered tensor symmetrically); ``tests/test_distributed_ops.py`` checks both.

Options (each trainer exposes them as ``--dist-mbd``, ``--dist-fm``, ``--dist-bn``):

- minibatch discrimination (Section 3.2), ``"global"`` (default) or ``"per-rank"``: in global mode
  :func:`enable_global_minibatch` hooks every MinibatchDiscrimination layer so that it computes o(x_i)
  against the features of the *global* batch (gathered with gradient) and returns its own rows; the
  result equals one process on the global batch. Per-rank mode compares each sample with the B/W − 1
  others of its rank only: o(x) sums fewer terms and is a different (smaller-batch) statistic.
- feature matching (3.1), ``"global"`` (default) or ``"per-rank"``: global mode matches the global
  batch means (one differentiable all-reduce), so the loss is the single-process loss. Per-rank mode
  averages ‖m_r(real) − m_r(fake)‖² over ranks, which is larger than ‖m(real) − m(fake)‖² by the spread
  of the per-rank mean differences (a noisier, biased estimate), and DDP then averages its gradients.
- batch norm in G, ``"sync"`` (default) or ``"per-rank"``: :func:`convert_sync_batch_norm` replaces
  batch-norm layers with :class:`SyncBatchNorm`, whose batch statistics are those of the global batch
  (combined from per-rank counts, means and centred sums of squares; works on gloo and NCCL, unlike
  ``torch.nn.SyncBatchNorm`` which needs CUDA). Per-rank mode normalises with each rank's B/W rows.

Collectives inside autograd run on the context's second process group (``ctx.ops_group``) so that they
never interleave with DDP's gradient buckets on the default group. Every rank must run the same
forward *and* backward passes through these ops. Code that runs on rank 0 alone (figures, evaluation)
wraps itself in :func:`local_only`, under which every op here acts on the local batch.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
import torch.distributed as dist
from torch import nn

from improved_gan.nn.batch_norm import BatchNormNoGain, MeanOnlyBatchNorm
from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination
from improved_gan.train.distributed import DistContext
from improved_gan.train.gan_step import DiscriminatorOutput, GANObjective

SCOPES = ("global", "per-rank")
BN_MODES = ("sync", "per-rank")
_local_only_depth = 0


@contextlib.contextmanager
def local_only():
    """Inside this block every op of this module works on the local batch only (no collectives), for
    code that runs on one rank (evaluation, figures)."""
    global _local_only_depth
    _local_only_depth += 1
    try:
        yield
    finally:
        _local_only_depth -= 1


def active(ctx: DistContext | None) -> bool:
    return ctx is not None and ctx.distributed and _local_only_depth == 0


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x, sizes, rank, group):
        n_max = max(sizes)
        if x.shape[0] < n_max:
            x = torch.cat([x, x.new_zeros((n_max - x.shape[0],) + x.shape[1:])])
        parts = [torch.empty_like(x) for _ in sizes]
        dist.all_gather(parts, x.contiguous(), group=group)
        fctx.sizes, fctx.rank, fctx.group = sizes, rank, group
        return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(fctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=fctx.group)  # Σ over ranks of ∂L_r/∂(gathered)
        start = sum(fctx.sizes[:fctx.rank])
        return grad[start:start + fctx.sizes[fctx.rank]], None, None, None


class _AllReduceWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x, group):
        y = x.contiguous().clone()
        dist.all_reduce(y, group=group)
        fctx.group = group
        return y

    @staticmethod
    def backward(fctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=fctx.group)
        return grad, None


def all_gather_with_grad(x: torch.Tensor, ctx: DistContext, sizes: tuple[int, ...] | None = None
                         ) -> tuple[torch.Tensor, slice]:
    """(the rows of every rank concatenated in rank order, this rank's slice of them).

    Differentiable: the gradient reaching rank s's ``x`` is the sum over ranks of the gradients arriving
    at its rows (see the module docstring). Ranks may hold different numbers of rows; ``sizes`` (rows per
    rank) saves one small collective when known."""
    if not active(ctx):
        return x, slice(0, x.shape[0])
    if sizes is None:
        n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
        counts = [torch.empty_like(n) for _ in range(ctx.world_size)]
        dist.all_gather(counts, n, group=ctx.ops_group)
        sizes = tuple(int(c) for c in counts)
    start = sum(sizes[:ctx.rank])
    gathered = _GatherWithGrad.apply(x, tuple(sizes), ctx.rank, ctx.ops_group)
    return gathered, slice(start, start + sizes[ctx.rank])


def all_reduce_with_grad(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Σ over ranks of ``x``, differentiable (the backward is an all-reduce of the gradient)."""
    return _AllReduceWithGrad.apply(x, ctx.ops_group) if active(ctx) else x


def global_means(*xs: torch.Tensor, ctx: DistContext) -> list[torch.Tensor]:
    """The mean over the rows of the *global* batch of each (N_r, F) tensor, in one all-reduce."""
    flat = [x.flatten(1) for x in xs]
    if not active(ctx):
        return [x.mean(dim=0) for x in flat]
    ref = flat[0]
    packed = torch.cat([x.sum(dim=0) for x in flat] + [ref.new_tensor([float(x.shape[0]) for x in flat])])
    total = all_reduce_with_grad(packed, ctx)
    sums, counts = total[:-len(flat)], total[-len(flat):]
    out, start = [], 0
    for i, x in enumerate(flat):
        out.append(sums[start:start + x.shape[1]] / counts[i].detach())
        start += x.shape[1]
    return out


def feature_matching_inputs(real_features: torch.Tensor, fake_features: torch.Tensor, ctx: DistContext,
                            scope: str = "global") -> tuple[torch.Tensor, torch.Tensor]:
    """What to pass to :func:`~improved_gan.techniques.feature_matching.feature_matching_loss`.

    ``scope="global"``: one row each, the global batch means (the batch-mean variants ``l2sq`` and
    ``l1`` depend on the features only through these means, so the loss is the single-process loss on
    the global batch). ``"per-rank"``: the local features unchanged."""
    if scope not in SCOPES:
        raise ValueError(f"feature-matching scope must be one of {SCOPES}, got {scope!r}")
    if scope == "per-rank" or not active(ctx):
        return real_features, fake_features
    m_real, m_fake = global_means(real_features.detach(), fake_features, ctx=ctx)
    return m_real.unsqueeze(0), m_fake.unsqueeze(0)


@dataclasses.dataclass
class DistributedObjective(GANObjective):
    """:class:`GANObjective` whose feature matching compares global batch means (``fm_scope="global"``).
    The D loss and the non-saturating G loss are per-row means already exact under DDP averaging."""

    ctx: DistContext | None = None
    fm_scope: str = "global"

    def generator_loss(self, real: DiscriminatorOutput | None, fake: DiscriminatorOutput):
        if (self.techniques.feature_matching and real is not None and self.fm_scope == "global"
                and active(self.ctx)):
            if self.fm_variant == "pairwise":
                raise ValueError("the 'pairwise' feature-matching variant pairs rows of one batch; use "
                                 "--dist-fm per-rank with it")
            f_real, f_fake = feature_matching_inputs(real.features, fake.features, self.ctx, "global")
            real, fake = real._replace(features=f_real), fake._replace(features=f_fake)
        return super().generator_loss(real, fake)


def distributed_objective(base: GANObjective, ctx: DistContext,
                          fm_scope: str = "global") -> DistributedObjective:
    """The same objective (techniques, weights, historical averages) with global feature matching."""
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(GANObjective)}
    return DistributedObjective(**fields, ctx=ctx, fm_scope=fm_scope)


# ------------------------------------------------------------------- global minibatch discrimination


class GlobalBatchHook:
    """Forward hooks that make ``module`` see the global batch: the input is gathered (with gradient)
    before the module runs and the output is cut back to this rank's rows.

    ``equal_sizes=True`` (default) assumes every rank holds as many rows as this one, which the trainers
    guarantee (:meth:`DistContext.local_slice` splits the global batch evenly), and saves one collective
    per call; a mismatch makes gloo raise rather than mix rows. ``False`` exchanges the sizes first."""

    def __init__(self, module: nn.Module, ctx: DistContext, equal_sizes: bool = True):
        self.ctx, self.equal_sizes = ctx, equal_sizes
        self._slices: list[slice | None] = []
        self.handles = [module.register_forward_pre_hook(self._before),
                        module.register_forward_hook(self._after)]

    def _before(self, module, args):
        if not active(self.ctx) or getattr(module, "init_mode", False):
            self._slices.append(None)
            return None
        x = args[0]
        sizes = (x.shape[0],) * self.ctx.world_size if self.equal_sizes else None
        gathered, local = all_gather_with_grad(x, self.ctx, sizes)
        self._slices.append(local)
        return (gathered, *args[1:])

    def _after(self, module, args, output):
        local = self._slices.pop()
        return output if local is None else output[local]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def enable_global_minibatch(model: nn.Module, ctx: DistContext, equal_sizes: bool = True
                            ) -> list[GlobalBatchHook]:
    """Hook every :class:`MinibatchDiscrimination` layer of ``model`` (global mode); returns the hooks
    (remove them to go back to per-rank mode). No hooks on a single process."""
    if not ctx.distributed:
        return []
    return [GlobalBatchHook(m, ctx, equal_sizes) for m in model.modules()
            if isinstance(m, MinibatchDiscrimination)]


# ------------------------------------------------------------------------- synchronised batch norm


def global_batch_stats(x: torch.Tensor, ctx: DistContext | None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean, biased variance, count) per feature/channel over the global batch (and spatial positions),
    differentiable; per-rank count, mean and centred sum of squares are combined exactly
    (Chan et al.'s parallel variance), which is stabler than sums of squares."""
    dims = (0,) + tuple(range(2, x.dim()))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    n = x.numel() / x.shape[1]
    mean = x.mean(dim=dims)
    m2 = (x - mean.view(shape)).pow(2).sum(dim=dims)
    if not active(ctx):
        return mean, m2 / n, n
    packed = torch.cat([x.new_tensor([n]), mean * n, m2]).unsqueeze(0)
    rows, _ = all_gather_with_grad(packed, ctx, sizes=(1,) * ctx.world_size)  # (W, 1 + 2C)
    c = x.shape[1]
    counts, sums, m2s = rows[:, :1].detach(), rows[:, 1:1 + c], rows[:, 1 + c:]
    total = counts.sum()
    g_mean = sums.sum(dim=0) / total
    g_m2 = m2s.sum(dim=0) + (counts * (sums / counts - g_mean).pow(2)).sum(dim=0)
    return g_mean, g_m2 / total, float(total)


class SyncBatchNorm(nn.Module):
    """Batch norm with global-batch statistics in training (running averages in eval), in the three
    forms this project uses: affine (``torch.nn.BatchNorm``), shift only (:class:`BatchNormNoGain`) and
    mean only (:class:`MeanOnlyBatchNorm`). Parameter and buffer names match the layer it replaces, so
    state dicts load either way. On a single process it computes exactly what that layer computes."""

    def __init__(self, num_features: int, ctx: DistContext | None, eps: float = 1e-5, momentum: float = 0.1,
                 gain: bool = True, shift: bool = True, mean_only: bool = False, count_batches: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.mean_only = num_features, eps, momentum, mean_only
        self.ctx = ctx
        self.weight = nn.Parameter(torch.ones(num_features)) if gain else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if shift else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        if not mean_only:
            self.register_buffer("running_var", torch.ones(num_features))
        if count_batches:
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, mean_only={self.mean_only}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}) got input of shape {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.training:
            mean, var, n = global_batch_stats(x, self.ctx)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                if not self.mean_only:
                    self.running_var.lerp_(var.detach() * (n / max(n - 1.0, 1.0)), self.momentum)
                if hasattr(self, "num_batches_tracked"):
                    self.num_batches_tracked += 1
        else:
            mean = self.running_mean
            var = None if self.mean_only else self.running_var
        y = x - mean.view(shape)
        if not self.mean_only:
            y = y * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y


def _sync_copy(layer: nn.Module, ctx: DistContext) -> SyncBatchNorm | None:
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        if layer.momentum is None or not layer.track_running_stats:
            raise ValueError("SyncBatchNorm supports batch norm with a momentum and running statistics")
        new = SyncBatchNorm(layer.num_features, ctx, layer.eps, layer.momentum, gain=layer.affine,
                            shift=layer.affine)
    elif isinstance(layer, BatchNormNoGain):
        new = SyncBatchNorm(layer.num_features, ctx, layer.eps, layer.momentum, gain=False,
                            count_batches=False)
    elif isinstance(layer, MeanOnlyBatchNorm):
        new = SyncBatchNorm(layer.num_features, ctx, 0.0, layer.momentum, gain=False, mean_only=True,
                            count_batches=False)
    else:
        return None
    new.load_state_dict(layer.state_dict())
    new.train(layer.training)
    return new.to(next(layer.buffers()).device)


def convert_sync_batch_norm(module: nn.Module, ctx: DistContext) -> nn.Module:
    """Replace, in place, every batch-norm layer (``torch.nn.BatchNorm1d/2d/3d``, BatchNormNoGain,
    MeanOnlyBatchNorm) under ``module`` by a :class:`SyncBatchNorm` with the same state; returns the
    module (or the replacement, when ``module`` itself is such a layer)."""
    top = _sync_copy(module, ctx)
    if top is not None:
        return top
    for name, child in list(module.named_children()):
        setattr(module, name, convert_sync_batch_norm(child, ctx))
    return module
