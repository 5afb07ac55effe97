"""Everything that talks to the Hugging Face Hub, and the local emulator that stands in for
it offline. Telemetry is off before huggingface_hub is imported anywhere in the runner."""

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
