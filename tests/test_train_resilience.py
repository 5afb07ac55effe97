"""train.py against a flaky Hub: every request retried on its own (the runner's policy), a
timeout on every silence, downloads file by file, and a trained adapter never thrown away:
it is kept (in the output folder and at the candidate location, run.json status "trained")
and a later run of the same run id uploads it without training again. Also: bitsandbytes'
advice to install `kernels` stays out of the training and smoke logs, and the emulator's
random faults."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
from huggingface_hub import HfApi

from runner.engines.trl import TRL
from runner.hub import retry
from runner.hub.client import HubClient
from runner.runs.location import CandidateLocation
from runner.runs.record import read_run
from runner.train import train as script
from tests import test_train_script as script_tests
from tests.test_train_script import OUTPUT_REPO, TOKEN, fetch, run_config, run_script

seeded = script_tests.seeded  # the fixture: tiny model, dataset and incumbent in the emulator

RUNNER = str(Path(sys.executable).with_name("runner"))  # the installed command
TRAIN_EVENT = '@@progress {"stage": "train"'
# What bitsandbytes logs at import on CPUs with avx512_bf16 when `kernels` is not installed.
KERNELS_ADVICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def config_for(seeded: dict[str, Any], run_id: str, **generation: int) -> dict[str, Any]:
    """The test run config, its candidate where the runner looks for it (`runs/<run id>`)."""
    config = run_config(seeded, run_id)
    config["output"]["path_in_repo"] = f"runs/{run_id}"
    config["generation"] |= generation
    return config


def train(
    hub: Any, tmp_path: Path, config: dict[str, Any], out: str, **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return run_script(
        hub,
        tmp_path,
        ["--config", "config.json", "--output-dir", out],
        {"PYTHONUNBUFFERED": "1"} | env,
    )


def hub_json(hub: Any, path: str, tmp_path: Path, revision: str | None = None) -> dict[str, Any]:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    local = api.hf_hub_download(OUTPUT_REPO, path, revision=revision, cache_dir=tmp_path / "fetch")
    return json.loads(Path(local).read_text())


def run_record(hub: Any, run_id: str) -> Any:
    location = CandidateLocation(OUTPUT_REPO, run_id)
    return read_run(HubClient(hub.endpoint, TOKEN), location, required=TRL.required_files)


def test_train_script_retries_and_times_out_like_the_runner() -> None:
    """train.py cannot import the runner: its restated policy must not drift from it."""
    assert script.RETRY_STATUS == retry.RETRY_STATUS
    ours = dataclasses.asdict(script.RetryPolicy())
    assert ours == {name: getattr(retry.RetryPolicy(), name) for name in ours}
    knobs = ("ENV_TIMEOUT", "ENV_DEADLINE", "ENV_TRANSFER_DEADLINE")
    assert [getattr(script, k) for k in knobs] == [getattr(retry, k) for k in knobs]
    assert script.WINDOW_MARGIN == retry.WINDOW_MARGIN
    for headers in (
        {"Retry-After": "7"},
        {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
        {"RateLimit": '"api";r=0;t=55'},
        {"RateLimit": '"api";r=3;t=55'},
        {"Retry-After": "7", "RateLimit": '"api";r=0;t=55'},
        {},
    ):
        for status in (429, 503):
            theirs = script.wait_hint(status, httpx2.Headers(headers))
            assert theirs == retry.wait_hint(status, httpx2.Headers(headers))
    steady = dataclasses.replace(script.RetryPolicy(), jitter=0.0)
    runner_steady = dataclasses.replace(retry.RetryPolicy(), jitter=0.0)
    assert [steady.backoff(n) for n in range(1, 8)] == [
        runner_steady.backoff(n) for n in range(1, 8)
    ]


def test_503_429_resets_and_stalls_during_download_and_upload_still_make_a_candidate(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    tiny, data = "runner-tests/tiny-random-llama", "ainative/kwanzaa-mini-data"
    faults = [
        ("GET", rf"^/api/models/{tiny}/revision/", {"mode": "reset"}),
        ("HEAD", rf"^/{tiny}/resolve/.+/config\.json$", {"status": 503}),
        ("GET", rf"^/{tiny}/resolve/.+/model\.safetensors$", {"mode": "reset"}),
        ("HEAD", rf"^/datasets/{data}/resolve/.+/train\.jsonl$", {"status": 429, "retry_after": 1}),
        ("GET", r"^/api/models/ainative/kwanzaa-mini/revision/", {"mode": "timeout", "delay": 60}),
        ("POST", r"^/api/repos/create$", {"status": 502}),
        ("POST", rf"^/api/models/{OUTPUT_REPO}/preupload/", {"status": 503}),
        ("POST", rf"^/api/models/{OUTPUT_REPO}/commit/", {"mode": "reset"}),
    ]
    for method, path, fault in faults:
        hub.fail(method, path, times=1, **fault)

    # A stall costs the timeout, not the emulator's 60 s hold.
    result = train(
        hub, tmp_path, config_for(seeded, "1111222233334444"), "out", RUNNER_HUB_TIMEOUT="3"
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    unspent = [rule for rule in hub.ctx.faults.rules() if rule["hits"] != 1]
    assert not unspent, unspent  # every fault was met once, and survived
    assert "retrying in" in log
    assert TOKEN not in log
    assert KERNELS_ADVICE not in log

    record = hub_json(hub, "runs/1111222233334444/run.json", tmp_path)
    assert (record["status"], record["error"]) == ("succeeded", None)
    # The adapter went up as soon as it was trained, before the eval outputs.
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    kept = next(c for c in api.list_repo_commits(OUTPUT_REPO) if c.title.startswith("Trained "))
    early = hub_json(hub, "runs/1111222233334444/run.json", tmp_path, revision=kept.commit_id)
    assert early["status"] == "trained"
    assert early["sha256"] == record["sha256"]


def test_an_upload_that_fails_after_training_keeps_the_adapter_and_the_next_run_only_uploads(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    hub.fail("POST", r"/commit/", status=403, times=None)
    config = config_for(seeded, "2222333344445555")
    first = train(hub, tmp_path, config, "out")
    assert first.returncode == 1, first.stderr[-4000:]
    assert TRAIN_EVENT in first.stdout
    kept = json.loads((tmp_path / "out" / "trained" / "run.json").read_text())
    assert kept["status"] == "trained"
    assert json.loads((tmp_path / "out" / "run.json").read_text())["error"]["stage"] == "upload"

    hub.clear_faults()
    second = train(hub, tmp_path, config, "out")
    assert second.returncode == 0, second.stderr[-4000:]
    assert TRAIN_EVENT not in second.stdout  # not trained again
    assert "training skipped" in second.stderr
    record = hub_json(hub, "runs/2222333344445555/run.json", tmp_path)
    assert record["status"] == "succeeded"
    assert record["sha256"] == kept["sha256"]
    metrics = hub_json(hub, "runs/2222333344445555/metrics.json", tmp_path)
    assert metrics["resumed"] == {"from": "local"}
    assert "train" not in metrics["durations_s"]
    assert len(metrics["training"]["loss_history"]) == 5  # the first run's training
    adapter = fetch(hub, "runs/2222333344445555/adapter_model.safetensors", tmp_path)
    assert adapter.read_bytes() == (tmp_path / "out/trained/adapter_model.safetensors").read_bytes()
    assert run_record(hub, "2222333344445555").is_candidate


def test_a_run_that_failed_after_training_leaves_a_trained_adapter_a_fresh_run_only_generates(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    """As a Space that restarts with nothing local: the adapter comes back from the Hub."""
    broken = config_for(seeded, "3333444455556666", max_new_tokens=0)  # generation refuses 0
    first = train(hub, tmp_path, broken, "first")
    assert first.returncode == 1, first.stderr[-4000:]
    assert TRAIN_EVENT in first.stdout
    run = run_record(hub, "3333444455556666")
    assert (run.status, run.is_trained, run.is_candidate) == ("trained", True, False)
    assert run.error.startswith("trained, eval outputs not made yet")
    assert "failed in stage generate" in run.error

    # An attempt that cannot fetch the kept adapter leaves it where it is, for the next one.
    kept_file = r"^/ainative/kwanzaa-mini-lora/resolve/[0-9a-f]+/runs/3333444455556666/adapter_"
    hub.fail(None, kept_file, status=403, times=None)
    blocked = train(hub, tmp_path, config_for(seeded, "3333444455556666"), "blocked")
    assert blocked.returncode == 1, blocked.stderr[-4000:]
    assert TRAIN_EVENT not in blocked.stdout
    assert run_record(hub, "3333444455556666").is_trained
    hub.clear_faults()

    second = train(hub, tmp_path, config_for(seeded, "3333444455556666"), "second")
    assert second.returncode == 0, second.stderr[-4000:]
    assert TRAIN_EVENT not in second.stdout
    metrics = hub_json(hub, "runs/3333444455556666/metrics.json", tmp_path)
    assert metrics["resumed"] == {"from": "hub"}
    run = run_record(hub, "3333444455556666")
    assert run.is_candidate
    assert (
        run.record.sha256 == json.loads((tmp_path / "first/trained/run.json").read_text())["sha256"]
    )
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    assert sum(c.title.startswith("Trained ") for c in api.list_repo_commits(OUTPUT_REPO)) == 1


def test_the_kernels_advice_of_bitsandbytes_is_dropped_and_its_other_warnings_kept() -> None:
    code = (
        "import logging\n"
        "import runner.train.train\n"
        "import bitsandbytes\n"  # logs the advice on CPUs with avx512_bf16
        "log = logging.getLogger('bitsandbytes.backends.cpu.ops')\n"
        f"log.warning('{KERNELS_ADVICE}: No module named kernels. Please pip install kernels')\n"
        "log.warning('some other bitsandbytes warning')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "kernels" not in result.stderr
    assert "some other bitsandbytes warning" in result.stderr


def test_the_smoke_log_has_no_kernels_advice(tiny_repo: Path, env: Any) -> None:
    result = subprocess.run(
        [RUNNER, "smoke", "kwanzaa-mini-v1", "--steps", "1", "--repo", str(tiny_repo)],
        env={**os.environ, "HF_ENDPOINT": env.endpoint},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "smoke passed" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert "kernels" not in result.stdout + result.stderr


def test_random_faults_hit_a_seeded_share_of_requests(hub: Any) -> None:
    def kinds(seed: int) -> list[str | None]:
        httpx.delete(f"{hub.endpoint}/_emulator/faults")
        httpx.delete(f"{hub.endpoint}/_emulator/requests")
        rule = {
            "path": "^/api/whoami",
            "mode": "random",
            "share": 0.3,
            "seed": seed,
            "times": None,
            "delay": 0.1,
        }
        assert httpx.post(f"{hub.endpoint}/_emulator/faults", json=rule).status_code == 200
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):  # a reset or a stall: the fault
                httpx.get(
                    f"{hub.endpoint}/api/whoami-v2", headers={"authorization": f"Bearer {TOKEN}"}
                )
        return [entry["fault"] for entry in hub.requests()]

    first = kinds(7)
    hit = [fault for fault in first if fault]
    assert 40 <= len(hit) <= 80  # 30% of 200, give or take
    assert set(hit) == {"status 503", "status 429", "reset", "timeout"}
    assert kinds(7) == first  # the same seed, the same faults
    assert kinds(8) != first
