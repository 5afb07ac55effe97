"""`runner plan --format json`: the plan as data a script can read, not the terminal text."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunCli, edit


def test_plan_as_json_gives_version_changes_and_estimate_as_fields(
    demo_repo: Path, run_cli: RunCli
) -> None:
    assert run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")[0] == 0
    edit(demo_repo / "adapters/demo-v2/qlora.yaml", "r: 16", "r: 32")
    (demo_repo / "adapters/demo-v2/README.md").write_text("# demo v2\n\nLoRA rank 16 → 32.\n")

    code, out, err = run_cli("plan", "--repo", demo_repo, "demo-v2", "--format", "json")

    assert code == 0, err
    plan = json.loads(out)
    assert plan["schema_version"] == 1
    assert (plan["adapter"], plan["version"], plan["previous"]) == ("demo-v2", 2, "demo-v1")
    assert plan["publish_repo"] == "demo-org/demo-lora"
    assert {"key": "training.r", "old": 16, "new": 32} in plan["diff"]["fields"]
    assert {"category": "python", "old_train": 2, "new_train": 2, "old_eval": 1, "new_eval": 1} in (
        plan["diff"]["categories"]
    )
    estimate = plan["estimate"]
    assert estimate["hardware"] == "a10g-small"
    assert estimate["gpu_hours"] > 0
    assert estimate["usd"] > 0
    assert (plan["errors"], plan["waivers"]) == (0, [])


def test_a_field_new_in_this_version_has_no_old_value_in_the_json_plan(
    demo_repo: Path, run_cli: RunCli
) -> None:
    assert run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")[0] == 0
    edit(
        demo_repo / "adapters/demo-v2/eval.yaml",
        "      tests_present_rate: 0.5",
        "      tests_present_rate: 0.5\n      python_parse_rate: 0.95",
    )

    code, out, err = run_cli("plan", "--repo", demo_repo, "demo-v2", "--format", "json")

    assert code == 0, err
    fields = {change["key"]: change for change in json.loads(out)["diff"]["fields"]}
    key = "eval.thresholds.categories.python.python_parse_rate"
    assert fields[key] == {"key": key, "new": 0.95}  # absent before: no "old", not null
