"""`runner validate`: specs, then policies and data, for each adapter, every finding kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.data.checks import DatasetReport, check_dataset
from runner.data.citation_task import refusal_floor_findings
from runner.engines import engine_for
from runner.findings import Finding, has_errors, sort_findings
from runner.policy.loading import Policies
from runner.policy.memory import MemoryPlan, check_memory, plan_memory
from runner.policy.promotion import check_promotion_rules
from runner.policy.repos import check_publish_claims, check_repo_owners
from runner.policy.training import (
    CostEstimate,
    check_gpu_hours,
    check_training_limits,
    estimate_cost,
)
from runner.power import PlannedPower, planned_power, power_findings
from runner.serving.lint import spec_findings as serving_findings
from runner.specs import AdapterBundle, load_adapter
from runner.specs.scaffold import readme_findings
from runner.workspace import Workspace

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


@dataclass(frozen=True)
class AdapterValidation:
    path: str
    findings: list[Finding]
    bundle: AdapterBundle | None
    """None when the specs did not load: nothing else could be checked."""
    data: DatasetReport | None
    estimate: CostEstimate | None
    memory: MemoryPlan | None = None
    power: PlannedPower | None = None
    """What the eval set can detect against the incumbent, in the worst case."""

    @property
    def ok(self) -> bool:
        return self.bundle is not None and not has_errors(self.findings)


def validate_adapter(
    workspace: Workspace, directory: Path, policies: Policies, base_ref: str | None = None
) -> AdapterValidation:
    loaded = load_adapter(workspace, directory)
    path = workspace.rel(directory)
    bundle = loaded.bundle
    if bundle is None or has_errors(loaded.findings):
        return AdapterValidation(path, loaded.findings, None, None, None)
    findings = list(loaded.findings)
    for doc in bundle.docs.values():
        findings += policies.text.scan(
            doc.text, path=doc.path, line=1, target="spec", multiline=True
        )
    findings += engine_for(bundle).spec_findings(bundle)
    findings += serving_findings(bundle, None)  # validate never downloads the base's config
    findings += refusal_floor_findings(bundle)
    if policies.promotion is not None:
        findings += check_promotion_rules(policies.promotion, bundle, workspace, base_ref)
    if policies.repos is not None:
        findings += check_repo_owners(policies.repos, bundle)
    findings += check_publish_claims(bundle, workspace)
    findings += readme_findings(bundle)
    memory = plan_memory(bundle)
    findings += check_memory(bundle, memory)
    data = check_dataset(bundle, workspace, policies.text)
    findings += data.findings
    power = planned_power(bundle, workspace, data.stats["eval"].records)
    findings += power_findings(bundle, power)
    estimate = None
    if policies.training is not None:
        findings += check_training_limits(policies.training, bundle)
        estimate = estimate_cost(policies.training, bundle, data.stats["train"].tokens)
        findings += check_gpu_hours(policies.training, bundle, estimate, exact=data.tokens_exact)
    return AdapterValidation(path, sort_findings(findings), bundle, data, estimate, memory, power)


def exit_code(results: list[AdapterValidation], policies: Policies) -> int:
    if has_errors(policies.problems) or any(r.bundle is None for r in results):
        return EXIT_UNUSABLE
    if any(has_errors(r.findings) for r in results):
        return EXIT_FINDINGS
    return EXIT_CLEAN
