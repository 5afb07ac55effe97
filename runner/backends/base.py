"""What every backend answers: which repos it writes for a run, and how it launches and
watches one until it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runner.hub.client import HubClient
from runner.policy.loading import Policies
from runner.space.sync import Limits
from runner.specs.bundle import AdapterBundle
from runner.train.train import RunConfig

EventSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Launch:
    """One run to start: its rendered run config and the limits that stop it."""

    bundle: AdapterBundle
    repo_root: Path
    client: HubClient
    policies: Policies
    config: RunConfig
    limits: Limits
    on_event: EventSink
    retrain: bool
    """Train even when a trained adapter of this run id is kept."""
    pr: int | None = None
    """The PR this run trains for, when the GitHub event names one (a backend labels with it)."""


@dataclass(frozen=True)
class Ended:
    failure: str | None
    """Why the run ended without finishing; None when it finished."""
    detail: str | None
    """What a failure message shows of the run (its log tail), whether or not it finished."""


class Backend(Protocol):
    name: str
    on_this_machine: bool
    """Whether it trains on the machine the runner runs on (CI asks for one that does not)."""

    def written_repos(self, bundle: AdapterBundle) -> list[tuple[str, str]]:
        """(use, repo id) of the repos this backend writes beyond the candidate's own."""
        ...

    def check(self, bundle: AdapterBundle) -> None:
        """Raise InputError when this backend cannot run the spec: before anything is pushed
        (a `--backend` given on the command line may name one the spec was not written for)."""
        ...

    def launch(self, run: Launch) -> Ended:
        """Start the run and watch it to its end or a limit."""
        ...
