"""`policies/promotion.yaml`: promoted versions are immutable, thresholds do not drop
without a waiver, version numbers increase."""

from __future__ import annotations

from typing import Literal

from runner.findings import Finding
from runner.gitutil import differs_from, exists_at
from runner.specs.base import SpecModel
from runner.specs.bundle import AdapterBundle
from runner.specs.evaluation import EvalSpec
from runner.specs.load import load_adapter
from runner.workspace import Workspace, split_adapter_dirname


class PromotionPolicy(SpecModel):
    kind: Literal["promotion"]
    promoted_versions_immutable: bool = True
    thresholds_may_not_drop: bool = True
    versions_increase: bool = True


def predecessor(bundle: AdapterBundle, workspace: Workspace) -> AdapterBundle | None:
    """The version this one follows: `lineage.parent`, else the highest lower version."""
    parent = bundle.adapter.lineage.parent
    if parent is None:
        lower = [
            (parsed[1], directory)
            for directory in workspace.list_adapter_dirs()
            if (parsed := split_adapter_dirname(directory.name))
            and parsed[0] == bundle.adapter.name
            and parsed[1] < bundle.adapter.version
        ]
        if not lower:
            return None
        parent = max(lower)[1].name
    directory = workspace.adapters_dir / parent
    if not directory.is_dir():
        return None
    return load_adapter(workspace, directory).bundle


def check_promotion_rules(
    policy: PromotionPolicy,
    bundle: AdapterBundle,
    workspace: Workspace,
    base_ref: str | None,
) -> list[Finding]:
    findings = []
    if policy.promoted_versions_immutable and base_ref is not None:
        findings += _immutable(bundle, workspace, base_ref)
    previous = predecessor(bundle, workspace)
    if previous is None:
        return findings
    if policy.versions_increase and previous.adapter.version >= bundle.adapter.version:
        findings.append(
            bundle.docs["adapter.yaml"].finding(
                ["version"],
                "promotion.version-order",
                f"version {bundle.adapter.version} does not come after its predecessor "
                f"{previous.dirname}",
            )
        )
    if policy.thresholds_may_not_drop:
        findings += _thresholds_hold(bundle, previous)
    return findings


def _immutable(bundle: AdapterBundle, workspace: Workspace, base_ref: str) -> list[Finding]:
    relative = workspace.rel(bundle.directory)
    if not exists_at(workspace.root, base_ref, f"{relative}/adapter.yaml"):
        return []
    if not differs_from(workspace.root, base_ref, relative):
        return []
    name, version = bundle.adapter.name, bundle.adapter.version
    return [
        bundle.docs["adapter.yaml"].finding(
            [],
            "promotion.immutable",
            f"{relative} exists on {base_ref} and this change edits it; versions are immutable",
            hint=f"revert it and make the next version: `runner new {name}-v{version + 1} "
            f"--from {bundle.dirname}`",
        )
    ]


def _floors(spec: EvalSpec) -> dict[tuple[str | None, str], float]:
    floors: dict[tuple[str | None, str], float] = {
        (None, metric): value for metric, value in spec.thresholds.overall.items()
    }
    for category, metrics in spec.thresholds.categories.items():
        floors.update({(category, metric): value for metric, value in metrics.items()})
    return floors


def _thresholds_hold(bundle: AdapterBundle, previous: AdapterBundle) -> list[Finding]:
    waived = {(w.category, w.metric) for w in bundle.evaluation.waivers}
    now = _floors(bundle.evaluation)
    doc = bundle.docs["eval.yaml"]
    findings = []
    for (category, metric), before in _floors(previous.evaluation).items():
        after = now.get((category, metric))
        if (after is not None and after >= before) or (category, metric) in waived:
            continue
        scope = (
            ["thresholds", "overall"]
            if category is None
            else ["thresholds", "categories", category]
        )
        label = metric if category is None else f"{category}.{metric}"
        was = f"{before:g} in {previous.dirname}"
        message = (
            f"threshold {label} dropped to {after:g} (was {was})"
            if after is not None
            else (f"threshold {label} was removed (was {was})")
        )
        findings.append(
            doc.finding(
                [*scope, metric] if after is not None else scope,
                "promotion.threshold-drop",
                message,
                hint=_waiver_hint(metric, category),
                at_key=after is not None,
            )
        )
    return findings


def _waiver_hint(metric: str, category: str | None) -> str:
    keys = f"`metric: {metric}`" + (f", `category: {category}`" if category else "")
    return (
        "keep it, or add a `waivers:` entry to eval.yaml with `metric`, `reason` and "
        f"`approved_by` (here {keys}; the reason says why the lower floor is acceptable)"
    )
