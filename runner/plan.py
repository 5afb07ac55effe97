"""`runner plan`: what merging an adapter version would do, before any GPU time is spent:
what changed against the previous version, and what the run is estimated to cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from runner.errors import SpecError
from runner.findings import Severity
from runner.hub.client import DEFAULT_ENDPOINT, HubClient
from runner.policy.loading import Policies
from runner.policy.memory import MemoryPlan
from runner.policy.promotion import predecessor
from runner.policy.training import CostEstimate
from runner.power import PlannedPower
from runner.promote.channels import ChannelForecast, forecast_channels
from runner.runs.cost import PriceList, read_prices, with_prices
from runner.specs import load_adapter
from runner.specs.bundle import AdapterBundle
from runner.specs.channels import load_channels
from runner.specs.diff import FieldChange, SpecDiff, diff_bundles, is_missing
from runner.specs.evaluation import Waiver
from runner.validation import AdapterValidation, validate_adapter
from runner.workspace import Workspace

SCHEMA_VERSION = 1
"""Of `runner plan --format json`; raised when a field changes meaning or goes away."""


@dataclass(frozen=True)
class Plan:
    adapter: str
    version: int
    publish_repo: str
    previous: str | None
    diff: SpecDiff | None
    estimate: CostEstimate | None
    memory: MemoryPlan | None
    power: PlannedPower | None
    """What the eval set can detect against the incumbent (worst case); None: no comparison."""
    tokens_exact: bool
    waivers: list[Waiver]
    errors: int
    warnings: int
    channels: ChannelForecast | None = None
    """The adapter's release channels once this is merged; None when not asked for."""

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON data (`runner plan --format json`): these fields, nested ones as
        objects, and a `schema_version`."""
        return {
            "schema_version": SCHEMA_VERSION,
            **{field.name: getattr(self, field.name) for field in fields(self)},
            "diff": None if self.diff is None else _diff_dict(self.diff),
            "estimate": None if self.estimate is None else asdict(self.estimate),
            "memory": None if self.memory is None else _memory_dict(self.memory),
            "power": None if self.power is None else _power_dict(self.power),
            "waivers": [waiver.model_dump(mode="json") for waiver in self.waivers],
            "channels": None if self.channels is None else _channels_dict(self.channels),
        }


def _channels_dict(forecast: ChannelForecast) -> dict[str, Any]:
    return {
        "problem": forecast.problem,
        "channels": [
            {
                "channel": p.channel,
                "declared": p.declared,
                "current": p.current,
                "target": p.target,
                "state": p.state.value,
                "detail": p.detail,
            }
            for p in forecast.plans
        ],
        "evals": {f"v{version}": metrics for version, metrics in forecast.evals.items()},
    }


def _diff_dict(diff: SpecDiff) -> dict[str, Any]:
    return {
        "old": diff.old,
        "new": diff.new,
        "fields": [_change_dict(change) for change in diff.fields],
        "categories": [asdict(counts) for counts in diff.categories],
    }


def _memory_dict(memory: MemoryPlan) -> dict[str, Any]:
    """GB per GPU; `needed` is null for a base the planner has no architecture for, and
    `gb_per_gpu` for a flavor whose memory it does not know."""
    needed = memory.needed
    return {
        "flavor": memory.flavor,
        "gpus": None if memory.capacity is None else memory.capacity.devices,
        "gb_per_gpu": None if memory.capacity is None else memory.capacity.gb_per_device,
        "needed": None if needed is None else {**asdict(needed), "total_gb": needed.total_gb},
        "fits": memory.fits,
        "distributed": memory.strategy,
        "processes": memory.processes,
    }


def _power_dict(power: PlannedPower) -> dict[str, Any]:
    return {**asdict(power), "too_small": power.too_small, "items_needed": power.items_needed}


def _change_dict(change: FieldChange) -> dict[str, Any]:
    """A side where the field is absent has no key: null is a value a spec can hold."""
    sides = {"old": change.old, "new": change.new}
    return {"key": change.key, **{side: v for side, v in sides.items() if not is_missing(v)}}


def make_plan(
    workspace: Workspace,
    directory: Path,
    policies: Policies,
    client: HubClient | None = None,
    *,
    with_channels: bool = False,
) -> Plan:
    """`client`: the Hub to read a Jobs adapter's flavor prices from (else the policy's) and,
    `with_channels`, where the adapter's release channels point."""
    checked: AdapterValidation = validate_adapter(workspace, directory, policies)
    bundle = checked.bundle
    if bundle is None:
        raise SpecError(
            f"{checked.path}: the specs do not load; run `runner validate`", checked.findings
        )
    prices = job_prices(bundle, client)
    previous = predecessor(bundle, workspace)
    return Plan(
        adapter=bundle.dirname,
        version=bundle.adapter.version,
        publish_repo=bundle.adapter.publish.repo_id,
        previous=previous.dirname if previous else None,
        diff=diff_bundles(previous, bundle) if previous else None,
        estimate=with_prices(checked.estimate, prices, policies.training),
        memory=checked.memory,
        power=checked.power,
        tokens_exact=bool(checked.data and checked.data.tokens_exact),
        waivers=list(bundle.evaluation.waivers),
        errors=sum(f.severity is Severity.ERROR for f in checked.findings),
        warnings=sum(f.severity is Severity.WARNING for f in checked.findings),
        channels=channel_forecast(workspace, bundle, client) if with_channels else None,
    )


def channel_forecast(
    workspace: Workspace, bundle: AdapterBundle, client: HubClient | None
) -> ChannelForecast | None:
    """Where the adapter's channels point on the Hub and where git's change moves them; None
    without a Hub to ask, or when its channels file does not load (validation says why)."""
    channels, _ = load_channels(workspace, bundle.adapter.name)
    if client is None or channels is None:
        return None
    versions = [
        found
        for directory in workspace.list_adapter_dirs()
        if (found := load_adapter(workspace, directory).bundle) is not None
        and found.adapter.name == bundle.adapter.name
    ]
    return forecast_channels(versions, workspace.root, channels, client)


def job_prices(bundle: AdapterBundle, client: HubClient | None) -> PriceList:
    """The Hub's prices for a Jobs adapter, when there is a Hub to ask: one named by
    HF_ENDPOINT or reached with a token. Other backends keep the policy's Space rates."""
    if bundle.adapter.training.flavor is None:  # not a Job: no Jobs price applies
        return PriceList()
    if client is None or not (client.has_token or client.endpoint != DEFAULT_ENDPOINT):
        return PriceList(problem="no HF_TOKEN or HF_ENDPOINT to read the Hub's prices with")
    return read_prices(client)
