"""One adapter version: its four spec files, loaded and validated (see load.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from runner.findings import Finding, has_errors
from runner.specs.adapter import AdapterSpec
from runner.specs.dataset import DatasetManifest
from runner.specs.evaluation import EvalSpec
from runner.specs.training import TrainingSpec
from runner.specs.yamlio import YamlDoc


@dataclass(frozen=True)
class SpecFile:
    """One of the four files of an adapter directory and the model that validates it."""

    filename: str
    model: type[BaseModel]
    section: str  # the key this spec has in `runner show` output

    @property
    def schema_filename(self) -> str:
        return f"{Path(self.filename).stem}.schema.json"

    @property
    def schema_header(self) -> str:
        return f"# yaml-language-server: $schema=../../schemas/{self.schema_filename}"


SPEC_FILES: tuple[SpecFile, ...] = (
    SpecFile("adapter.yaml", AdapterSpec, "adapter"),
    SpecFile("dataset.yaml", DatasetManifest, "dataset"),
    SpecFile("qlora.yaml", TrainingSpec, "training"),
    SpecFile("eval.yaml", EvalSpec, "eval"),
)


@dataclass(frozen=True)
class AdapterBundle:
    """The validated specs of one adapter version and the parsed documents behind them."""

    directory: Path
    path: str
    adapter: AdapterSpec
    dataset: DatasetManifest
    training: TrainingSpec
    evaluation: EvalSpec
    docs: dict[str, YamlDoc] = field(repr=False)

    @property
    def dirname(self) -> str:
        return self.directory.name

    def resolved(self) -> dict[str, Any]:
        """Every spec with defaults filled in, keyed as `runner show` prints them."""
        specs = (self.adapter, self.dataset, self.training, self.evaluation)
        return {
            spec_file.section: spec.model_dump(mode="json")
            for spec_file, spec in zip(SPEC_FILES, specs, strict=True)
        }


@dataclass(frozen=True)
class LoadResult:
    bundle: AdapterBundle | None
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return self.bundle is not None and not has_errors(self.findings)
