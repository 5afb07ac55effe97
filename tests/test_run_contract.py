"""The run contract: the run config the runner renders and train.py reads, and the run.json
train.py writes and the runner reads, as one set of classes in train.py. They load without
torch (the runner's core install), their JSON checks name each bad key by its path, and
whatever run.json the Hub holds reads as a status, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from runner.backends.jobs import ACCELERATE_PRESETS
from runner.data.publish import PushedDataset
from runner.engines.trl import TRL
from runner.hub.client import HubClient
from runner.runs.config import dumps, render_run_config
from runner.runs.location import CandidateLocation
from runner.runs.record import read_run
from runner.specs import require_adapter
from runner.specs.adapter import Distributed
from runner.train import train as script
from runner.workspace import Workspace
from tests.test_train_script import training_config

TOKEN = "hf_emulatorSecretToken1234"
OUTPUT_REPO = "ainative/contract-candidates"
HEAVY = ["torch", "transformers", "peft", "trl", "datasets", "httpx2", "huggingface_hub"]


def config_json(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "run_id": "0123456789abcdef",
        "adapter": "demo-v1",
        "task": "code_assistant",
        "base_model": {"repo_id": "org/base", "revision": "a" * 40},
        "dataset": {
            "repo_id": "org/data",
            "revision": "b" * 40,
            "train_file": "t",
            "eval_file": "e",
        },
        "training": training_config(),
        "generation": {"max_new_tokens": 8, "batch_size": 2, "max_items": None},
        "incumbent": None,
        "output": {"repo_id": OUTPUT_REPO, "repo_type": "model", "path_in_repo": "runs/x"},
        "parallel": None,
    }
    return config | changes


def test_train_py_parses_a_run_config_without_its_libraries(tmp_path: Path) -> None:
    """The runner's core install has none of train.py's libraries: the contract must load,
    and train.py must stay standalone (never importing the runner)."""
    code = "\n".join(
        [
            "import os, sys",
            *(f"sys.modules[{name!r}] = None" for name in [*HEAVY, "runner"]),
            f"sys.path.insert(0, {str(Path(script.__file__).parent)!r})",
            "import train",
            "config = train.parse_run_config(train.read_config(None))",
            "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'",
            "print(config.run_id, config.training.r, config.incumbent)",
        ]
    )
    env = {"PATH": os.environ.get("PATH", ""), "RUN_CONFIG": json.dumps(config_json())}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["0123456789abcdef", "8", "None"]


def test_a_parsed_config_writes_back_the_json_it_came_from() -> None:
    config = config_json(incumbent={"repo_id": "org/adapter", "revision": "c" * 40})
    parsed = script.parse_run_config(config)
    assert parsed.incumbent == script.ModelRef("org/adapter", "c" * 40)
    assert parsed.training.quantization is None
    assert script.to_json(parsed) == config


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"task": "poetry"}, "task: expected one of ['citation_grounded_chat', 'code_assistant']"),
        ({"run_id": "XYZ"}, "run_id: expected 16 lowercase hex characters"),
        ({"base_model": "org/base"}, "base_model: expected an object, got str"),
        ({"incumbent": {"repo_id": "org/a"}}, "incumbent.revision: missing"),
        ({"output": {"repo_id": 1, "repo_type": "model", "path_in_repo": "x", "extra": 0}}, ""),
    ],
    ids=["task", "run id", "not an object", "nested missing", "nested type and unknown"],
)
def test_a_bad_config_names_each_problem_by_its_key_path(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match="invalid run config") as raised:
        script.parse_run_config(config_json(**changes))
    if problem:
        assert problem in str(raised.value)
    else:
        assert "output.repo_id: expected str, got int" in str(raised.value)
        assert "output.extra: unknown key" in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("r", "8", "training.r: expected int, got str"),
        ("r", True, "training.r: expected int, got bool"),
        ("packing", 1, "training.packing: expected bool, got int"),
        ("learning_rate", None, "training.learning_rate: expected float, got NoneType"),
        ("target_modules", ["q_proj", 3], "training.target_modules[1]: expected str, got int"),
        ("quantization", {"load_in_4bit": True}, "training.quantization.bnb_4bit_quant_type"),
    ],
)
def test_training_settings_are_checked_by_their_field_types(
    key: str, value: Any, problem: str
) -> None:
    training = config_json()["training"] | {key: value}
    with pytest.raises(ValueError, match="invalid run config") as raised:
        script.parse_run_config(config_json(training=training))
    assert problem in str(raised.value)


def test_the_rendered_config_is_the_json_train_py_always_read(demo_repo: Path) -> None:
    """Same canonical text as the untyped config had: the Space variable (and what a run
    records) stays byte for byte what it was."""
    bundle = require_adapter(Workspace(demo_repo), "adapters/demo-v1")
    dataset = PushedDataset("org/data", "v0", "d" * 40, created=False)
    incumbent = script.ModelRef("org/publish", "e" * 40)
    config = render_run_config(
        bundle, run_id="0123456789abcdef", dataset=dataset, incumbent=incumbent
    )
    files = bundle.dataset.files
    expected = {
        "run_id": "0123456789abcdef",
        "adapter": bundle.dirname,
        "task": bundle.adapter.task,
        "base_model": {
            "repo_id": bundle.adapter.base_model.id,
            "revision": bundle.adapter.base_model.revision,
        },
        "dataset": {
            "repo_id": "org/data",
            "revision": "d" * 40,
            "train_file": dataset.path_of(files.train.path),
            "eval_file": dataset.path_of(files.eval.path),
        },
        "training": bundle.training.model_dump(mode="json"),
        "generation": {
            **bundle.evaluation.generation.model_dump(mode="json"),
            "max_items": bundle.evaluation.max_items,
        },
        "incumbent": {"repo_id": "org/publish", "revision": "e" * 40},
        "output": {
            "repo_id": bundle.adapter.publish.candidates_repo_id,
            "repo_type": "model",
            "path_in_repo": "runs/0123456789abcdef",
        },
        "parallel": None,
    }
    assert dumps(config) == json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert script.parse_run_config(json.loads(dumps(config))) == config


def run_json(**changes: Any) -> bytes:
    record = {
        "run_id": "0123456789abcdef",
        "adapter": "demo-v1",
        "status": "succeeded",
        "error": None,
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:10:00Z",
        "config": config_json(),
        "sha256": {},
    }
    return json.dumps(record | changes).encode()


HOSTILE = {
    "not json": b"{ nope",
    "not an object": b"[1, 2, 3]",
    "wrong type": run_json(status=3),
    "unknown key": run_json(surprise=True),
    "bad config": run_json(config={"run_id": 7}),
    "nested to crash": b"[" * 200_000 + b"]" * 200_000,
    "not utf-8": b'{"status": "\xff"}',
}


def test_any_run_json_reads_as_a_status_and_never_a_traceback(hub: Any) -> None:
    error = {"stage": "download", "type": "HTTPError", "message": "404"}
    files: dict[str, bytes | Path] = {
        "runs/0000000000000001/run.json": run_json(status="failed", error=error),
        **{f"runs/hostile-{i}/run.json": text for i, text in enumerate(HOSTILE.values())},
    }
    hub.seed(OUTPUT_REPO, files)
    client = HubClient(hub.endpoint, TOKEN)

    def read(run_id: str) -> Any:
        location = CandidateLocation(OUTPUT_REPO, run_id)
        return read_run(client, location, required=TRL.required_files)

    failed = read("0000000000000001")
    assert failed.record.error == script.RunError("download", "HTTPError", "404")
    assert failed.error == "failed in stage download: HTTPError: 404"
    for i, name in enumerate(HOSTILE):
        run = read(f"hostile-{i}")
        assert (run.status, run.record, run.is_candidate) == ("unreadable", None, False), name
        assert str(run.error).startswith("status unreadable"), name


def test_a_failure_recorded_in_run_json_never_carries_a_token_under_either_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not shaped like hf_...: found by value. Both names set, as a user's environment may.
    secrets = {"HF_TOKEN": "first-secret-0123", "HUGGING_FACE_HUB_TOKEN": "second-secret-4567"}
    for name, secret in secrets.items():
        monkeypatch.setenv(name, secret)
    failure = script.StageFailed(
        "download", RuntimeError("401 for first-secret-0123 then second-secret-4567")
    )
    error = script.error_record(failure)
    assert not any(secret in json.dumps(script.to_json(error)) for secret in secrets.values())
    assert error.message == "401 for *** then ***"


def test_every_distributed_strategy_a_spec_may_name_is_one_train_py_and_the_job_know() -> None:
    """train.py restates the strategies (it imports nothing of the runner): a strategy added to
    the spec alone would render a run config train.py refuses, or a job with no preset."""
    strategies = set(get_args(Distributed))
    assert set(get_args(get_type_hints(script.Parallel)["strategy"])) == strategies
    assert set(ACCELERATE_PRESETS) == strategies
