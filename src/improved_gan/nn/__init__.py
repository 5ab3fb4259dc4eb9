"""The paper's model parts: weight norm with data-dependent init, Gaussian noise, batch norm variants."""

from improved_gan.nn.batch_norm import BatchNormNoGain, MeanOnlyBatchNorm
from improved_gan.nn.noise import GaussianNoise
from improved_gan.nn.weight_norm import WNConv2d, WNConvTranspose2d, WNLinear, data_dependent_init

__all__ = ["BatchNormNoGain", "MeanOnlyBatchNorm", "GaussianNoise", "WNConv2d", "WNConvTranspose2d",
           "WNLinear", "data_dependent_init"]
