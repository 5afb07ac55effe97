"""A local Hugging Face Hub that the real `huggingface_hub` client talks to through
`HF_ENDPOINT`: repos, commits, downloads, model cards and Spaces (run as local processes),
persisted in a data dir, with fault injection for tests."""

from runner.hub.emulator.server import EmulatorServer, serve

__all__ = ["EmulatorServer", "serve"]
