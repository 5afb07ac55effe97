"""No output generated twice: train.py caches the base model's and the incumbent's eval outputs
in the candidates repo (`outputs/<key>.jsonl`), and a later run for the same base and eval
items reads them back instead of generating them. Whole runs as a subprocess against the
local Hub emulator, with test_train_script's fixtures."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from rich.console import Console

from runner.hub.tiny_llama import TINY_REPO_ID
from runner.report.progress import TrainProgress
from runner.runs.progress import parse_progress
from runner.space.sync import describe_progress
from runner.train import train as script
from tests.test_train_script import (  # noqa: F401  (seeded is a fixture)
    HELD_OUT,
    OUTPUT_REPO,
    TOKEN,
    by_role,
    fetch,
    run_config,
    run_script,
    seeded,
)

FIRST, SECOND = "0123456789abcdef", "1123456789abcdef"


def train(
    hub: Any, seeds: dict[str, Any], tmp_path: Path, run_id: str, **training: Any
) -> subprocess.CompletedProcess[str]:
    """One whole run of train.py for `run_id` (its training settings changed by `training`)."""
    config = run_config(seeds, run_id)
    config["training"] |= training
    folder = tmp_path / run_id
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(config))
    result = run_script(hub, folder, ["--config", "run.json", "--output-dir", "out"])
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def record(hub: Any, run_id: str, tmp_path: Path) -> script.RunResult:
    path = fetch(hub, f"candidates/{run_id}/run.json", tmp_path)
    return script.parse(script.RunResult, json.loads(path.read_text()))


def eval_rows(hub: Any, run_id: str, tmp_path: Path) -> list[dict[str, Any]]:
    path = fetch(hub, f"candidates/{run_id}/eval_outputs.jsonl", tmp_path)
    return [json.loads(line) for line in path.open()]


def generated_roles(stdout: str) -> set[str]:
    """The roles whose generation reported batches on the progress stream."""
    events = [parse_progress(line) for line in stdout.splitlines()]
    return {e["role"] for e in events if e and e.get("stage") == "generate" and "step" in e}


def cached_paths(hub: Any) -> set[str]:
    files = HfApi(endpoint=hub.endpoint, token=TOKEN).list_repo_files(OUTPUT_REPO)
    return {name for name in files if name.startswith("outputs/")}


def test_a_second_candidate_for_the_same_base_and_eval_items_generates_only_its_own_outputs(
    hub: Any,
    seeded: dict[str, Any],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    first = train(hub, seeded, tmp_path, FIRST)
    assert generated_roles(first.stdout) == {"candidate", "base", "incumbent"}
    assert record(hub, FIRST, tmp_path).reused == {}
    assert "base outputs: none cached at outputs/" in first.stderr
    cached = cached_paths(hub)
    assert len(cached) == 2  # the base model's and the incumbent's, beside the candidates

    second = train(hub, seeded, tmp_path, SECOND, learning_rate=1e-3)
    assert generated_roles(second.stdout) == {"candidate"}
    reused = record(hub, SECOND, tmp_path).reused
    assert set(reused) == {"base", "incumbent"}
    assert {f"outputs/{key}.jsonl" for key in reused.values()} == cached
    for role, key in reused.items():
        assert f"{role} outputs reused from outputs/{key}.jsonl" in second.stderr
    # The candidate's eval outputs stay complete: the reused rows are the first run's.
    before, after = eval_rows(hub, FIRST, tmp_path), eval_rows(hub, SECOND, tmp_path)
    for role in ("base", "incumbent"):
        assert by_role(after, role) == by_role(before, role)
    assert len(by_role(after, "candidate")) == 3
    assert cached_paths(hub) == cached


def test_a_corrupted_cached_output_is_generated_again_and_replaced(
    hub: Any,
    seeded: dict[str, Any],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    train(hub, seeded, tmp_path, FIRST)
    base_rows = by_role(eval_rows(hub, FIRST, tmp_path), "base")
    metrics = json.loads(fetch(hub, f"candidates/{FIRST}/metrics.json", tmp_path).read_text())
    keys = metrics["generation"]["cache_keys"]
    broken = f"outputs/{keys['base']}.jsonl"
    hub.seed(OUTPUT_REPO, {broken: b'{"item_id": "item-100", "outp'})

    second = train(hub, seeded, tmp_path, SECOND, learning_rate=1e-3)
    assert f"base outputs at {broken} unusable (ValueError: line 1 is not JSON)" in second.stderr
    assert "generating them again" in second.stderr
    assert generated_roles(second.stdout) == {"candidate", "base"}
    assert record(hub, SECOND, tmp_path).reused == {"incumbent": keys["incumbent"]}
    # Generated again, the same rows as before (greedy), and the cache holds them again.
    regenerated = [json.loads(line) for line in fetch(hub, broken, tmp_path / "again").open()]
    assert [row["output"] for row in regenerated] == [row["output"] for row in base_rows]


def config_of(*, training: dict[str, Any] | None = None, **changes: Any) -> script.RunConfig:
    """A run config of test_train_script's shape, with top-level keys and training changed."""
    revisions = {"base_revision": "a" * 40, "data_revision": "b" * 40}
    config = run_config(revisions, FIRST) | changes
    config["training"] |= training or {}
    return script.parse_run_config(config)


def test_the_cache_key_follows_what_the_outputs_depend_on_and_not_the_training(
    tmp_path: Path,
) -> None:
    """Another eval item, batch size, base revision or incumbent adapter is another key;
    another learning rate (another candidate of the same base) is the same key."""
    incumbent = tmp_path / "incumbent"
    incumbent.mkdir()
    for name in script.ADAPTER_FILES:
        (incumbent / name).write_bytes(name.encode())
    items = script.eval_items(HELD_OUT[:3], None)
    keys = script.output_keys(config_of(), items, incumbent)
    assert keys["base"] != keys["incumbent"]

    assert script.output_keys(config_of(training={"learning_rate": 1e-3}), items, incumbent) == keys
    assert script.output_keys(config_of(), items, None) == {"base": keys["base"]}
    other_items = script.eval_items(HELD_OUT[1:4], None)
    generation = {"max_new_tokens": 12, "batch_size": 3, "max_items": 3}
    base_model = {"repo_id": TINY_REPO_ID, "revision": "c" * 40}
    for changed in (
        script.output_keys(config_of(), other_items, incumbent),
        script.output_keys(config_of(generation=generation), items, incumbent),
        script.output_keys(config_of(base_model=base_model), items, incumbent),
    ):
        assert set(changed.values()).isdisjoint(keys.values())
    (incumbent / "adapter_model.safetensors").write_bytes(b"another adapter")
    retrained = script.output_keys(config_of(), items, incumbent)
    assert (retrained["base"], retrained["incumbent"] != keys["incumbent"]) == (keys["base"], True)


def test_a_reused_role_shows_as_reused_in_the_progress_view() -> None:
    """The event train.py prints for a role taken from the cache, as the local progress view
    and a Space's watch describe it."""
    events = [parse_progress(line) for line in progress_lines("base")]
    assert [describe_progress(event) for event in events if event] == ["generate base (reused)"]
    log = io.StringIO()
    with TrainProgress(Console(file=log, width=200), "kwanzaa-mini-v1 (local)") as progress:
        for event in events:
            progress.update(event or {})
    assert "kwanzaa-mini-v1 (local): generate base (reused), " in log.getvalue()


def progress_lines(role: str) -> list[str]:
    """What train.py prints when it reuses `role`'s cached rows."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        script.reused_rows(role, {role: [{"item_id": "item-100"}]})
    return printed.getvalue().splitlines()
