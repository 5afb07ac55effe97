"""`runner validate`: specs, then policies and data, for each adapter, every finding kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.data.checks import DatasetReport, check_dataset
from runner.data.citation_task import refusal_floor_findings
from runner.engines import engine_for
from runner.findings import Finding, Severity, has_errors, sort_findings
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
from runner.specs.channels import (
    channels_path,
    declared_adapters,
    load_channels,
    missing_version_findings,
)
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
    findings += channel_findings(workspace, bundle.adapter.name)
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


def channel_findings(workspace: Workspace, adapter: str) -> list[Finding]:
    """The adapter name's channels file: it loads, and each channel names a version in git."""
    channels, findings = load_channels(workspace, adapter)
    if channels is None:
        return findings
    versions = set(workspace.adapter_versions().get(adapter, {}))
    return findings + missing_version_findings(channels, versions)


def orphan_channels(
    workspace: Workspace, changed: list[str] | None = None
) -> list[AdapterValidation]:
    """A failed result per channels file whose adapter has no version in git (a misspelt file
    name, or every version withdrawn): each such file, or with `changed` those it touches. No
    adapter's validation covers such a file, so it is a result of its own."""
    names = workspace.adapter_versions()
    results = []
    for adapter in declared_adapters(workspace):
        path = channels_path(adapter)
        if adapter in names or (changed is not None and not _touches(changed, adapter)):
            continue
        shown = ", ".join(sorted(names)) or "none"
        orphan = Finding(
            "channels.unknown-adapter",
            Severity.ERROR,
            path,
            None,
            f"no adapters/{adapter}-v<N>/ in git, so its channels name nothing that can be "
            f"served (adapter names in git: {shown})",
            "name the file after an adapter (channels/<adapter name>.yaml), or remove it "
            "once no version of the adapter is left",
        )
        results.append(AdapterValidation(path, [orphan], None, None, None))
    return results


def _touches(changed: list[str], adapter: str) -> bool:
    """The change edits the adapter's channels file or one of its version directories."""
    return any(
        p == channels_path(adapter) or p.startswith(f"adapters/{adapter}-v") for p in changed
    )


def exit_code(results: list[AdapterValidation], policies: Policies) -> int:
    if has_errors(policies.problems) or any(r.bundle is None for r in results):
        return EXIT_UNUSABLE
    if any(has_errors(r.findings) for r in results):
        return EXIT_FINDINGS
    return EXIT_CLEAN
