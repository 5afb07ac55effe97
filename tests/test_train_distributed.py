"""train.py under `accelerate launch` with TRL's presets (the `jobs` backend on a multi-GPU
flavor), here as two processes on this CPU over gloo: one candidate, pushed once, recording
how many processes trained; a failure ends the launch with a failed run.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import trl

from tests import test_train_script as script_tests
from tests.test_train_script import (
    assert_one_candidate_pushed,
    by_role,
    fetch,
    run_config,
    run_script,
)

seeded = script_tests.seeded  # the fixture: tiny model, dataset and incumbent in the emulator
PRESETS = Path(trl.__file__).parent / "accelerate_configs"


def accelerate_launch(preset: str, processes: int) -> list[str]:
    """python's arguments for `accelerate launch` with TRL's preset, as the jobs backend runs
    it; no mixed precision on a CPU."""
    return [
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(PRESETS / f"{preset}.yaml"),
        "--num_processes",
        str(processes),
        "--mixed_precision",
        "no",
    ]


def two_process_config(seeded: dict[str, Any], run_id: str, **dataset: str) -> dict[str, Any]:
    parallel = {"strategy": "ddp", "processes": 2}
    return run_config(seeded, run_id, **dataset) | {"parallel": parallel}


def test_two_processes_push_one_candidate_that_records_them(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    config = two_process_config(seeded, "2222000011114444")
    (tmp_path / "run.json").write_text(json.dumps(config))
    args = ["--config", "run.json", "--output-dir", "out"]
    result = run_script(hub, tmp_path, args, launcher=accelerate_launch("multi_gpu", 2))
    assert result.returncode == 0, result.stderr[-4000:]

    prefix = "candidates/2222000011114444"
    assert_one_candidate_pushed(hub, prefix)

    record = json.loads(fetch(hub, f"{prefix}/run.json", tmp_path).read_text())
    assert (record["status"], record["error"], record["processes"]) == ("succeeded", None, 2)
    assert record["config"] == config
    rows = [
        json.loads(line) for line in fetch(hub, f"{prefix}/eval_outputs.jsonl", tmp_path).open()
    ]
    items = [row["item_id"] for row in by_role(rows, "candidate")]
    assert sorted(items) == sorted(set(items)) == items  # max_items: 3, each generated once
    assert len(items) == 3
    # The stage's start, reported by the main process alone: only it generates.
    assert result.stdout.count('@@progress {"stage": "generate"}') == 1


def test_a_failure_in_every_process_ends_the_launch_with_a_failed_run(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    config = two_process_config(seeded, "2222000011115555", train_file="missing.jsonl")
    env = {"RUN_CONFIG": json.dumps(config), "RUN_OUTPUT_DIR": str(tmp_path / "out")}
    started = time.monotonic()
    result = run_script(hub, tmp_path, [], env, launcher=accelerate_launch("multi_gpu", 2))
    assert result.returncode != 0
    assert time.monotonic() - started < 120  # ended, not waiting at a barrier

    record = json.loads(fetch(hub, "candidates/2222000011115555/run.json", tmp_path).read_text())
    assert (record["status"], record["error"]["stage"]) == ("failed", "download")
    assert "missing.jsonl" in record["error"]["message"]
    assert record["processes"] == 2


def test_two_processes_resume_a_kept_adapter_without_training_again(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    """A launch that failed after training kept its adapter on the Hub; the next launch of
    the run id fetches it (the main process first, the other reads its copy) and generates."""
    launcher = accelerate_launch("multi_gpu", 2)
    broken = two_process_config(seeded, "2222000011116666")
    broken["generation"]["max_new_tokens"] = 0  # generation refuses 0
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    first = run_script(
        hub, tmp_path, ["--config", "broken.json", "--output-dir", "first"], None, launcher
    )
    assert first.returncode != 0

    config = two_process_config(seeded, "2222000011116666")
    (tmp_path / "run.json").write_text(json.dumps(config))
    second = run_script(
        hub, tmp_path, ["--config", "run.json", "--output-dir", "second"], None, launcher
    )
    assert second.returncode == 0, second.stderr[-4000:]
    assert '"stage": "train", "step"' not in second.stdout

    prefix = "candidates/2222000011116666"
    record = json.loads(fetch(hub, f"{prefix}/run.json", tmp_path).read_text())
    assert (record["status"], record["processes"]) == ("succeeded", 2)
    metrics = json.loads(fetch(hub, f"{prefix}/metrics.json", tmp_path).read_text())
    assert metrics["resumed"] == {"from": "hub"}
