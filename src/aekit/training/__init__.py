"""Training: the loop, checkpoints, distributed helpers and data sources."""
