"""`runner train --backend jobs` against the emulator's Jobs API: a Hugging Face Job runs the
same train.py, exactly once per run id (a runner killed mid-watch attaches to its job), and
every way a job can fail ends with a clear message, no candidate, and a retry next time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.hub.client import HubClient
from runner.hub.jobs import JobStage
from runner.space import image
from tests.conftest import ADAPTER, TOKEN, RunCli, candidate_of, edit

NAMESPACE = "ainative"
FLAVOR = "a10g-small"
# A runner in a subprocess: the one a SIGKILL can end mid-watch.
RUNNER = "import sys; from runner.cli import main; sys.exit(main(sys.argv[1:]))"
JOB_START_S = 120.0


@pytest.fixture
def jobs_repo(tiny_repo: Path) -> Path:
    """The tiny adapter with `backend: jobs` on a GPU flavor."""
    spec = tiny_repo / "adapters" / ADAPTER / "adapter.yaml"
    edit(spec, "backend: local", f"backend: jobs\n  flavor: {FLAVOR}")
    return tiny_repo


def train(run_cli: RunCli, root: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("train", f"adapters/{ADAPTER}", "--backend", "jobs", *extra, "--repo", root)


def test_a_job_trains_the_candidate_once_and_a_killed_runner_attaches_to_it(
    jobs_repo: Path, env: Any, run_cli: RunCli
) -> None:
    command = [sys.executable, "-c", RUNNER, "train", f"adapters/{ADAPTER}"]
    command += ["--backend", "jobs", "--repo", str(jobs_repo)]
    runner = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        job = wait_for_running_job(env)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()

    code, out, err = train(run_cli, jobs_repo)
    assert code == 0, err[-3000:]
    assert f"job {job} attached" in err
    assert [launch["id"] for launch in env.job_launches()] == [job]  # exactly one job
    run = candidate_of(jobs_repo)
    assert run.is_candidate, run.error
    usage = run.record.job
    assert (usage.job_id, usage.flavor) == (job, FLAVOR)
    assert usage.running_s > 0

    code, out, err = train(run_cli, jobs_repo)
    assert code == 0, err[-3000:]
    assert "reused" in out
    assert len(env.job_launches()) == 1  # the second call launches nothing


def wait_for_running_job(hub: Any) -> str:
    """The id of the first job once it runs (its runner is then watching it)."""
    client = HubClient()
    deadline = time.monotonic() + JOB_START_S
    while time.monotonic() < deadline:
        for launch in hub.job_launches():
            if client.job(NAMESPACE, launch["id"]).stage == JobStage.RUNNING:
                return launch["id"]
        time.sleep(0.2)
    raise AssertionError(f"no job ran within {JOB_START_S:g}s: {hub.job_launches()}")


def test_a_dropped_log_stream_is_reopened_and_the_run_still_makes_its_candidate(
    jobs_repo: Path, env: Any, run_cli: RunCli
) -> None:
    env.script_jobs("drop_logs", namespace=NAMESPACE, lines=2)
    code, out, err = train(run_cli, jobs_repo)
    assert code == 0, err[-3000:]
    assert "trained" in out
    assert candidate_of(jobs_repo).is_candidate
    job = env.job_launches()[0]["id"]
    opened = [r for r in env.requests() if r["path"].endswith(f"/{job}/logs")]
    assert len(opened) >= 2


@pytest.mark.parametrize(
    ("outcome", "extra", "expected"),
    [
        ("error", (), ("ended ERROR",)),
        (
            "scheduling",
            (),
            (f"on {FLAVOR} found no machine within the 0.05 min scheduling deadline",),
        ),
        # The Hub stops a job at the cost ceiling even with no runner watching; without
        # policies/training.yaml that is 3x the timeout, 2 s here, so which of the two stops it
        # first (the Hub's timeout, or the watching runner's cancel) is a race.
        (None, ("--timeout-minutes", "0.01"), ("timed out after 2 seconds", "cost ceiling")),
    ],
)
def test_a_job_that_fails_stalls_or_overruns_ends_clearly_and_the_next_run_retries(
    jobs_repo: Path,
    env: Any,
    run_cli: RunCli,
    outcome: str | None,
    extra: tuple[str, ...],
    expected: tuple[str, ...],
) -> None:
    spec = jobs_repo / "adapters" / ADAPTER / "adapter.yaml"
    edit(spec, "timeout_minutes: 30", "timeout_minutes: 30\n  scheduling_deadline_minutes: 0.05")
    (jobs_repo / "policies" / "training.yaml").unlink()
    if outcome is not None:
        env.script_jobs(outcome, namespace=NAMESPACE)
    code, _, err = train(run_cli, jobs_repo, *extra)
    assert code == 1
    assert any(message in err for message in expected), err[-3000:]
    assert "made no candidate" in err
    assert "Traceback (most recent call last)" not in err
    run = candidate_of(jobs_repo)
    assert run is None or not run.is_candidate
    first = env.job_launches()[0]["id"]
    assert HubClient().job(NAMESPACE, first).stage.is_terminal  # nothing left billing

    env.script_jobs("error", namespace=NAMESPACE)  # the retry's own outcome does not matter here
    code, _, err = train(run_cli, jobs_repo)
    assert code == 1
    assert [launch["id"] for launch in env.job_launches()][:1] == [first]
    assert len(env.job_launches()) == 2  # a new job, not the ended one


def test_the_jobs_backend_needs_a_flavor_and_other_backends_refuse_one(
    tiny_repo: Path, run_cli: RunCli
) -> None:
    spec = tiny_repo / "adapters" / ADAPTER / "adapter.yaml"
    edit(spec, "backend: local", "backend: local\n  flavor: a10g-small")
    code, out, err = run_cli("validate", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert code == 2  # a spec error
    assert "backend local does not run one: remove `flavor`" in out + err

    edit(spec, "backend: local\n  flavor: a10g-small", "backend: jobs")
    code, out, err = run_cli("validate", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert code == 2
    assert "backend jobs runs on a Hugging Face Jobs flavor: set `flavor`" in out + err


def test_backend_jobs_on_a_spec_without_a_flavor_is_refused_before_anything_is_pushed(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    datasets_before = list(hub_api(env).list_datasets(author=NAMESPACE))

    code, _, err = train(run_cli, tiny_repo)

    assert code == 2, err[-3000:]
    assert "the jobs backend needs `training.flavor`" in err
    assert f"adapters/{ADAPTER}/adapter.yaml:{training_line(tiny_repo)}: " in err
    assert list(hub_api(env).list_datasets(author=NAMESPACE)) == datasets_before
    assert env.job_launches() == []


def test_a_job_runs_the_digest_pinned_image_and_installs_the_space_images_pins_first(
    jobs_repo: Path, env: Any, run_cli: RunCli
) -> None:
    code, _, err = train(run_cli, jobs_repo)
    assert code == 0, err[-3000:]

    [launch] = env.job_launches()
    job = hub_api(env).inspect_job(job_id=launch["id"], namespace=NAMESPACE)
    assert job.docker_image == image.JOB_IMAGE == f"{image.BASE_IMAGE}@sha256:{job_digest()}"
    [shell, flag, script] = job.command or []
    assert (shell, flag) == ("sh", "-c")
    steps = script.split(" && ")
    assert steps[:-1] == [f"{image.PIP_INSTALL} {packages}" for packages in image.TRAINING_INSTALLS]
    assert steps[-1].startswith("exec python /adapter-gitops/code/")
    log = "\n".join(HubClient().job_log_lines(NAMESPACE, job.id))
    for pin in image.PACKAGES:
        assert f"Requirement already satisfied: {pin}" in log


def test_a_multi_gpu_flavor_trains_through_accelerate_launch_one_process_per_gpu(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    """`distributed: ddp` on a 2-GPU flavor: the job starts train.py with TRL's DDP preset
    and 2 processes (here 2 real gloo ranks on the CPU), and one candidate comes out."""
    spec = tiny_repo / "adapters" / ADAPTER / "adapter.yaml"
    edit(spec, "backend: local", "backend: jobs\n  flavor: a10g-largex2\n  distributed: ddp")

    code, _, err = train(run_cli, tiny_repo)

    assert code == 0, err[-3000:]
    run = candidate_of(tiny_repo)
    assert run.is_candidate, run.error
    assert run.record.processes == 2
    [launch] = env.job_launches()
    [_, _, script] = hub_api(env).inspect_job(job_id=launch["id"], namespace=NAMESPACE).command
    launched = script.split(" && ")[-1]
    assert launched.startswith("exec accelerate launch --config_file ")
    assert '"multi_gpu.yaml"' in launched
    assert "--num_processes 2 " in launched


def training_line(root: Path) -> int:
    text = (root / "adapters" / ADAPTER / "adapter.yaml").read_text()
    return text.splitlines().index("training:") + 1


def hub_api(hub: Any) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


def job_digest() -> str:
    return image.JOB_IMAGE.rsplit("@sha256:", 1)[1]
