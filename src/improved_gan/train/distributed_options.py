"""The options every distributed trainer shares, declared once: how batch-dependent techniques behave
across ranks under torchrun, and how long a rank waits for the others (see docs/distributed.md)."""

from __future__ import annotations

from improved_gan.config import option
from improved_gan.train.distributed import DEFAULT_TIMEOUT_S
from improved_gan.train.distributed_ops import BN_MODES, SCOPES


def dist_mbd_option():
    return option("global", "under torchrun: minibatch discrimination over the global batch (equal to one "
                  "process) or each rank's slice", choices=SCOPES)


def dist_fm_option():
    return option("global", "under torchrun: feature matching on global batch means (equal to one process) "
                  "or per-rank means", choices=SCOPES)


def dist_bn_option():
    return option("sync", "under torchrun: G's batch norm with global-batch statistics or each rank's",
                  choices=BN_MODES)


def dist_timeout_option():
    return option(DEFAULT_TIMEOUT_S, "under torchrun: seconds before a missing or silent rank ends every "
                  "process with an error")
