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

# What the training image installs over BASE_IMAGE, one `pip install` each: torch from its CUDA
# index alone (never PyPI's, which a same-named upload could shadow), then the rest from PyPI.
PIP_INSTALL = "pip install --no-cache-dir"
TRAINING_INSTALLS = (f"{TORCH} --index-url {TORCH_INDEX}", " ".join(PACKAGES))
# ZeRO-3 (`training.distributed: zero3`) runs on DeepSpeed, which nothing else needs. PyPI has
# only its source; its setup imports torch, so it builds against the torch installed above.
DEEPSPEED = "--no-build-isolation deepspeed==0.19.8"

# The `jobs` backend's image. A Job runs an image as it is, with no build step, so it starts
# from BASE_IMAGE pinned by digest (a retag upstream cannot change what trains) and installs
# TRAINING_INSTALLS before train.py starts: the Space image's exact pins, paid for in the
# first minute or two of each job. The digest is the one public Dockerfiles pin for this tag;
# it could not be checked against Docker Hub from here (no registry access): a wrong one
# ends the job in ERROR with the Hub's message naming the image.
JOB_IMAGE = f"{BASE_IMAGE}@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5"
