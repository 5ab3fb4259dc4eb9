"""Metrics: 1D distances for the toy study, mode coverage, classifier-based image scores."""
