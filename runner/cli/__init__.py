"""The `runner` command: one module per group of verbs, assembled in `main.py`."""

from runner.cli.main import app, main, run

__all__ = ["app", "main", "run"]
