"""Dataset files: streaming reads, fingerprints and the data checks."""
