"""The cost ledger, one home: what a Hugging Face Jobs run is priced at, what it cost, and what
an adapter's runs have spent in all.

A Job bills its running time only, at its flavor's unit cost per minute: the time it waits in
SCHEDULING for a machine is not billed (the Jobs docs: you pay for the hardware while the job
runs), so it is recorded and shown, never priced. Prices come from the Hub's own hardware list
(`list_jobs_hardware`); when that cannot be read, from the rates in policies/training.yaml,
and every amount says which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runner.errors import RunnerError
from runner.hub.client import HubClient, NotFoundError, RepoRef
from runner.hub.jobs import JobFlavor
from runner.policy.training import (
    POLICY_PRICES,
    CostEstimate,
    TrainingPolicy,
    UnitPrice,
    priced,
)
from runner.specs.bundle import AdapterBundle
from runner.train.train import JobUsage, RunResult, parse

HUB_PRICES = "the Hub's Jobs hardware list"
MAX_RECORDS = 500
"""Run records read per candidates repo when summing spend: a bound on the downloads."""


@dataclass(frozen=True)
class PriceList:
    """The Hub's Jobs flavors with their prices, or why they were not read."""

    flavors: tuple[JobFlavor, ...] = ()
    problem: str | None = None


def read_prices(client: HubClient) -> PriceList:
    """The Hub's flavor prices; a Hub that cannot answer leaves the policy's rates to use."""
    try:
        return PriceList(tuple(client.job_flavors()))
    except RunnerError:  # its message names an endpoint: not for a public model card
        return PriceList(problem="the Hub's hardware list could not be read")


def unit_price(name: str, prices: PriceList, policy: TrainingPolicy | None) -> UnitPrice | None:
    """`name`'s price: the Hub's, else the policy's (saying why), else None."""
    for flavor in prices.flavors:
        if flavor.name == name:
            return UnitPrice(flavor.usd_per_minute * 60, HUB_PRICES)
    rate = policy.hardware.get(name) if policy else None
    if rate is None:
        return None
    why = f" ({prices.problem})" if prices.problem else ""
    return UnitPrice(rate.usd_per_hour, POLICY_PRICES + why)


def with_prices(
    estimate: CostEstimate | None, prices: PriceList, policy: TrainingPolicy | None
) -> CostEstimate | None:
    """`estimate` at the price `unit_price` finds for its hardware."""
    price = unit_price(estimate.hardware, prices, policy) if estimate else None
    return priced(estimate, price) if estimate and price else estimate


@dataclass(frozen=True)
class ActualCost:
    flavor: str
    scheduling_s: float
    """Waiting for a machine: shown, not billed."""
    running_s: float
    usd: float | None
    """None when no price for the flavor is known."""
    price_source: str | None


def actual_cost(job: JobUsage, price: UnitPrice | None) -> ActualCost:
    usd = None if price is None else job.running_s / 3600 * price.usd_per_hour
    source = None if price is None else price.source
    return ActualCost(job.flavor, job.scheduling_s, job.running_s, usd, source)


@dataclass(frozen=True)
class CostLedger:
    """Estimated (what `runner plan` says) against actual (what the Job ran)."""

    estimate: CostEstimate | None
    actual: ActualCost


def ledger_rows(ledger: CostLedger) -> list[tuple[str, str, str]]:
    """(what, estimated, actual) as plain text, for the PR comment's and the card's tables."""
    estimate, actual = ledger.estimate, ledger.actual
    hours = estimate.gpu_hours if estimate else None
    usd = estimate.usd if estimate else None
    return [
        ("GPU time", _hours(hours), f"{_hours(actual.running_s / 3600)} running"),
        ("Waiting for a machine", "—", f"{_hours(actual.scheduling_s / 3600)} (not billed)"),
        (
            "Cost (USD)",
            _usd(usd, estimate.price_source if estimate else None, missing="—"),
            _usd(actual.usd, actual.price_source, missing="no price known"),
        ),
    ]


def _hours(hours: float | None) -> str:
    if hours is None:
        return "—"
    return f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def _usd(usd: float | None, source: str | None, *, missing: str) -> str:
    if usd is None:
        return missing
    shown = f"{usd:.2f}" if usd >= 0.01 else f"{usd:.4f}"  # a short run is not free
    return f"${shown} ({source})"


@dataclass(frozen=True)
class Spend:
    """What the Jobs runs of one adapter version cost, from their run records."""

    runs: int
    usd: float
    unpriced: int
    """Runs whose flavor has no known price: left out of `usd`."""
    complete: bool
    """False when the candidates repo held more records than were read (MAX_RECORDS)."""


def spend_by_adapter(
    client: HubClient,
    bundles: Sequence[AdapterBundle],
    prices: PriceList,
    policy: TrainingPolicy | None,
) -> dict[str, Spend]:
    """Each adapter version's spend, by directory name; each candidates repo read once."""
    spends: dict[str, Spend] = {}
    for repo_id in sorted({b.adapter.publish.candidates_repo_id for b in bundles}):
        records, complete = _job_records(client, RepoRef(repo_id, "model"))
        names = {b.dirname for b in bundles if b.adapter.publish.candidates_repo_id == repo_id}
        for name in sorted(names):
            jobs = [r.job for r in records if r.adapter == name and r.job is not None]
            spends[name] = _spend(jobs, prices, policy, complete)
    return spends


def _spend(
    jobs: Iterable[JobUsage], prices: PriceList, policy: TrainingPolicy | None, complete: bool
) -> Spend:
    costs = [actual_cost(job, unit_price(job.flavor, prices, policy)) for job in jobs]
    priced = [cost.usd for cost in costs if cost.usd is not None]
    return Spend(len(costs), sum(priced), len(costs) - len(priced), complete)


def _job_records(client: HubClient, repo: RepoRef) -> tuple[list[RunResult], bool]:
    """The readable run records of a candidates repo (at most MAX_RECORDS) and whether that
    was all of them."""
    try:
        paths = sorted(p for p in client.file_oids(repo) if _is_run_record(p))
    except NotFoundError:
        return [], True
    records = []
    for path in paths[:MAX_RECORDS]:
        try:
            text = client.download(repo, path).read_text(encoding="utf-8")
            records.append(parse(RunResult, json.loads(text)))
        except (ValueError, RecursionError):  # a broken record has no cost to add
            continue
    return records, len(paths) <= MAX_RECORDS


def _is_run_record(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 3 and parts[0] == "runs" and parts[2] == "run.json"
