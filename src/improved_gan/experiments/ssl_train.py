"""The semi-supervised trainer behind ``improved-gan ssl``: one D step then one G step per iteration.

Per iteration (the authors' ``train_mnist_feature_matching.py``):

- D step: ``loss = L_lab + w · 0.5 · (L_unl + L_gen)`` (:func:`semi_supervised.discriminator_loss`) on a
  labeled batch, an unlabeled batch and a batch G(z) generated without a graph. D has no
  batch-dependent layer (Gaussian noise is per element), so the three batches go through D in **one**
  forward pass of 300 rows (``batched_d``), which gives the same losses as three passes.
- G step: feature matching between D's last hidden layer on G(z) and on a *second* unlabeled batch
  (``fm_batch="separate"``, the authors' ``trainx_unl2``), D's noise on (``d_noise_in_g_step``), D's
  parameters frozen (no parameter gradients, only input gradients flow back into G).
- An exponential moving average of D's trainable parameters (rate 1e-4) after each D step; test error
  is measured for the current D and for the bias-corrected average.

Randomness: the global torch RNG (parameter init, D's Gaussian noise) is seeded with ``seed``; epoch
shuffles and G's noise come from explicit ``torch.Generator`` objects; all of them are in the state dict.

With a distributed context (``ctx``, under torchrun) every rank draws the same epoch plan and noise
batches and trains on its slice of each (``batch_size`` is the global batch), D and G are wrapped in
DistributedDataParallel after their data-dependent init, G's batch norm is synchronised unless
``dist_bn="per-rank"``, feature matching uses global means unless ``dist_fm="per-rank"``, and each rank
draws its own Gaussian-noise stream after the init (docs/distributed.md).
"""

from __future__ import annotations

import copy
import math

import torch

from improved_gan.models.mnist_mlp import MLPDiscriminator, MLPGenerator, init_discriminator, init_generator
from improved_gan.techniques import semi_supervised as ssl_losses
from improved_gan.techniques.feature_matching import feature_matching_loss
from improved_gan.techniques.selection import parse_techniques
from improved_gan.train import distributed
from improved_gan.train import distributed_ops as dops
from improved_gan.train.guards import check_finite
from improved_gan.train.optim import ParamEMA, make_optimizer

discriminator_loss = ssl_losses.discriminator_loss  # module-level so tests can inject a failure
STATS = ("loss_lab", "loss_unl", "loss_gen", "train_err", "d_real_unl", "d_fake")


def lr_at(o, epoch: int) -> float:
    """Learning rate of 0-based ``epoch``: constant, or linear decay to 0 from ``lr_decay_start``."""
    if o.lr_schedule == "linear-decay" and epoch >= o.lr_decay_start:
        return o.lr * max(0.0, (o.epochs - epoch) / max(1, o.epochs - o.lr_decay_start))
    return o.lr


class SSLTrainer:
    """Models, optimizers, EMA, generators and the position in the current epoch of one run."""

    def __init__(self, o, x_train: torch.Tensor, x_lab: torch.Tensor, y_lab: torch.Tensor,
                 init_images: torch.Tensor, device: torch.device, ctx: distributed.DistContext | None = None):
        self.o, self.device = o, device
        self.ctx = ctx = ctx or distributed.DistContext()
        self.techniques = parse_techniques(o.technique, allowed=("feature-matching",))
        self.x_train, self.x_lab, self.y_lab = x_train, x_lab, y_lab  # uint8 (N, 784) on device
        self.iters = o.iters_per_epoch or len(x_train) // o.batch_size
        torch.manual_seed(o.seed)
        self.shuffle_gen = torch.Generator().manual_seed(o.seed + 1_000_003)
        self.z_gen = torch.Generator(device=device).manual_seed(o.seed + 2_000_003)
        self.D = MLPDiscriminator(x_train.shape[1], tuple(o.d_widths), 10, o.input_noise, o.hidden_noise,
                                  o.train_hidden_scale, o.d_v_init_std).to(device)
        init_discriminator(self.D, self._float(init_images))
        self.G = None
        if not o.supervised_only:
            self.G = MLPGenerator(o.z_dim, tuple(o.g_widths), x_train.shape[1], o.g_out).to(device)
            init_generator(self.G, self.sample_z(o.batch_size))
        if ctx.distributed:  # rank 0's initialised weights everywhere, then per-rank noise streams
            distributed.broadcast_module_(self.D, ctx)
            if self.G is not None:
                distributed.broadcast_module_(self.G, ctx)
                if getattr(o, "dist_bn", "sync") == "sync":
                    self.G = dops.convert_sync_batch_norm(self.G, ctx)
            distributed.seed_rank_rng(o.seed, ctx)
        self.d_params = [p for p in self.D.parameters() if p.requires_grad]
        self.opt_d = make_optimizer(self.d_params, o)
        self.opt_g = make_optimizer(self.G.parameters(), o) if self.G is not None else None
        self.ema = ParamEMA(self.d_params, o.ema_rate, compiled=o.compile_update)
        self.D_eval = copy.deepcopy(self.D)
        self.fixed_z = self.sample_z(100) if self.G is not None else None
        self.step = 0  # global iteration count
        self.epoch = 0  # epochs completed
        self.pos = 0  # iteration within the current epoch
        self.plan: dict[str, torch.Tensor] | None = None
        self.acc = torch.zeros(len(STATS), dtype=torch.float64)
        self.D_train = distributed.wrap_ddp(self.D, ctx)
        self.G_train = distributed.wrap_ddp(self.G, ctx) if self.G is not None else None

    # ---------------------------------------------------------------- data
    @staticmethod
    def _float(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32).div_(255.0)

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.rand(n, self.o.z_dim, generator=self.z_gen, device=self.device)

    def plan_epoch(self) -> None:
        """The epoch's batches: the labeled set tiled (each tile reshuffled) and two permutations of the
        unlabeled set, all drawn from ``shuffle_gen``."""
        n_lab, n, need = len(self.x_lab), len(self.x_train), self.iters * self.o.batch_size
        tiles = max(n // n_lab, math.ceil(need / n_lab))
        lab = torch.cat([torch.randperm(n_lab, generator=self.shuffle_gen) for _ in range(tiles)])
        unl = torch.cat([torch.randperm(n, generator=self.shuffle_gen) for _ in range(math.ceil(need / n))])
        unl2 = torch.cat([torch.randperm(n, generator=self.shuffle_gen) for _ in range(math.ceil(need / n))])
        self.plan = {"lab": lab[:need], "unl": unl[:need], "unl2": unl2[:need]}
        self.pos = 0
        self.acc.zero_()
        for group in self.opt_d.param_groups + (self.opt_g.param_groups if self.opt_g else []):
            group["lr"] = lr_at(self.o, self.epoch)

    def _batch(self, key: str, source: torch.Tensor) -> torch.Tensor:
        """This rank's rows of the current global batch of ``key``."""
        b = self.o.batch_size
        idx = self.ctx.shard(self.plan[key][self.pos * b:(self.pos + 1) * b]).to(self.device)
        return source[idx]

    # ---------------------------------------------------------------- one iteration
    def train_step(self, checkpoint: str | None = None) -> None:
        o, D, G, D_train, G_train, shard = self.o, self.D, self.G, self.D_train, self.G_train, self.ctx.shard
        b = o.batch_size // self.ctx.world_size  # rows of this rank
        x_lab = self._float(self._batch("lab", self.x_lab))
        y_lab = self._batch("lab", self.y_lab)
        stats = torch.zeros(len(STATS), dtype=torch.float64)

        # D step
        D.train()
        if G is None:
            logits_lab = D_train(x_lab).logits
            loss_lab = ssl_losses.labeled_loss(logits_lab, y_lab)
            losses = {"loss": loss_lab, "loss_lab": loss_lab, "loss_unl": torch.zeros(())}
        else:
            x_unl = self._float(self._batch("unl", self.x_train))
            with torch.no_grad():
                fake = G_train(shard(self.sample_z(o.batch_size)))
            if o.batched_d:
                logits_lab, logits_unl, logits_fake = D_train(torch.cat([x_lab, x_unl, fake])).logits.split(b)
            else:
                logits_lab, logits_unl, logits_fake = (D_train(x_lab).logits, D_train(x_unl).logits,
                                                       D_train(fake).logits)
            losses = discriminator_loss(logits_lab, y_lab, logits_unl, logits_fake, o.unlabeled_weight)
        check_finite(self.step + 1, checkpoint, d_loss=losses["loss"])
        self.opt_d.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt_d.step()
        self.ema.update(self.d_params)
        with torch.no_grad():
            stats[0] = float(losses["loss_lab"])
            stats[1] = float(losses["loss_unl"])
            stats[3] = float((logits_lab.argmax(1) != y_lab).float().mean())
            if G is not None:
                stats[4] = float(ssl_losses.prob_real(logits_unl).mean())
                stats[5] = float(ssl_losses.prob_real(logits_fake).mean())

        # G step
        if G is not None:
            D.requires_grad_(False)
            D.train(o.d_noise_in_g_step)
            fake = G_train(shard(self.sample_z(o.batch_size)))
            if self.techniques.feature_matching:
                real = x_unl if o.fm_batch == "same" else self._float(self._batch("unl2", self.x_train))
                with torch.no_grad():
                    weights = D.hidden_weights()  # computed once for both passes (D is frozen)
                    f_real = D.features(real, weights)
                f_fake = D.features(fake, weights)
                f_real, f_fake = dops.feature_matching_inputs(f_real, f_fake, self.ctx,
                                                              getattr(o, "dist_fm", "global"))
                loss_g = feature_matching_loss(f_real, f_fake, variant=o.fm_variant, reduction=o.fm_reduction)
            else:  # non-saturating: G maximises log D(G(z)), i.e. minimises −log D(G(z))
                loss_g = ssl_losses.unlabeled_loss(D(fake).logits)
            check_finite(self.step + 1, checkpoint, g_loss=loss_g)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            D.requires_grad_(True)
            D.train()
            stats[2] = float(loss_g.detach())
        self.acc += stats
        self.step += 1
        self.pos += 1

    def epoch_stats(self) -> dict[str, float]:
        """The epoch's mean statistics (averaged over ranks: every rank must call this)."""
        n = max(1, self.pos)
        return distributed.reduce_mean({k: float(v) / n for k, v in zip(STATS, self.acc, strict=True)},
                                       self.ctx)

    # ---------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict(self, x: torch.Tensor, ema: bool, batch: int = 1000) -> torch.Tensor:
        model = self.D
        if ema:
            self.D_eval.load_state_dict(self.D.state_dict())
            for p, a in zip([p for p in self.D_eval.parameters() if p.requires_grad], self.ema.averaged(),
                            strict=True):
                p.copy_(a)
            model = self.D_eval
        was = model.training
        model.eval()
        preds = torch.cat([model(self._float(x[i:i + batch])).logits.argmax(1)
                           for i in range(0, len(x), batch)])
        model.train(was)
        return preds

    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        """G on the fixed noise (batch-norm statistics of that batch, as the authors always use; on one
        rank only under torchrun, hence local statistics)."""
        with dops.local_only():
            return self.G(self.fixed_z).view(-1, 1, 28, 28).cpu()

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "D": self.D.state_dict(), "G": self.G.state_dict() if self.G is not None else None,
            "opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict() if self.opt_g else None,
            "ema": self.ema.state_dict(), "step": self.step, "epoch": self.epoch, "pos": self.pos,
            "plan": self.plan, "acc": self.acc.clone(), "fixed_z": self.fixed_z,
        }  # the RNG states (global, shuffle_gen, z_gen) are saved by the caller with capture_rng_state

    def load_state_dict(self, s: dict) -> None:
        self.D.load_state_dict(s["D"])
        self.opt_d.load_state_dict(s["opt_d"])
        if self.G is not None:
            self.G.load_state_dict(s["G"])
            self.opt_g.load_state_dict(s["opt_g"])
        self.ema.load_state_dict(s["ema"])
        self.step, self.epoch, self.pos = int(s["step"]), int(s["epoch"]), int(s["pos"])
        self.plan = s["plan"]
        self.fixed_z = s["fixed_z"].to(self.device) if s["fixed_z"] is not None else None
        self.acc = s["acc"].clone()
