"""Dataset files: streaming reads, fingerprints and (later) the data checks."""
