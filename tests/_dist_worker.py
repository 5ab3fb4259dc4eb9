"""One rank of the distributed checks (started by tests/_dist.py with torchrun's variables).

``python tests/_dist_worker.py OUT_DIR`` runs every check in float64 on this rank and saves
``OUT_DIR/rank{r}.pt``: the distributed results next to single-process references on the global batch
computed by the same rank. The assertions live in tests/test_distributed_ops.py."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
from torch import nn

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

from improved_gan.nn.batch_norm import BatchNormNoGain, MeanOnlyBatchNorm  # noqa: E402
from improved_gan.techniques.feature_matching import feature_matching_loss  # noqa: E402
from improved_gan.techniques.minibatch_discrimination import MinibatchDiscrimination  # noqa: E402
from improved_gan.train import distributed as dd  # noqa: E402
from improved_gan.train import distributed_ops as ops  # noqa: E402


def grads(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in module.parameters()]


class _NaiveGather(torch.autograd.Function):
    """The wrong gather: backward returns only this rank's slice of this rank's gradient."""

    @staticmethod
    def forward(fctx, x, ctx):
        parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
        torch.distributed.all_gather(parts, x.contiguous())
        fctx.rank, fctx.n = ctx.rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(fctx, grad):
        return grad[fctx.rank * fctx.n:(fctx.rank + 1) * fctx.n], None


def check_gather(ctx):
    sizes = (3, 5)  # unequal rows per rank
    X = torch.randn(sum(sizes), 4, generator=torch.Generator().manual_seed(0))
    bounds = [slice(0, 3), slice(3, 8)]
    a = [torch.randn(4, generator=torch.Generator().manual_seed(10 + r)) for r in range(ctx.world_size)]

    def loss_r(gathered, r):  # depends on every row, differently on each rank
        return (gathered.pow(2) @ a[r]).sin().sum() + gathered[bounds[r]].pow(3).sum()

    x = X[bounds[ctx.rank]].clone().requires_grad_(True)
    gathered, local = ops.all_gather_with_grad(x, ctx)
    loss_r(gathered, ctx.rank).backward()
    Xr = X.clone().requires_grad_(True)
    sum(loss_r(Xr, r) for r in range(ctx.world_size)).backward()
    out = {"forward": gathered.detach(), "X": X, "local": (local.start, local.stop), "grad": x.grad,
           "ref": Xr.grad[bounds[ctx.rank]]}
    # symmetric loss on equal slices: every rank uses the whole gathered tensor the same way
    Y = X[:8].clone()
    y = ctx.shard(Y).clone().requires_grad_(True)
    g, _ = ops.all_gather_with_grad(y, ctx)
    (0.5 * g.pow(2).sum()).backward()
    y2 = ctx.shard(Y).clone().requires_grad_(True)
    (0.5 * _NaiveGather.apply(y2, ctx).pow(2).sum()).backward()
    out.update(sym_grad=y.grad, sym_naive=y2.grad, sym_ref=ctx.world_size * ctx.shard(Y))
    return out


def _mbd_model(weight_norm: bool) -> nn.Module:
    torch.manual_seed(1)
    mbd = MinibatchDiscrimination(6, num_kernels=4, kernel_dim=3, weight_norm=weight_norm)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), mbd, nn.Linear(mbd.out_features, 1))


def check_mbd(ctx):
    X = torch.randn(8, 3, generator=torch.Generator().manual_seed(2))
    out = {}
    for wn in (False, True):
        base = _mbd_model(wn)
        m = copy.deepcopy(base)
        hooks = ops.enable_global_minibatch(m, ctx)
        ddp = dd.wrap_ddp(m, ctx)
        x = ctx.shard(X).clone().requires_grad_(True)
        y = ddp(x)
        nn.functional.softplus(y).mean().backward()
        ref = copy.deepcopy(base)
        xr = X.clone().requires_grad_(True)
        yr = ref(xr)
        nn.functional.softplus(yr).mean().backward()
        per = copy.deepcopy(base)
        ddp_per = dd.wrap_ddp(per, ctx)
        nn.functional.softplus(ddp_per(ctx.shard(X))).mean().backward()
        out[wn] = {"hooks": len(hooks), "y": y.detach(), "y_ref": ctx.shard(yr.detach()), "grads": grads(m),
                   "grads_ref": grads(ref), "xgrad": x.grad, "xgrad_ref": ctx.world_size * ctx.shard(xr.grad),
                   "grads_per_rank": grads(per)}
    return out


def check_fm(ctx):
    R = torch.randn(8, 5, generator=torch.Generator().manual_seed(3))
    Z = torch.randn(8, 2, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    base = nn.Linear(2, 5)
    out = {}
    for variant, reduction in (("l2sq", "mean"), ("l1", "sum")):
        res = {}
        for scope in ("global", "per-rank"):
            g = copy.deepcopy(base)
            ddp = dd.wrap_ddp(g, ctx)
            fake = torch.tanh(ddp(ctx.shard(Z)))
            f_real, f_fake = ops.feature_matching_inputs(ctx.shard(R), fake, ctx, scope)
            loss = feature_matching_loss(f_real, f_fake, variant, reduction)
            loss.backward()
            res[scope] = {"loss": float(loss.detach()), "grads": grads(g)}
        ref = copy.deepcopy(base)
        loss = feature_matching_loss(R, torch.tanh(ref(Z)), variant, reduction)
        loss.backward()
        res["ref"] = {"loss": float(loss.detach()), "grads": grads(ref)}
        out[variant] = res
    return out


def _bn_models():
    torch.manual_seed(6)
    return {
        "bn1d": (nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 1)), (8, 3)),
        "bn2d": (nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Tanh(), nn.Flatten(),
                               nn.Linear(48, 1)), (8, 2, 4, 4)),
        "nogain": (nn.Sequential(nn.Linear(3, 6), BatchNormNoGain(6), nn.Tanh(), nn.Linear(6, 1)), (8, 3)),
        "meanonly": (nn.Sequential(nn.Linear(3, 6), MeanOnlyBatchNorm(6), nn.Tanh(), nn.Linear(6, 1)),
                     (8, 3)),
    }


def check_bn(ctx):
    out = {}
    for name, (base, shape) in _bn_models().items():
        X = torch.randn(*shape, generator=torch.Generator().manual_seed(7)) * 2 + 1
        res = {}
        for mode in ("sync", "per-rank", "single-converted"):
            m = copy.deepcopy(base)
            if mode == "sync":
                m = ops.convert_sync_batch_norm(m, ctx)
            elif mode == "single-converted":
                m = ops.convert_sync_batch_norm(m, dd.DistContext())
            x = X if mode == "single-converted" else ctx.shard(X)
            net = m if mode == "single-converted" else dd.wrap_ddp(m, ctx)
            for _ in range(2):  # two steps: running statistics and the second forward use updated buffers
                m.zero_grad()
                y = net(x)
                nn.functional.softplus(y).mean().backward()
            m.eval()
            res[mode] = {"y": y.detach(), "grads": grads(m), "buffers": [b.clone() for b in m.buffers()],
                         "eval": m(X[:3]).detach(), "types": sorted({type(c).__name__ for c in m.modules()})}
        ref = copy.deepcopy(base)
        for _ in range(2):
            ref.zero_grad()
            y = ref(X)
            nn.functional.softplus(y).mean().backward()
        ref.eval()
        res["ref"] = {"y": ctx.shard(y.detach()), "y_full": y.detach(), "grads": grads(ref),
                      "buffers": [b.clone() for b in ref.buffers()], "eval": ref(X[:3]).detach()}
        out[name] = res
    return out


# (techniques, dist_mbd, dist_fm, pretrain_steps, optimizer). VBN makes the gradient of the bias before
# it exactly 0 in exact arithmetic; Adam's first steps divide that float noise by its own size (an update
# of ±lr either way), so the VBN case uses SGD, whose update is proportional to the gradient.
TOY_CASES = {
    "baseline": ("baseline", "global", "global", 2, "adam"),
    "ls+ha+vbn": ("label-smoothing,historical-averaging,virtual-batch-norm", "global", "global", 0, "sgd"),
    "mbd-global": ("minibatch-discrimination", "global", "global", 0, "adam"),
    "fm-global": ("feature-matching", "global", "global", 0, "adam"),
    "mbd-per-rank": ("minibatch-discrimination", "per-rank", "global", 0, "adam"),
    "fm-per-rank": ("feature-matching", "global", "per-rank", 0, "adam"),
}


def check_toy(ctx):
    from improved_gan.data.toy import parse_target
    from improved_gan.experiments import toy
    from improved_gan.techniques.selection import parse_techniques
    from improved_gan.train.rundir import RunDir

    out = {}
    torch.set_default_dtype(torch.float32)  # the toy trainer's figures use float32 grids
    for case, (spec, mbd, fm, pretrain, optimizer) in TOY_CASES.items():
        opts = toy.Options(steps=4, batch_size=16, log_every=2, frames=2, eval_samples=100, technique=spec,
                           dist_mbd=mbd, dist_fm=fm, pretrain_steps=pretrain, seed=11, optimizer=optimizer,
                           lr=0.05 if optimizer == "sgd" else 2e-3)
        target = parse_target(opts.target)
        run = RunDir("/nonexistent", enabled=False)
        res = toy.train_variant(opts, target, parse_techniques(spec), run, ctx)
        flat = {k: torch.cat([p.detach().flatten() for p in res.models[k].parameters()]) for k in ("G", "D")}
        entry = {"params": flat, "history": res.history}
        ha = res.models["objective"].ha_d
        if ha is not None:
            entry["ha"] = torch.cat([a.flatten() for a in ha.averages]), ha.count
        if ctx.is_main:  # one process on the global batch
            single = toy.train_variant(opts, target, parse_techniques(spec), run, None)
            entry["ref"] = {k: torch.cat([p.detach().flatten() for p in single.models[k].parameters()])
                            for k in ("G", "D")}
            entry["ref_history"] = single.history
        out[case] = entry
    torch.set_default_dtype(torch.float64)
    return out


def check_misc(ctx):
    means = dd.reduce_mean({"a": float(ctx.rank), "b": 2.0 * ctx.rank + 1}, ctx)
    t = dd.broadcast_tensor(torch.full((3,), float(ctx.rank + 5)), ctx)
    obj = dd.broadcast_object({"path": f"from-rank-{ctx.rank}"}, ctx)
    sampler = dd.ShardedSampler(20, 8, ctx, seed=3)
    sampler.set_epoch(2)
    return {"means": means, "bcast": t, "obj": obj, "shards": list(sampler), "len": len(sampler),
            "perm": torch.randperm(20, generator=torch.Generator().manual_seed(5))}


def main() -> None:
    out_dir = Path(sys.argv[1])
    with dd.session("cpu", timeout_s=90) as ctx:
        results = {"rank": ctx.rank, "world_size": ctx.world_size}
        for name, fn in (("gather", check_gather), ("mbd", check_mbd), ("fm", check_fm), ("bn", check_bn),
                         ("misc", check_misc), ("toy", check_toy)):
            results[name] = fn(ctx)
        torch.save(results, out_dir / f"rank{ctx.rank}.pt")
        dd.barrier(ctx)


if __name__ == "__main__":
    main()
