"""improved-gan: the techniques of Salimans et al. 2016, "Improved Techniques for Training GANs"
(arXiv:1606.03498), as small, tested PyTorch pieces, with the experiments that measure them."""

__version__ = "0.1.0"
