"""Sample-quality scores on a dataset classifier: Inception-style score, Fréchet distance, KID,
precision and recall.

- :func:`inception_score` — Salimans et al. 2016, Section 4: exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the
  marginal over the samples of a split. As in the authors' code the N samples are cut into ``splits``
  parts (10) and the mean and standard deviation over the parts are reported; the samples are shuffled
  first (with an explicit generator) so that a sorted input does not bias the parts.
- :func:`frechet_distance` — Heusel et al. 2017: ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}).
- :func:`kernel_inception_distance` — Bińkowski et al. 2018: the unbiased MMD² with the cubic
  polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (mean ± std).
- :func:`precision_recall` — Kynkäänniemi et al. 2019: each set's manifold is the union of balls
  around its points with radius the distance to the k-th nearest neighbour (k = 3); precision is the
  fraction of generated points inside the real manifold, recall the fraction of real points inside
  the generated manifold.

All functions take tensors (probabilities or features) and return Python floats; they are pure and
deterministic given their ``seed``. The features here are the penultimate layer of the project's
28×28 classifier (:mod:`improved_gan.models.classifier28`), not Inception-v3 pool features, so the
numbers are comparable within this project only; :func:`standard_scores` is the optional path to the
standard Inception-v3 numbers through torch-fidelity.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from improved_gan.errors import ConfigError


def inception_score(probs: torch.Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """(mean, std) over ``splits`` parts of exp(E_x KL(p(y|x) ‖ p(y))); ``probs`` is (N, K), rows sum to 1."""
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.dim() != 2 or probs.shape[0] < splits:
        raise ValueError(f"inception_score needs (N, K) probabilities with N >= splits={splits}, "
                         f"got {tuple(probs.shape)}")
    if not torch.allclose(probs.sum(1), torch.ones(probs.shape[0], dtype=probs.dtype), atol=1e-4):
        raise ValueError("inception_score expects probabilities (rows summing to 1), not logits")
    g = torch.Generator().manual_seed(seed)
    probs = probs[torch.randperm(probs.shape[0], generator=g)]
    scores = []
    for part in torch.tensor_split(probs, splits):
        py = part.mean(0, keepdim=True)
        # xlogy makes 0·log 0 = 0, so perfectly confident predictions are fine
        kl = (torch.xlogy(part, part) - torch.xlogy(part, py)).sum(1).mean()
        scores.append(math.exp(float(kl)))
    arr = np.asarray(scores)
    return float(arr.mean()), float(arr.std())


def feature_statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features, as the Fréchet distance uses them."""
    f = torch.as_tensor(features).detach().double().cpu().numpy()
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """Tr((Σ_a Σ_b)^{1/2}) = Σ sqrt(eig(Σ_a^{1/2} Σ_b Σ_a^{1/2})): the eigenvalues of Σ_a Σ_b equal those
    of the symmetric PSD matrix Σ_a^{1/2} Σ_b Σ_a^{1/2}, so symmetric eigensolvers give the trace
    without a general matrix square root and stay exact when the covariances are singular (dead ReLU
    features of the classifier make them so)."""
    w, U = scipy.linalg.eigh(sigma_a)
    root_a = (U * np.sqrt(np.clip(w, 0.0, None))) @ U.T
    inner = root_a @ sigma_b @ root_a
    ev = scipy.linalg.eigvalsh((inner + inner.T) / 2.0)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b) -> float:
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * _trace_sqrt_product(sigma_a, sigma_b)
    return float(max(value, 0.0))  # tiny negative values are round-off


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance_from_stats(*feature_statistics(features_a), *feature_statistics(features_b))


def _polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(features_a: torch.Tensor, features_b: torch.Tensor, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) over ``subsets`` random subsets of the unbiased MMD² with the cubic kernel.

    The subset size is capped by the smaller set. For two identical sets the estimate is ≈ 0 (slightly
    negative is possible: the estimator is unbiased, not non-negative).
    """
    a = torch.as_tensor(features_a).detach().double().cpu()
    b = torch.as_tensor(features_b).detach().double().cpu()
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(a.shape[0], generator=g)[:m]]
        y = b[torch.randperm(b.shape[0], generator=g)[:m]]
        kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        off = m * (m - 1)
        mmd = ((kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off
               - 2.0 * kxy.mean())
        values.append(float(mmd))
    arr = np.asarray(values)
    return float(arr.mean()), float(arr.std())


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    radii = []
    for start in range(0, x.shape[0], chunk):
        d = torch.cdist(x[start:start + chunk], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the 1st smallest is the point itself (0)
    return torch.cat(radii)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
            chunk: int = 2048) -> torch.Tensor:
    out = []
    for start in range(0, points.shape[0], chunk):
        d = torch.cdist(points[start:start + chunk], centres)
        out.append((d <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(out)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor,
                     k: int = 3) -> tuple[float, float]:
    """(precision, recall) with k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019)."""
    real = torch.as_tensor(real_features).detach().float().cpu()
    fake = torch.as_tensor(fake_features).detach().float().cpu()
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set")
    precision = _inside(fake, real, _kth_neighbour_radii(real, k)).double().mean()
    recall = _inside(real, fake, _kth_neighbour_radii(fake, k)).double().mean()
    return float(precision), float(recall)


def standard_scores(images: torch.Tensor, weights_path: str | os.PathLike | None = None) -> dict[str, float]:
    """Optional: the standard Inception-v3 Inception score through torch-fidelity.

    Needs ``pip install torch-fidelity`` and the Inception-v3 weights file
    (``weights-inception-2015-12-05-6726825d.pth``, as torch-fidelity names it)
    given by ``weights_path`` or the ``IMPROVED_GAN_INCEPTION_WEIGHTS`` environment variable; nothing is
    downloaded. Raises :class:`ConfigError` naming what is missing. Not exercised on machines without
    the weights (the scores of this project use the dataset classifier instead).
    """
    path = weights_path or os.environ.get("IMPROVED_GAN_INCEPTION_WEIGHTS")
    if not path or not Path(path).is_file():
        raise ConfigError(
            "the standard Inception-v3 scores need the weights file "
            "weights-inception-2015-12-05-6726825d.pth; "
            f"got {path!r}. Download it on a machine with internet access and pass its path with "
            "IMPROVED_GAN_INCEPTION_WEIGHTS=FILE (or use the dataset-classifier scores, the default)")
    try:
        import torch_fidelity  # noqa: F401
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise ConfigError("the standard Inception-v3 scores need torch-fidelity: "
                          "pip install torch-fidelity") from None
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"],
                                            feature_extractor_weights_path=str(path))
    x = images.detach().float().clamp(0, 1)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = (x * 255).to(torch.uint8)
    logits = torch.cat([extractor(x[i:i + 100])[0] for i in range(0, x.shape[0], 100)])
    mean, std = inception_score(torch.softmax(logits.double(), 1))
    return {"inception_v3_score_mean": mean, "inception_v3_score_std": std}


def score_samples(probs: torch.Tensor, features: torch.Tensor, real_features: torch.Tensor, splits: int = 10,
                  kid_subsets: int = 50, kid_subset_size: int = 1000, k: int = 3, seed: int = 0
                  ) -> dict[str, float]:
    """Every score of one sample set against the real features, as a flat dict for summary.json."""
    is_mean, is_std = inception_score(probs, splits=splits, seed=seed)
    kid_mean, kid_std = kernel_inception_distance(features, real_features, subsets=kid_subsets,
                                                  subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(real_features, features, k=k)
    return {"score_mean": is_mean, "score_std": is_std, "fid": frechet_distance(features, real_features),
            "kid_mean": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall}
