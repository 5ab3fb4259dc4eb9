"""Training loops' shared parts: run directories, checkpoints, progress bars, the GAN step."""
