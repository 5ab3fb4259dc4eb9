"""Generators and discriminators: toy MLPs, the paper's MNIST MLPs, small conv nets for 28x28."""
