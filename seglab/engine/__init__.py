"""Training and evaluation machinery: device and precision, optimisation, checkpoints, run folders."""
