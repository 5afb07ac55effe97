"""The runner's core (validate, plan, report and the `runner ci ...` verbs of the GitHub
comment jobs) works without the training stack: `make venv-core` installs it without torch,
so PR checks stay fast. Checked here by refusing every import of the `train` extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

TRAINING_STACK = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "bitsandbytes",
    "safetensors",
    "gguf",
)

# Run in a fresh interpreter: the test session itself has the training stack imported.
# Each command goes through runner.cli:main, the `runner` entry point, with a finder in
# front of sys.meta_path that acts as if the `train` extra were not installed.
SCRIPT = textwrap.dedent(
    """
    import json, sys

    BLOCKED = set(json.loads(sys.argv[1]))
    COMMANDS = json.loads(sys.argv[2])
    attempted = []

    class NoTrainingStack:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempted.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (core install)", name=name)
            return None

    sys.meta_path.insert(0, NoTrainingStack())

    from runner.cli import main

    codes = [main(args) for args in COMMANDS]
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("\\n@@RESULT@@" + json.dumps({"codes": codes, "loaded": loaded, "attempted": attempted}))
    """
)


def run_without_training_stack(commands: list[list[str]]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(TRAINING_STACK), json.dumps(commands)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"},
        timeout=300,
        check=False,
    )
    marker = "@@RESULT@@"
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    printed, result = done.stdout.rsplit(marker, 1)
    return json.loads(result) | {"printed": printed}


def test_validate_plan_and_ci_verbs_run_without_the_training_stack():
    repo = str(REPO_ROOT)
    commands = {
        "--help": ["--help"],
        "validate": ["validate", "--repo", repo],
        "plan": ["plan", "--repo", repo, "adapters/kwanzaa-mini-v1", "--format", "markdown"],
        "ci --help": ["ci", "--help"],
        "ci comment --help": ["ci", "comment", "--help"],
        "ci post-comments --help": ["ci", "post-comments", "--help"],
        "ci comment-promotion --help": ["ci", "comment-promotion", "--help"],
        "status --help": ["status", "--help"],
        "reconcile --help": ["reconcile", "--help"],
    }

    result = run_without_training_stack(list(commands.values()))

    # validate exits 0: the repository's own adapters are clean (info findings only).
    assert dict(zip(commands, result["codes"], strict=True)) == dict.fromkeys(commands, 0)
    assert result["loaded"] == [], result["attempted"]
    assert "ok   adapters/kwanzaa-mini-v1" in result["printed"]
    assert "## Plan: `kwanzaa-mini-v1`" in result["printed"]
    assert "post-comments" in result["printed"]  # from `ci --help`
