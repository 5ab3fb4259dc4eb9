"""The semi-supervised recipe's parameter updates: the authors' Adam and the EMA of D's parameters.

Both are element-wise passes over every parameter after each step. In eager mode each formula is a few
``torch._foreach_*`` calls, i.e. several passes over memory; with ``compiled=True`` the same formula is
written once per parameter and compiled with ``torch.compile`` (inductor fuses it into one loop over
the parameter: read p, g, m, v once, write p, m, v once). Needs a working ``torch.compile`` backend (a
C++ compiler on CPU); costs a few seconds of compilation at the first step.
"""

from __future__ import annotations

import functools
import math

import torch


def _adam_eps_in_sqrt_update(params, grads, exp_avg, exp_avg_sq, step_size, eps_c2, one_minus_b1, b2):
    """One fused pass per parameter: m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g²;
    p ← p + step_size · m / sqrt(v + eps·c2). The coefficients are 0-d tensors (no recompilation when
    the learning rate or the step count changes)."""
    for p, g, m, v in zip(params, grads, exp_avg, exp_avg_sq, strict=True):
        m.lerp_(g, one_minus_b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        p.add_(step_size * m / (v + eps_c2).sqrt())


def _ema_update(avg, params, rate):
    for a, p in zip(avg, params, strict=True):
        a.lerp_(p, rate)


@functools.cache
def _compiled(fn):
    return torch.compile(fn, dynamic=False)


class AdamEpsInSqrt(torch.optim.Optimizer):
    """Adam as in the authors' ``nn.adam_updates``: ``p -= lr · m̂ / sqrt(v̂ + eps)`` (eps *inside* the
    square root, so it acts like an eps of 1e-4 outside it for eps=1e-8).

    ``compiled=True`` runs the same update as one fused pass per parameter (module docstring)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, compiled: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        self.compiled = compiled

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            b1, b2 = group["betas"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
            t = self.state[params[0]]["step"]
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            # sqrt(v/c2 + eps) = sqrt(v + eps·c2)/sqrt(c2): one pass fewer over the parameters
            c1, c2 = 1 - b1 ** t, 1 - b2 ** t
            step_size = -group["lr"] * math.sqrt(c2) / c1
            if self.compiled:
                dev = params[0].device
                _compiled(_adam_eps_in_sqrt_update)(
                    params, grads, m, v, torch.tensor(step_size, device=dev),
                    torch.tensor(group["eps"] * c2, device=dev), torch.tensor(1 - b1, device=dev), b2)
                continue
            torch._foreach_lerp_(m, grads, 1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
            denom = torch._foreach_add(v, group["eps"] * c2)
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, m, denom, value=step_size)


class ParamEMA:
    """a ← a + rate·(p − a) from a = 0 after every update; :meth:`averaged` divides by 1 − (1−rate)^t
    (bias correction) so the average is meaningful from the first epoch. ``compiled=True``: one fused
    pass per parameter (module docstring)."""

    def __init__(self, params, rate: float, compiled: bool = False):
        self.rate = float(rate)
        self.avg = [torch.zeros_like(p, memory_format=torch.preserve_format).detach() for p in params]
        self.count = 0
        self.compiled = compiled

    @torch.no_grad()
    def update(self, params) -> None:
        self.count += 1
        params = [p.detach() for p in params]
        if self.compiled:
            _compiled(_ema_update)(self.avg, params, torch.tensor(self.rate, device=params[0].device))
        else:
            torch._foreach_lerp_(self.avg, params, self.rate)

    @torch.no_grad()
    def averaged(self) -> list[torch.Tensor]:
        c = 1.0 - (1.0 - self.rate) ** self.count if self.count else 1.0
        return [a / c for a in self.avg]

    def state_dict(self) -> dict:
        return {"avg": [a.clone() for a in self.avg], "count": self.count, "rate": self.rate}

    def load_state_dict(self, state: dict) -> None:
        for a, s in zip(self.avg, state["avg"], strict=True):
            a.copy_(s)
        self.count, self.rate = int(state["count"]), float(state["rate"])


def make_optimizer(params, o):
    """The optimizer the options ask for: the authors' Adam (``adam_eps_in_sqrt``) or torch's."""
    if o.adam_eps_in_sqrt:
        return AdamEpsInSqrt(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.adam_eps,
                             compiled=o.compile_update)
    return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.adam_eps,
                            fused=True if o.compile_update else None)
