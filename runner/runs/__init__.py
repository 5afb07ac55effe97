"""Run identity, one home: run ids, candidate locations, run records, the incumbent and version
tags. Training, evaluation and promotion all ask here; nothing reaches into `train/` for it."""
