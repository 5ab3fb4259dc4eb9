"""``improved-gan COMMAND [options]``: parse the options of one command and call its experiment.

Each command lives in ``improved_gan.experiments.<module>`` and exposes ``Options`` (a dataclass of its
options) and ``run(options) -> pathlib.Path`` (the run directory it wrote). Every option can also
come from ``--config FILE`` (TOML or YAML); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from improved_gan import __version__
from improved_gan.config import add_arguments, resolve
from improved_gan.errors import ConfigError, ImprovedGanError

# command name -> (module, one-line help)
COMMANDS = {
    "toy": ("toy", "1D study: an MLP generator learns a normal distribution or a 1D mixture"),
    "modes": ("modes", "mode-collapse benchmark on 2D mixtures (ring8, grid25)"),
    "ablation": ("ablation", "every technique alone and together on a 2D mixture, over seeds"),
    "ssl": ("ssl", "semi-supervised MNIST / Fashion-MNIST with the K+1 discriminator"),
    "classifier": ("classifier", "train the dataset classifier behind the sample-quality scores"),
    "quality": ("quality", "convolutional GAN on MNIST / Fashion-MNIST with sample-quality scores"),
    "ablation-quality": ("ablation_quality", "the paper's sample-quality ablation table"),
}

# Commands that launch many runs (or train a shared cache) and are not distributed: under torchrun every
# rank would repeat the whole job, so they refuse to start there.
SINGLE_PROCESS = frozenset({"ablation", "ablation-quality", "classifier"})


def _load(command: str):
    module, _ = COMMANDS[command]
    return importlib.import_module(f"improved_gan.experiments.{module}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="improved-gan",
        description="Improved Techniques for Training GANs (Salimans et al. 2016), faithful and measured.",
    )
    parser.add_argument("--version", action="version", version=f"improved-gan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        try:
            module = _load(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("improved_gan.experiments"):
                continue  # command not built in this version
            raise
        p = sub.add_parser(name, help=help_, description=(module.__doc__ or help_).strip().splitlines()[0])
        p.add_argument("--config", metavar="FILE", help="read options from a TOML or YAML file")
        add_arguments(p, module.Options)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    if command is None:
        parser.print_help()
        return 2
    config_path = args.pop("config", None)
    module = _load(command)
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if command in SINGLE_PROCESS and world > 1:
            raise ConfigError(f"'{command}' runs in one process; under torchrun (WORLD_SIZE={world}) "
                              "every rank would repeat the whole job. Run it without torchrun (its runs can "
                              "use --workers where offered), or torchrun the single-run commands instead.")
        options = resolve(module.Options, args, config_path)
        out = module.run(options)
    except ImprovedGanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint (if any) is intact", file=sys.stderr)
        return 130
    if out is not None:
        print(f"run directory: {out}")
    return 0
