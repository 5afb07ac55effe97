"""The four spec files of an adapter version, validated with positions."""

from runner.specs.adapter import AdapterSpec
from runner.specs.bundle import SPEC_FILES, AdapterBundle, LoadResult, SpecFile
from runner.specs.dataset import DatasetManifest
from runner.specs.evaluation import EvalSpec
from runner.specs.load import load_adapter, load_spec_file, require_adapter
from runner.specs.training import TrainingSpec

__all__ = [
    "SPEC_FILES",
    "AdapterBundle",
    "AdapterSpec",
    "DatasetManifest",
    "EvalSpec",
    "LoadResult",
    "SpecFile",
    "TrainingSpec",
    "load_adapter",
    "load_spec_file",
    "require_adapter",
]
