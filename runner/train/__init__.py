"""Training: the standalone train + generate script and what identifies a run."""
