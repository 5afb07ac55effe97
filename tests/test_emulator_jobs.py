"""Hugging Face Jobs on the local Hub: the job's command runs as a local process through the
Hub's stages, with its environment, secrets and read-only repo volumes; its logs and metrics
stream as server-sent events; cancel and timeouts end it; tests script the outcomes the real
Hub gives now and then. Driven through huggingface_hub's own HfApi and the runner's
HubClient."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, JobHardwareInfo, Volume
from huggingface_hub.errors import HfHubHTTPError

from runner.hub.client import HubClient, HubError
from runner.hub.jobs import Job, JobStage
from tests.conftest import TOKEN

NAMESPACE = "ainative"
READ_TOKEN = "hf_readOnlyToken123456"
SECRET = "hf_jobSecret98765"


@pytest.fixture
def api(hub: Any) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture
def client(hub: Any) -> HubClient:
    return HubClient(endpoint=hub.endpoint, token=TOKEN)


def python_job(client: HubClient, code: str, **overrides: Any) -> Job:
    settings: dict[str, Any] = {
        "image": "python:3.12",
        "command": ["python", "-c", code],
        "env": {},
        "secrets": {},
        "flavor": "cpu-basic",
        "timeout_s": 120,
        "labels": {"test": "jobs"},
    }
    return client.run_job(NAMESPACE, **{**settings, **overrides})


def wait_for_end(client: HubClient, job: Job, limit_s: float = 60) -> Job:
    deadline = time.monotonic() + limit_s
    while not (job := client.job(NAMESPACE, job.id)).stage.is_terminal:
        assert time.monotonic() < deadline, f"job still {job.stage}"
        time.sleep(0.1)
    return job


def wait_for_stage(client: HubClient, job: Job, stage: JobStage) -> Job:
    deadline = time.monotonic() + 30
    while (job := client.job(NAMESPACE, job.id)).stage != stage:
        assert time.monotonic() < deadline, f"job still {job.stage}"
        time.sleep(0.05)
    return job


def test_a_job_runs_its_python_command_and_completes_with_its_logs(
    api: HfApi, client: HubClient
) -> None:
    code = "import time\nfor i in range(3):\n    print('step', i)\n    time.sleep(0.2)"
    info = api.run_job(image="python:3.12", command=["python", "-c", code], namespace=NAMESPACE)
    assert info.status.stage in ("SCHEDULING", "RUNNING")
    assert info.owner.name == NAMESPACE
    assert info.flavor == "cpu-basic"

    followed = list(client.job_log_lines(NAMESPACE, info.id))

    assert followed == ["step 0", "step 1", "step 2"]
    done = api.inspect_job(job_id=info.id, namespace=NAMESPACE)
    assert done.status.stage == "COMPLETED"
    assert done.finished_at is not None
    assert done.durations is not None
    assert done.durations.running_secs is not None
    assert done.durations.scheduling_secs is not None
    assert list(api.fetch_job_logs(job_id=info.id, namespace=NAMESPACE)) == followed
    assert list(api.fetch_job_logs(job_id=info.id, namespace=NAMESPACE, tail=1)) == ["step 2"]
    job = client.job(NAMESPACE, info.id)
    assert job.stage is JobStage.COMPLETED
    assert job.running_s is not None
    assert job.url == f"{api.endpoint}/jobs/{NAMESPACE}/{info.id}"


def test_env_and_secrets_reach_the_job_and_secrets_never_come_back(
    hub: Any, api: HfApi, client: HubClient
) -> None:
    # The job prints the secret reversed: the command itself never holds it.
    code = "import os; e = os.environ; print(e['MODE'], e['HF_TOKEN'][::-1], e['HF_ENDPOINT'])"
    job = python_job(client, code, env={"MODE": "train"}, secrets={"HF_TOKEN": SECRET})

    assert wait_for_end(client, job).stage is JobStage.COMPLETED
    assert list(client.job_log_lines(NAMESPACE, job.id)) == [f"train {SECRET[::-1]} {hub.endpoint}"]
    info = api.inspect_job(job_id=job.id, namespace=NAMESPACE)
    assert info.environment == {"MODE": "train"}
    assert info.secrets is not None
    assert "HF_TOKEN" in info.secrets
    answers = [
        httpx.get(f"{hub.endpoint}/api/jobs/{NAMESPACE}{path}", headers=auth(TOKEN), timeout=30)
        for path in ("", f"/{job.id}")
    ]
    assert all(SECRET not in answer.text for answer in answers)
    assert SECRET not in str(hub.job_launches())


def test_a_model_repo_at_a_revision_is_mounted_read_only_at_its_mount_path(
    hub: Any, client: HubClient
) -> None:
    first = hub.seed("ainative/weights", {"config.json": b'{"v": 1}'})
    hub.seed("ainative/weights", {"config.json": b'{"v": 2}'})
    code = (
        "import pathlib\n"
        "print(pathlib.Path('/models/base/config.json').read_text())\n"
        "modes = [p.stat().st_mode for p in pathlib.Path('/models/base').rglob('*')]\n"
        "print('read-only' if not any(mode & 0o222 for mode in modes) else 'writable')\n"
    )
    job = python_job(
        client,
        code,
        volumes=[("model", "ainative/weights", first, "/models/base")],
        env={"BASE": "/models/base/config.json"},
    )

    assert wait_for_end(client, job).stage is JobStage.COMPLETED
    assert list(client.job_log_lines(NAMESPACE, job.id)) == ['{"v": 1}', "read-only"]


def test_a_mount_path_in_the_environment_points_at_the_volume(hub: Any, client: HubClient) -> None:
    commit = hub.seed("ainative/data", {"train.jsonl": b"{}\n"}, repo_type="dataset")
    code = "import os, pathlib; print(pathlib.Path(os.environ['DATA']).read_text().strip())"
    job = python_job(
        client,
        code,
        volumes=[("dataset", "ainative/data", commit, "/data")],
        env={"DATA": "/data/train.jsonl"},
    )

    assert wait_for_end(client, job).stage is JobStage.COMPLETED
    assert list(client.job_log_lines(NAMESPACE, job.id)) == ["{}"]


def test_cancel_kills_the_job_and_the_processes_it_started(
    client: HubClient, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{child.pid}}')\n"
        "print('started', flush=True)\n"
        "time.sleep(300)\n"
    )
    job = python_job(client, code)
    wait_for_stage(client, job, JobStage.RUNNING)
    deadline = time.monotonic() + 30
    while not pids.exists() or not pids.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    client.cancel_job(NAMESPACE, job.id)

    assert client.job(NAMESPACE, job.id).stage is JobStage.CANCELED
    child = int(pids.read_text())
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the job's child process survived the cancel"
        time.sleep(0.05)


def test_a_non_zero_exit_ends_the_job_in_error_with_a_message(client: HubClient) -> None:
    job = python_job(client, "import sys; print('failing'); sys.exit(3)")

    ended = wait_for_end(client, job)

    assert ended.stage is JobStage.ERROR
    assert ended.message is not None
    assert "3" in ended.message


def test_a_command_missing_from_the_image_ends_the_job_in_error(client: HubClient) -> None:
    job = python_job(client, "", command=["no-such-command-in-this-image"])

    ended = wait_for_end(client, job)

    assert ended.stage is JobStage.ERROR
    assert ended.message is not None
    assert "no-such-command-in-this-image" in ended.message


def test_the_images_pip_installs_nothing_and_fails_for_a_package_this_python_lacks(
    client: HubClient,
) -> None:
    """A job here runs in the emulator's own Python: `pip install` of what it has succeeds
    without touching it, one it lacks fails as a real image's pip would."""
    shell = "pip install {} --index-url https://example.invalid && exec python -c 'print(1)'"
    ok = python_job(client, "", command=["sh", "-c", shell.format("pydantic==0.0.1")])
    lacking = python_job(client, "", command=["sh", "-c", shell.format("no-such-package==1.0")])

    assert wait_for_end(client, ok).stage is JobStage.COMPLETED
    log = "\n".join(client.job_log_lines(NAMESPACE, ok.id))
    assert "Requirement already satisfied: pydantic==0.0.1 (here pydantic 2." in log
    ended = wait_for_end(client, lacking)
    assert ended.stage is JobStage.ERROR
    assert "No matching distribution found for no-such-package==1.0" in "\n".join(
        client.job_log_lines(NAMESPACE, lacking.id)
    )


def test_a_job_past_its_timeout_ends_in_error_naming_the_timeout(client: HubClient) -> None:
    job = python_job(client, "import time; print('slow', flush=True); time.sleep(60)", timeout_s=1)

    ended = wait_for_end(client, job)

    assert ended.stage is JobStage.ERROR
    assert ended.message is not None
    assert "timed out" in ended.message
    assert "1 s" in ended.message


def test_a_job_scripted_to_stay_in_scheduling_never_starts(hub: Any, client: HubClient) -> None:
    hub.script_jobs("scheduling", namespace=NAMESPACE)
    stuck = python_job(client, "print('never')")
    time.sleep(1)

    assert client.job(NAMESPACE, stuck.id).stage is JobStage.SCHEDULING
    client.cancel_job(NAMESPACE, stuck.id)
    assert client.job(NAMESPACE, stuck.id).stage is JobStage.CANCELED
    # Only the next job was scripted.
    assert wait_for_end(client, python_job(client, "print(1)")).stage is JobStage.COMPLETED


def test_jobs_with_a_scripted_label_fail_with_error_at_start(hub: Any, client: HubClient) -> None:
    hub.script_jobs("error", label="run=doomed", times=None)

    failed = [python_job(client, "print(1)", labels={"run": "doomed"}) for _ in range(2)]
    other = python_job(client, "print(1)", labels={"run": "fine"})

    assert [wait_for_end(client, job).stage for job in failed] == [JobStage.ERROR] * 2
    assert wait_for_end(client, other).stage is JobStage.COMPLETED


def test_a_dropped_log_stream_ends_while_the_job_goes_on(
    hub: Any, api: HfApi, client: HubClient
) -> None:
    hub.script_jobs("drop_logs", namespace=NAMESPACE, lines=2)
    # The first stream closes after two lines; the job prints more for seconds after.
    code = "import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(i)"
    job = python_job(client, code)

    first = list(client.job_log_lines(NAMESPACE, job.id))

    assert first == ["line 0", "line 1"]
    assert client.job(NAMESPACE, job.id).stage is JobStage.RUNNING
    assert list(client.job_log_lines(NAMESPACE, job.id)) == [f"line {i}" for i in range(4)]
    # huggingface_hub's own follower reconnects and skips the lines it has.
    assert list(api.fetch_job_logs(job_id=job.id, namespace=NAMESPACE, follow=True)) == [
        f"line {i}" for i in range(4)
    ]


def test_a_launch_whose_answer_is_lost_starts_one_job_not_two(hub: Any, client: HubClient) -> None:
    hub.fail("POST", rf"^/api/jobs/{NAMESPACE}$", mode="lost_reply")

    job = python_job(client, "print(1)", labels={"run-id": "once"})

    assert [entry["id"] for entry in hub.job_launches()] == [job.id]
    assert job.labels["run-id"] == "once"


def test_find_jobs_by_labels_and_the_launch_log_counts_every_job(
    hub: Any, client: HubClient
) -> None:
    runs = [python_job(client, "print(1)", labels={"run-id": rid, "pr": "7"}) for rid in "aab"]

    found = client.find_jobs(NAMESPACE, {"run-id": "a", "pr": "7"})

    assert sorted(job.id for job in found) == sorted(job.id for job in runs[:2])
    launched = [entry["labels"].get("run-id") for entry in hub.job_launches()]
    assert launched.count("a") == 2
    assert launched.count("b") == 1


def test_another_process_scripts_jobs_and_reads_the_launch_log_over_http(
    hub: Any, client: HubClient
) -> None:
    control = f"{hub.endpoint}/_emulator/jobs"
    body = {"outcome": "scheduling", "label": "run-id=stuck"}
    assert httpx.post(f"{control}/script", json=body, timeout=30).status_code == 200

    job = python_job(client, "print(1)", labels={"run-id": "stuck"})

    launches = httpx.get(f"{control}/launches", timeout=30).json()
    assert [(entry["id"], entry["labels"]["run-id"]) for entry in launches] == [(job.id, "stuck")]
    time.sleep(0.5)
    assert client.job(NAMESPACE, job.id).stage is JobStage.SCHEDULING
    client.cancel_job(NAMESPACE, job.id)
    refused = httpx.post(f"{control}/script", json={"outcome": "error"}, timeout=30)
    assert refused.status_code == 400  # neither a namespace nor a label


def test_metrics_stream_samples_while_the_job_runs(client: HubClient) -> None:
    job = python_job(client, "import time; time.sleep(3)", flavor="a10g-largex2")
    wait_for_stage(client, job, JobStage.RUNNING)

    sample = next(iter(client.job_metrics(NAMESPACE, job.id)))

    assert sample["memory_used_bytes"] > 0
    assert len(sample["gpus"]) == 2
    assert wait_for_end(client, job).stage is JobStage.COMPLETED
    assert list(client.job_metrics(NAMESPACE, job.id)) == []


def test_the_hardware_list_parses_with_huggingface_hubs_job_hardware_info(
    api: HfApi, client: HubClient
) -> None:
    hardware = {info.name: info for info in api.list_jobs_hardware()}

    assert isinstance(hardware["cpu-basic"], JobHardwareInfo)
    assert hardware["cpu-basic"].unit_cost_micro_usd == 167  # $0.01 an hour, per minute
    assert hardware["cpu-basic"].accelerator is None
    a100 = hardware["a100x8"]
    assert a100.accelerator is not None
    assert a100.accelerator.quantity == "8"
    assert a100.unit_label == "minute"
    flavors = {flavor.name: flavor for flavor in client.job_flavors()}
    assert flavors["a100x8"].gpus == 8
    assert flavors["a100x8"].gpu_memory_gb == 80
    assert flavors["a100x8"].usd_per_minute == pytest.approx(20 / 60, rel=1e-3)
    assert flavors["cpu-basic"].gpus == 0
    assert flavors["cpu-basic"].gpu_memory_gb is None


def test_a_read_token_cannot_run_or_cancel_a_job_but_may_inspect_it(
    hub: Any, client: HubClient
) -> None:
    hub.add_accounts({"tokens": [{"token": READ_TOKEN, "user": NAMESPACE, "role": "read"}]})
    reader = HfApi(endpoint=hub.endpoint, token=READ_TOKEN)
    with pytest.raises(HfHubHTTPError) as refused:
        reader.run_job(image="python:3.12", command=["python", "-c", "1"], namespace=NAMESPACE)
    assert refused.value.response.status_code == 403
    job = python_job(client, "import time; time.sleep(30)")

    assert reader.inspect_job(job_id=job.id, namespace=NAMESPACE).id == job.id
    with pytest.raises(HubError) as cancel_refused:
        HubClient(endpoint=hub.endpoint, token=READ_TOKEN).cancel_job(NAMESPACE, job.id)
    assert cancel_refused.value.status == 403
    assert hub.job_launches()
    assert len(hub.job_launches()) == 1
    client.cancel_job(NAMESPACE, job.id)


def test_an_unknown_flavor_or_job_is_refused(api: HfApi, client: HubClient) -> None:
    with pytest.raises(HfHubHTTPError) as unknown_flavor:
        api.run_job(image="python:3.12", command=["true"], flavor="h100x9", namespace=NAMESPACE)
    assert unknown_flavor.value.response.status_code == 400
    with pytest.raises(HubError) as missing:
        client.job(NAMESPACE, "0" * 24)
    assert missing.value.status == 404


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its dead parent's reaper) is gone for good.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_job_answers_with_its_volumes_as_huggingface_hub_sent_them(api: HfApi, hub: Any) -> None:
    commit = hub.seed("ainative/weights", {"a.txt": b"a"})
    info = api.run_job(
        image="python:3.12",
        command=["python", "-c", "print(open('/w/a.txt').read())"],
        volumes=[Volume(type="model", source="ainative/weights", mount_path="/w", revision=commit)],
        namespace=NAMESPACE,
    )

    assert info.volumes is not None
    assert info.volumes[0].mount_path == "/w"
    assert info.volumes[0].revision == commit
