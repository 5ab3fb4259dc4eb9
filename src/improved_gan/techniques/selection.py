"""Which of the paper's techniques a run uses: ``--technique feature-matching,label-smoothing``.

A technique is switched on by configuration, never by editing a model file: the parsed
:class:`TechniqueSet` tells the model builders which layers to insert (minibatch discrimination in D,
virtual batch norm in G) and tells :class:`improved_gan.train.gan_step.GANObjective` which losses to use.
"""

from __future__ import annotations

import dataclasses

from improved_gan.errors import ConfigError

# CLI name -> TechniqueSet field
TECHNIQUES = {
    "feature-matching": "feature_matching",  # Section 3.1
    "minibatch-discrimination": "minibatch_discrimination",  # Section 3.2
    "historical-averaging": "historical_averaging",  # Section 3.3
    "label-smoothing": "label_smoothing",  # Section 3.4
    "virtual-batch-norm": "virtual_batch_norm",  # Section 3.5
}
BASELINE = "baseline"


@dataclasses.dataclass(frozen=True)
class TechniqueSet:
    feature_matching: bool = False
    minibatch_discrimination: bool = False
    historical_averaging: bool = False
    label_smoothing: bool = False
    virtual_batch_norm: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, attr in TECHNIQUES.items() if getattr(self, attr))

    @property
    def label(self) -> str:
        """Stable human-readable name: ``baseline`` or the technique names joined by ``+``."""
        return "+".join(self.names) or BASELINE


def parse_techniques(spec: str, allowed: tuple[str, ...] | None = None) -> TechniqueSet:
    """Parse a comma-separated list of technique names (``baseline`` alone means none)."""
    allowed = tuple(allowed) if allowed is not None else tuple(TECHNIQUES)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("--technique is empty; use 'baseline' or a comma-separated list of: "
                          + ", ".join(allowed))
    if names == [BASELINE]:
        return TechniqueSet()
    flags = {}
    for name in names:
        if name == BASELINE:
            raise ConfigError("'baseline' means no technique and cannot be combined with others")
        if name not in allowed:
            raise ConfigError(f"unknown technique '{name}'; choose 'baseline' or a comma-separated list of: "
                              + ", ".join(allowed))
        flags[TECHNIQUES[name]] = True
    return TechniqueSet(**flags)


def split_variants(spec: str, allowed: tuple[str, ...] | None = None) -> list[TechniqueSet]:
    """``baseline;feature-matching;minibatch-discrimination,label-smoothing`` -> one set per variant."""
    return [parse_techniques(part, allowed) for part in spec.split(";") if part.strip()]
