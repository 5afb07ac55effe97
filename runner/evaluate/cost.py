"""The cost ledger of the run an eval report is about: the plan's estimate against what the
Hugging Face Job ran, at the price read now (recorded in the report, so the PR comment and
the card show the same amounts). Runs on other backends have no ledger."""

from __future__ import annotations

from pathlib import Path

from runner.hub.client import HubClient
from runner.policy.loading import load_policies
from runner.runs.cost import CostLedger, actual_cost, read_prices, unit_price, with_prices
from runner.specs.bundle import AdapterBundle
from runner.train.train import RunResult
from runner.validation import validate_adapter
from runner.workspace import Workspace


def run_ledger(
    bundle: AdapterBundle, repo_root: Path, record: RunResult, client: HubClient
) -> CostLedger | None:
    """Estimated against actual cost of a Jobs run; None for a run no Job made."""
    if record.job is None:
        return None
    workspace = Workspace(repo_root)
    policies = load_policies(workspace)
    prices = read_prices(client)
    # The same estimate `runner plan` shows, at the same price as the actual.
    estimate = validate_adapter(workspace, bundle.directory, policies).estimate
    return CostLedger(
        with_prices(estimate, prices, policies.training),
        actual_cost(record.job, unit_price(record.job.flavor, prices, policies.training)),
    )
