"""Historical averaging, Section 3.3 of Salimans et al. 2016 (arXiv:1606.03498).

Each player's cost gets the term

    weight · Σ_params ‖θ − (1/t) Σ_{i=1}^{t} θ[i]‖²

where θ[i] is the value of the parameters after the i-th update. The running mean is kept in
preallocated buffers and updated in place after every optimizer step with
``avg.lerp_(θ, 1/t)`` — O(parameters) work, no copies of the parameter list per step.

Choice: before the first :meth:`HistoricalAverage.update` there is no history and :meth:`penalty`
returns 0 (a zero tensor on the parameters' device). The average starts from the parameters after
the first optimizer step, as in the formula (θ[1] is the first *updated* value). This follows the
paper's formula; the authors' released code does not implement historical averaging.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class HistoricalAverage:
    """Penalty ``weight · Σ ‖θ − mean_{i≤t} θ_i‖²`` over ``parameters`` (Section 3.3).

    Call :meth:`update` after each optimizer step; add :meth:`penalty` to the loss. The running mean
    and the count travel with :meth:`state_dict` so checkpoints carry them.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], weight: float):
        self.params = [p for p in parameters]
        if not self.params:
            raise ValueError("HistoricalAverage needs at least one parameter")
        if weight < 0:
            raise ValueError(f"historical-averaging weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.count = 0
        self.averages = [torch.zeros_like(p).detach() for p in self.params]

    def penalty(self) -> torch.Tensor:
        """weight · Σ ‖θ − θ̄‖² (differentiable in θ; 0 before the first update)."""
        if self.count == 0 or self.weight == 0.0:
            return self.params[0].new_zeros(())
        total = self.params[0].new_zeros(())
        for p, avg in zip(self.params, self.averages, strict=True):
            total = total + (p - avg).pow(2).sum()
        return self.weight * total

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the running mean: θ̄_t = θ̄_{t−1} + (θ_t − θ̄_{t−1}) / t."""
        self.count += 1
        w = 1.0 / self.count
        for p, avg in zip(self.params, self.averages, strict=True):
            avg.lerp_(p.detach(), w)

    def state_dict(self) -> dict:
        return {"count": self.count, "weight": self.weight,
                "averages": [a.detach().clone() for a in self.averages]}

    def load_state_dict(self, state: dict) -> None:
        averages = state["averages"]
        if len(averages) != len(self.averages):
            raise ValueError(f"historical average holds {len(averages)} tensors, "
                             f"expected {len(self.averages)}")
        with torch.no_grad():
            for dst, src in zip(self.averages, averages, strict=True):
                if dst.shape != src.shape:
                    raise ValueError(f"historical average shape {tuple(src.shape)} != {tuple(dst.shape)}")
                dst.copy_(src)
        self.count = int(state["count"])  # the weight comes from the configuration, not the checkpoint
