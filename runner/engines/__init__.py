"""Training engines: what trains inside a run. Each engine is one module behind `Engine`;
the backends, validation, run records and evaluation ask it instead of testing its name."""

from __future__ import annotations

from typing import Protocol

from runner.engines.autotrain import AUTOTRAIN
from runner.engines.trl import TRL
from runner.findings import Finding
from runner.space.render import SpaceApp
from runner.specs.bundle import AdapterBundle
from runner.train.train import RunConfig


class Engine(Protocol):
    name: str
    space_app: SpaceApp
    """The app and image the Space runs for this engine."""
    required_files: tuple[str, ...]
    """The files a candidate's folder must hold."""
    makes_eval_outputs: bool
    """Whether a run generates its eval outputs; if not, evaluation generates them."""

    def space_variables(
        self, bundle: AdapterBundle, config: RunConfig, space_id: str
    ) -> dict[str, str]:
        """Space variables beyond the run config."""
        ...

    def spec_findings(self, bundle: AdapterBundle) -> list[Finding]:
        """What in the specs this engine cannot honour, for `runner validate`."""
        ...


ENGINES: dict[str, Engine] = {engine.name: engine for engine in (TRL, AUTOTRAIN)}


def engine_for(bundle: AdapterBundle) -> Engine:
    """The engine the adapter's spec names (`training.engine`)."""
    return ENGINES[bundle.adapter.training.engine]
