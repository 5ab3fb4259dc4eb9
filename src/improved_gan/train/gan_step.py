"""The GAN game as two explicit phases, with the paper's techniques as switches.

:class:`GANObjective` turns discriminator outputs into losses (pure tensors in, tensors out; it never
steps an optimizer). :func:`gan_step` is one plain training iteration shared by the toy, mode-collapse
and image trainers: one D step, then one G step, each with the other player frozen
(``requires_grad_(False)``), D applied to the real batch and to the generated batch *separately* so
that batch-dependent layers (minibatch discrimination, Section 3.2) never mix real and fake samples.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from improved_gan.techniques.feature_matching import feature_matching_loss
from improved_gan.techniques.historical_averaging import HistoricalAverage
from improved_gan.techniques.label_smoothing import discriminator_bce, generator_bce
from improved_gan.techniques.selection import TechniqueSet
from improved_gan.techniques.virtual_batch_norm import has_virtual_batch_norm, reference_pass


class DiscriminatorOutput(NamedTuple):
    """What every discriminator of this project returns."""

    logits: torch.Tensor  # (N,) real-vs-fake logit
    features: torch.Tensor  # (N, F) the intermediate layer that feature matching compares
    # (N, K) class logits of a K+1 discriminator (Section 5; fake logit fixed at 0, so ``logits`` is
    # their log-sum-exp); None for a plain real-vs-fake discriminator
    class_logits: torch.Tensor | None = None


@dataclasses.dataclass
class GANObjective:
    """Losses of the standard GAN plus the paper's techniques.

    - D: binary cross-entropy, real target ``smoothing`` (one-sided label smoothing, Section 3.4) when
      that technique is on, else 1; fake target always 0.
    - G: feature matching ‖E f(x) − E f(G(z))‖² (Section 3.1) when on, else the non-saturating
      −log D(G(z)).
    - Historical averaging (Section 3.3): λ‖θ − mean of past θ‖² added to each player's loss.
    """

    techniques: TechniqueSet
    smoothing: float = 0.9
    fm_variant: str = "l2sq"
    fm_reduction: str = "mean"
    ha_d: HistoricalAverage | None = None
    ha_g: HistoricalAverage | None = None

    @classmethod
    def build(cls, techniques: TechniqueSet, G: nn.Module, D: nn.Module, *, smoothing: float = 0.9,
              ha_weight: float = 1e-3, fm_variant: str = "l2sq", fm_reduction: str = "mean") -> GANObjective:
        ha_d = ha_g = None
        if techniques.historical_averaging:
            ha_d = HistoricalAverage(D.parameters(), weight=ha_weight)
            ha_g = HistoricalAverage(G.parameters(), weight=ha_weight)
        return cls(techniques, smoothing, fm_variant, fm_reduction, ha_d, ha_g)

    @property
    def real_target(self) -> float:
        return self.smoothing if self.techniques.label_smoothing else 1.0

    def discriminator_loss(self, real: DiscriminatorOutput, fake: DiscriminatorOutput,
                           real_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """With ``real_labels`` (the "labels" variant of the sample-quality study), D is a K+1
        discriminator and its class cross-entropy on the real batch is added (``d_labeled_loss``)."""
        loss = discriminator_bce(real.logits, fake.logits, real_target=self.real_target)
        out = {"d_loss": loss}
        if real_labels is not None:
            if real.class_logits is None:
                raise ValueError("real_labels given but D returns no class_logits (not a K+1 discriminator)")
            out["d_labeled_loss"] = F.cross_entropy(real.class_logits, real_labels)
            loss = loss + out["d_labeled_loss"]
        if self.ha_d is not None:
            out["d_ha_penalty"] = self.ha_d.penalty()
            loss = loss + out["d_ha_penalty"]
        out["loss"] = loss
        return out

    def generator_loss(self, real: DiscriminatorOutput | None, fake: DiscriminatorOutput) -> dict[str, torch.Tensor]:
        if self.techniques.feature_matching:
            if real is None:
                raise ValueError("feature matching needs D's features on a real batch")
            loss = feature_matching_loss(real.features, fake.features, variant=self.fm_variant,
                                         reduction=self.fm_reduction)
        else:
            loss = generator_bce(fake.logits)
        out = {"g_loss": loss}
        if self.ha_g is not None:
            out["g_ha_penalty"] = self.ha_g.penalty()
            loss = loss + out["g_ha_penalty"]
        out["loss"] = loss
        return out

    def state_dict(self) -> dict:
        return {"ha_d": self.ha_d.state_dict() if self.ha_d else None,
                "ha_g": self.ha_g.state_dict() if self.ha_g else None}

    def load_state_dict(self, state: dict) -> None:
        if self.ha_d is not None:
            self.ha_d.load_state_dict(state["ha_d"])
        if self.ha_g is not None:
            self.ha_g.load_state_dict(state["ha_g"])


def generate(G: nn.Module, noise: torch.Tensor, reference_noise: torch.Tensor | None = None) -> torch.Tensor:
    """G(noise); with virtual batch norm in G, the fixed reference batch is forwarded first (Section 3.5)."""
    if reference_noise is not None and has_virtual_batch_norm(G):
        reference_pass(G, reference_noise)
    return G(noise)


def gan_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             objective: GANObjective, real: torch.Tensor, noise_d: torch.Tensor, noise_g: torch.Tensor,
             real_g: torch.Tensor | None = None, reference_noise: torch.Tensor | None = None,
             real_labels: torch.Tensor | None = None) -> dict[str, float]:
    """One D step then one G step. Returns the scalar losses and mean D outputs for logging.

    ``real_labels`` (optional) are the class labels of ``real`` for a K+1 discriminator (the "labels"
    variant); they are passed to ``objective.discriminator_loss`` only when given.

    ``real_g`` is the real batch feature matching compares with in the G step (defaults to ``real``);
    D's features on it are computed with D's updated parameters and not back-propagated into.
    """
    # D phase: G frozen, fake batch generated without a graph.
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        fake = generate(G, noise_d, reference_noise)
    real_out = D(real)
    fake_out = D(fake)
    if real_labels is None:
        d = objective.discriminator_loss(real_out, fake_out)
    else:
        d = objective.discriminator_loss(real_out, fake_out, real_labels=real_labels)
    opt_d.zero_grad(set_to_none=True)
    d["loss"].backward()
    opt_d.step()
    if objective.ha_d is not None:
        objective.ha_d.update()

    # G phase: D frozen (no parameter gradients for D), gradients flow through D into G.
    G.requires_grad_(True)
    D.requires_grad_(False)
    fake = generate(G, noise_g, reference_noise)
    fake_out_g = D(fake)
    real_out_g = None
    if objective.techniques.feature_matching:
        with torch.no_grad():
            real_out_g = D(real if real_g is None else real_g)
    g = objective.generator_loss(real_out_g, fake_out_g)
    opt_g.zero_grad(set_to_none=True)
    g["loss"].backward()
    opt_g.step()
    if objective.ha_g is not None:
        objective.ha_g.update()
    D.requires_grad_(True)

    stats = {k: float(v.detach()) for k, v in {**d, **g}.items() if k != "loss"}
    stats["d_real"] = float(torch.sigmoid(real_out.logits.detach()).mean())
    stats["d_fake"] = float(torch.sigmoid(fake_out.logits.detach()).mean())
    return stats
