"""What the Space image installs: the versions this runner is tested with, every one pinned.
Changing a pin is a reviewed code change, and it changes what the policy check sees."""

from __future__ import annotations

BASE_IMAGE = "python:3.11.11-slim-bookworm"
TORCH = "torch==2.13.0"
TORCH_INDEX = "https://download.pytorch.org/whl/cu128"
PACKAGES = (
    "transformers==5.23.0",
    "peft==0.21.2",
    "trl==1.16.0",
    "datasets==5.2.0",
    "accelerate==1.15.0",
    "bitsandbytes==0.50.2",
    "huggingface_hub==2.4.0",
)
APP_PORT = 7860

# The `autotrain` engine's image. AutoTrain's own Docker Hub images are tagged `latest` and by
# commit (its docker workflow), never by release, so a `:0.8.36` tag would not pull; instead
# the PyTorch image of AutoTrain 0.8.36's time (torch 2.5.1, CUDA 12.4, Python 3.11) with
# the release from PyPI, whose own dependencies are pinned (==) in its metadata.
AUTOTRAIN_BASE_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
AUTOTRAIN_VERSION = "0.8.36"
AUTOTRAIN_PACKAGE = f"autotrain-advanced=={AUTOTRAIN_VERSION}"

# The `jobs` backend's image: a Job runs an image as it is (no build step), pinned by digest so
# a retag upstream cannot change what trains: the PyTorch runtime image of TORCH's release.
# Not usable on the real Hub yet: it lacks transformers, peft and trl (PACKAGES), and this
# digest was not checked against the registry (issue 17 keeps it open).
JOB_IMAGE = (
    "pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime"
    "@sha256:6acf597eeb8e376a96580dde4952f37cc017fef732bb40bfc73f28f25e3f64b4"
)
