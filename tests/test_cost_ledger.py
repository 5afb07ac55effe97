"""The cost ledger of Hugging Face Jobs runs: `runner plan` prices a Jobs adapter from the
Hub's hardware list (or says it used the policy's rates), the PR eval comment and the model
card show estimated against actual cost, and `runner status --spend` sums each adapter's
runs. On the emulator, whose hardware list carries the Hub's prices."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.evaluate.report import EvalReport
from runner.hub.client import HubClient
from runner.hub.jobs import JobStage
from runner.promote.card import Provenance, render_model_card
from runner.specs import require_adapter
from runner.train.train import JobUsage, RunResult, to_json
from runner.workspace import Workspace
from tests.conftest import ADAPTER, TOKEN, RunCli, candidate_of, copy_repo, edit

FLAVOR = "l4x1"
POLICY_USD_PER_HOUR = 9.99
"""The policy's rate for FLAVOR in these tests: unlike the Hub's, so each amount shows its
source."""
SCHEDULING_S, RUNNING_S = 240.0, 1800.0
CANDIDATES = "ainative/kwanzaa-mini-lora-candidates"


def on_jobs(root: Path) -> None:
    """The adapter on Hugging Face Jobs, and the policy's rate for its flavor made distinct."""
    edit(
        root / f"adapters/{ADAPTER}/adapter.yaml",
        "backend: local",
        f"backend: jobs\n  flavor: {FLAVOR}",
    )
    policy = root / "policies/training.yaml"
    text = policy.read_text(encoding="utf-8")
    at = text.index(f"  {FLAVOR}:")
    rate = text.index("usd_per_hour:", at)
    end = text.index("\n", rate)
    policy.write_text(text[:rate] + f"usd_per_hour: {POLICY_USD_PER_HOUR}" + text[end:])


def hub_usd_per_hour(flavor: str = FLAVOR) -> float:
    (found,) = [f for f in HubClient().job_flavors() if f.name == flavor]
    return found.usd_per_minute * 60


def plan_json(run_cli: RunCli, root: Path) -> dict[str, Any]:
    code, out, err = run_cli("plan", f"adapters/{ADAPTER}", "--format", "json", "--repo", root)
    assert code == 0, err
    return json.loads(out)["estimate"]


def job_usage(run_id: str = "job-1", flavor: str = FLAVOR, running_s: float = RUNNING_S) -> dict:
    usage = JobUsage(run_id, flavor, SCHEDULING_S, running_s, 12 * 2**30, 87.5)
    return to_json(usage)


def add_job_section(run: Any, usage: dict[str, Any]) -> None:
    """What the jobs backend does once its job completes: run.json gains the job's usage."""
    api = HfApi(endpoint=HubClient().endpoint, token=TOKEN)
    path = api.hf_hub_download(run.location.repo_id, run.location.file("run.json"))
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    api.upload_file(
        path_or_fileobj=json.dumps({**record, "job": usage}).encode(),
        path_in_repo=run.location.file("run.json"),
        repo_id=run.location.repo_id,
    )


# -- the estimate ---------------------------------------------------------------------------


def test_plan_prices_a_jobs_adapter_at_the_hubs_flavor_price_and_says_so(
    env: Any, tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    on_jobs(root)

    estimate = plan_json(run_cli, root)
    code, text, err = run_cli("plan", f"adapters/{ADAPTER}", "--repo", root)

    assert code == 0, err
    assert estimate["hardware"] == FLAVOR
    assert estimate["price_source"] == "the Hub's Jobs hardware list"
    assert estimate["usd"] == pytest.approx(estimate["gpu_hours"] * hub_usd_per_hour())
    assert f"on {FLAVOR}, about ${estimate['usd']:.2f} (price: the Hub's Jobs hardware list)" in (
        text
    )


def test_plan_without_a_hub_prices_a_jobs_adapter_from_the_policy_and_says_why(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    root = copy_repo(tmp_path / "repo")
    on_jobs(root)

    estimate = plan_json(run_cli, root)

    assert estimate["usd"] == pytest.approx(estimate["gpu_hours"] * POLICY_USD_PER_HOUR)
    assert estimate["price_source"] == (
        "policies/training.yaml (no HF_TOKEN or HF_ENDPOINT to read the Hub's prices with)"
    )


def test_plan_of_a_space_adapter_keeps_the_policys_price(
    env: Any, tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")

    estimate = plan_json(run_cli, root)

    assert (estimate["hardware"], estimate["price_source"]) == (
        "cpu-basic",
        "policies/training.yaml",
    )


# -- estimated against actual: the eval comment and the card ---------------------------------


def evaluate(run_cli: RunCli, root: Path, run_id: str, out: Path) -> tuple[EvalReport, str]:
    code, _, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--run", run_id, "--out", out, "--repo", root
    )
    assert code in (0, 1), err[-3000:]  # a random model fails the gate: the cost shows anyway
    return EvalReport.read(out / "eval_report.json"), (out / "eval_report.md").read_text()


def card_of(root: Path, report: EvalReport) -> str:
    bundle = require_adapter(Workspace(root), f"adapters/{ADAPTER}")
    return render_model_card(bundle, report, Provenance("abc123", 7, report.run_id, "0.0.0"))


def test_the_eval_comment_and_the_card_show_estimated_and_actual_cost_of_a_jobs_run(
    tiny_repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "local", "--repo", tiny_repo
    )
    assert code == 0, err[-3000:]
    run = candidate_of(tiny_repo)
    rid = run.location.run_id
    before, comment_before = evaluate(run_cli, tiny_repo, rid, tmp_path / "local")
    on_jobs(tiny_repo)
    add_job_section(run, job_usage())

    report, comment = evaluate(run_cli, tiny_repo, rid, tmp_path / "jobs")
    card = card_of(tiny_repo, report)

    # A run no Job made has no cost to show: nothing new in its comment or card.
    assert before.cost is None
    assert "Cost on Hugging Face Jobs" not in comment_before
    assert "Training cost" not in card_of(tiny_repo, before)
    assert report.cost is not None
    estimate, actual = report.cost.estimate, report.cost.actual
    assert estimate is not None
    assert estimate.usd is not None
    assert actual.usd == pytest.approx(RUNNING_S / 3600 * hub_usd_per_hour())  # scheduling: free
    estimated_usd = f"${estimate.usd:.2f} (the Hub's Jobs hardware list)"
    for shown in (comment, card):
        assert "| GPU time |" in shown
        assert "| 30.0 min running |" in shown
        assert "| 4.0 min (not billed) |" in shown
        assert f"${actual.usd:.2f} (the Hub's Jobs hardware list) |" in shown
        assert estimated_usd in shown
    assert f"### Cost on Hugging Face Jobs (`{FLAVOR}`)" in comment
    assert f"## Training cost\n\nOn Hugging Face Jobs, flavor `{FLAVOR}`." in card
    assert EvalReport.from_json(report.to_json()) == report


# -- spend per adapter ----------------------------------------------------------------------


def put_record(
    api: HfApi, run_id: str, usage: dict[str, Any] | None, adapter: str = ADAPTER
) -> None:
    record = RunResult(run_id, adapter, "succeeded", None, "t0", "t1", None)
    payload = {**to_json(record), "job": usage}
    api.upload_file(
        path_or_fileobj=json.dumps(payload).encode(),
        path_in_repo=f"runs/{run_id}/run.json",
        repo_id=CANDIDATES,
    )


def test_status_spend_sums_the_actual_cost_of_every_jobs_run_of_each_adapter(
    env: Any, tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.create_repo(CANDIDATES, private=True)
    put_record(api, "a" * 16, job_usage("job-1", FLAVOR, 1800.0))
    put_record(api, "b" * 16, job_usage("job-2", "a10g-small", 600.0))
    put_record(api, "c" * 16, None)  # a local run: no cost
    put_record(api, "d" * 16, job_usage("job-4", FLAVOR, 9999.0), adapter="kwanzaa-mini-v9")
    expected = 0.5 * hub_usd_per_hour() + 600 / 3600 * hub_usd_per_hour("a10g-small")

    code, out, err = run_cli("status", "--spend", "--repo", root)

    assert code == 0, err
    assert f"{ADAPTER}: ${expected:.2f} over 2 Jobs runs" in out
    assert "waiting for a machine is not billed" in out
    assert f"total: ${expected:.2f}" in out


# -- superseded runs ------------------------------------------------------------------------


def sleeping_job(client: HubClient, rid: str, pr: str) -> str:
    """A live job of this adapter, as an earlier push's `runner train` left it."""
    job = client.run_job(
        "ainative",
        image="python:3.12",
        command=[sys.executable, "-c", "import time; time.sleep(600)"],
        env={},
        secrets={},
        flavor=FLAVOR,
        timeout_s=600,
        labels={"run-id": rid, "adapter": ADAPTER, "pr": pr},
    )
    return job.id


def test_training_a_new_run_of_a_pr_cancels_the_live_job_of_its_superseded_run(
    tiny_repo: Path, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_jobs(tiny_repo)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}), encoding="utf-8")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    client = HubClient()
    superseded = sleeping_job(client, "0" * 16, "7")
    other_pr = sleeping_job(client, "1" * 16, "8")
    try:
        code, _, err = run_cli(
            "train", f"adapters/{ADAPTER}", "--backend", "jobs", "--repo", tiny_repo
        )

        assert code == 0, err[-3000:]
        assert f"job {superseded} of superseded run {'0' * 16} cancelled" in err
        assert client.job("ainative", superseded).stage is JobStage.CANCELED
        assert not client.job("ainative", other_pr).stage.is_terminal  # another PR's: left
        assert candidate_of(tiny_repo).is_candidate
    finally:
        client.cancel_job("ainative", other_pr)
