"""Where a run trains. Each backend is one module behind `Backend` (see base.py); the
training flow (launch.py), the access checks and `runner doctor` ask it instead of testing
its name."""

from __future__ import annotations

from runner.backends.base import Backend
from runner.backends.jobs import JOBS
from runner.backends.local import LOCAL
from runner.backends.space import SPACE
from runner.specs.bundle import AdapterBundle

BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (LOCAL, SPACE, JOBS)}


def backend_for(name: str) -> Backend:
    """The backend a spec or `--backend` names."""
    return BACKENDS[name]


def training_repos(bundle: AdapterBundle) -> list[tuple[str, str]]:
    """(use, repo id) of the repos the spec's backend writes: every write preflight checks
    them (`runner.policy.access.require_writable`)."""
    return backend_for(bundle.adapter.training.backend).written_repos(bundle)
