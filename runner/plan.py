"""`runner plan`: what merging an adapter version would do, before any GPU time is spent:
what changed against the previous version, and what the run is estimated to cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.errors import SpecError
from runner.findings import Severity
from runner.policy.loading import Policies
from runner.policy.promotion import predecessor
from runner.policy.training import CostEstimate
from runner.specs.diff import SpecDiff, diff_bundles
from runner.specs.evaluation import Waiver
from runner.validation import AdapterValidation, validate_adapter
from runner.workspace import Workspace


@dataclass(frozen=True)
class Plan:
    adapter: str
    version: int
    publish_repo: str
    previous: str | None
    diff: SpecDiff | None
    estimate: CostEstimate | None
    tokens_exact: bool
    waivers: list[Waiver]
    errors: int
    warnings: int


def make_plan(workspace: Workspace, directory: Path, policies: Policies) -> Plan:
    checked: AdapterValidation = validate_adapter(workspace, directory, policies)
    bundle = checked.bundle
    if bundle is None:
        raise SpecError(
            f"{checked.path}: the specs do not load; run `runner validate`", checked.findings
        )
    previous = predecessor(bundle, workspace)
    return Plan(
        adapter=bundle.dirname,
        version=bundle.adapter.version,
        publish_repo=bundle.adapter.publish.repo_id,
        previous=previous.dirname if previous else None,
        diff=diff_bundles(previous, bundle) if previous else None,
        estimate=checked.estimate,
        tokens_exact=bool(checked.data and checked.data.tokens_exact),
        waivers=list(bundle.evaluation.waivers),
        errors=sum(f.severity is Severity.ERROR for f in checked.findings),
        warnings=sum(f.severity is Severity.WARNING for f in checked.findings),
    )
