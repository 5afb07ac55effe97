"""What a new user's first hour once accepted in silence: each is now refused, with the file,
the line and what to do (issue 14, "Silent acceptances to refuse or warn on")."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunCli, edit
from tests.planted import token

A = "adapters/demo-v1"
MANIFEST = f"{A}/dataset.yaml"
TRAIN = "datasets/demo/v1/train.jsonl"
EVAL = "datasets/demo/v1/eval.jsonl"


def findings(run_cli: RunCli, repo: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    code, out, err = run_cli("validate", "--repo", repo, *args, "--format", "json")
    assert out.strip(), err  # a JSON report even when the specs do not load
    return code, json.loads(out)["findings"]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def first_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text().splitlines()[0])


def append_lines(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def declare_category(root: Path, name: str) -> None:
    append_lines(root / MANIFEST, f"  {name}:", "    min_train: 1", "    min_eval: 1")


# --- 1. `runner dataset lock` -----------------------------------------------------------------


def test_lock_refuses_lines_that_are_not_json_objects_and_writes_nothing(
    demo_repo: Path, run_cli: RunCli
) -> None:
    append_lines(demo_repo / TRAIN, "not json", "[1, 2]")
    before = (demo_repo / MANIFEST).read_bytes()

    code, out, err = run_cli("dataset", "lock", A, "--repo", demo_repo)

    assert code == 2, out + err
    assert f"{TRAIN}:3 not JSON" in err
    assert f"{TRAIN}:4 expected a JSON object, got list" in err
    assert f"{MANIFEST} not changed" in err
    assert (demo_repo / MANIFEST).read_bytes() == before
    assert "Traceback" not in out + err


def test_lock_refuses_categories_the_manifest_does_not_declare(
    demo_repo: Path, run_cli: RunCli
) -> None:
    rust = first_record(demo_repo / TRAIN) | {"id": "demo-rust", "category": "rust"}
    append_lines(demo_repo / TRAIN, json.dumps(rust), json.dumps(rust | {"id": "demo-rust-2"}))
    before = (demo_repo / MANIFEST).read_bytes()

    code, out, err = run_cli("dataset", "lock", A, "--repo", demo_repo)

    assert code == 2, out + err
    assert f'{TRAIN}:3 category "rust" is not declared in {MANIFEST} (lines 3, 4)' in err
    assert "declare it under `categories:`" in err
    assert (demo_repo / MANIFEST).read_bytes() == before


# --- 2. a category threshold no eval item can measure -----------------------------------------


@pytest.mark.parametrize("where", ["no eval record", "only past max_items"])
def test_a_category_threshold_with_no_evaluated_item_is_an_error(
    demo_repo: Path, run_cli: RunCli, where: str
) -> None:
    declare_category(demo_repo, "shell")
    shell = first_record(demo_repo / TRAIN) | {"id": "demo-shell", "category": "shell"}
    append_lines(demo_repo / TRAIN, json.dumps(shell))
    append_lines(demo_repo / A / "eval.yaml", "    shell:", "      python_parse_rate: 0.5")
    if where == "only past max_items":
        append_lines(demo_repo / EVAL, json.dumps(shell | {"id": "demo-e-shell"}))
        append_lines(demo_repo / A / "eval.yaml", "max_items: 1")
    assert run_cli("dataset", "lock", A, "--repo", demo_repo)[0] == 0

    code, found = findings(run_cli, demo_repo)

    assert code == 1
    [unmeasurable] = [f for f in found if f["rule_id"] == "data.threshold-without-items"]
    assert unmeasurable["path"] == f"{A}/eval.yaml"
    assert unmeasurable["line"] == line_of(demo_repo / A / "eval.yaml", "shell:")
    assert "can never be measured" in unmeasurable["message"]


# --- 3. minimums that make a check vacuous ---------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("dataset.yaml", "min_eval: 1", "min_eval: 0"),
        ("dataset.yaml", "min_train: 1", "min_train: 0"),
        ("eval.yaml", "python_parse_rate: 0.9", "python_parse_rate: 0.0"),
        ("eval.yaml", "tests_present_rate: 0.5", "tests_present_rate: 0.0"),
    ],
)
def test_a_minimum_of_zero_is_refused_at_its_line(
    demo_repo: Path, run_cli: RunCli, file: str, old: str, new: str
) -> None:
    edit(demo_repo / A / file, old, new)

    code, found = findings(run_cli, demo_repo)

    assert code == 2
    [refused] = [f for f in found if f["severity"] == "error"]
    assert (refused["path"], refused["line"]) == (f"{A}/{file}", line_of(demo_repo / A / file, new))
    assert refused["rule_id"] == "spec.value"
    assert "got 0" in refused["message"]
    assert "passes every" in refused["hint"] or "never" in refused["hint"]


# --- 4. `runner new` under another adapter's name --------------------------------------------


def test_new_refuses_a_version_of_another_name_and_validate_flags_a_renamed_folder(
    demo_repo: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli("new", "other-v4", "--from", "demo-v1", "--repo", demo_repo)

    assert code == 2, out + err
    assert "`runner new demo-v4 --from demo-v1`" in err
    assert not (demo_repo / "adapters/other-v4").exists()

    (demo_repo / A).rename(demo_repo / "adapters/other-v4")
    code, found = findings(run_cli, demo_repo)
    assert code == 2
    assert "spec.dir-name" in {f["rule_id"] for f in found}


# --- 5. the scaffold's README placeholder ----------------------------------------------------


def test_a_readme_still_holding_the_scaffold_placeholder_is_an_error(
    demo_repo: Path, run_cli: RunCli
) -> None:
    assert run_cli("new", "demo-v2", "--from", "demo-v1", "--repo", demo_repo)[0] == 0
    readme = demo_repo / "adapters/demo-v2/README.md"

    code, found = findings(run_cli, demo_repo, "demo-v2")

    assert code == 1
    [placeholder] = [f for f in found if f["severity"] == "error"]
    assert placeholder["rule_id"] == "spec.readme-placeholder"
    assert (placeholder["path"], placeholder["line"]) == (
        "adapters/demo-v2/README.md",
        line_of(readme, "Say what changed since"),
    )
    readme.write_text("# demo v2\n\nThe same data as v1, trained for longer.\n")
    assert findings(run_cli, demo_repo, "demo-v2")[0] == 0


def test_a_readme_that_is_a_symbolic_link_is_an_error(
    demo_repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    outside = tmp_path / "environ"
    outside.write_text("HF_TOKEN=hf_not_for_the_model_card\n")
    readme = demo_repo / A / "README.md"
    readme.unlink()
    readme.symlink_to(outside)

    code, found = findings(run_cli, demo_repo)

    assert code == 1
    [link] = [f for f in found if f["severity"] == "error"]
    assert (link["path"], link["rule_id"]) == (f"{A}/README.md", "spec.unsafe-path")
    assert "symbolic link" in link["message"]


# --- 6. OpenAI and Anthropic keys -------------------------------------------------------------

KEY_CHARS = string.ascii_letters + string.digits + "_-"
KEYS = {
    "openai project key": ("secrets.openai-key", token("sk-proj-", 156, KEY_CHARS)),
    "openai legacy key": ("secrets.openai-key", token("sk-", 48)),
    "anthropic key": ("secrets.anthropic-key", token("sk-ant-api03-", 93, KEY_CHARS) + "AA"),
}


@pytest.mark.parametrize("kind", KEYS)
def test_openai_and_anthropic_keys_in_data_are_secrets(
    demo_repo: Path, run_cli: RunCli, kind: str
) -> None:
    rule_id, key = KEYS[kind]
    record = first_record(demo_repo / TRAIN)
    record["messages"][2]["content"] += f"\nThe service answered with {key} in a header."
    lines = (demo_repo / TRAIN).read_text().splitlines()
    (demo_repo / TRAIN).write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    assert run_cli("dataset", "lock", A, "--repo", demo_repo)[0] == 0

    code, out, _ = run_cli("validate", "--repo", demo_repo, "--format", "json")

    assert code == 1
    found = [f for f in json.loads(out)["findings"] if f["severity"] != "info"]
    assert [(f["path"], f["line"], f["rule_id"]) for f in found] == [(TRAIN, 1, rule_id)]
    assert key[8:-2] not in out


# --- 7. `runner validate .` inside an adapter folder ------------------------------------------


def test_validate_inside_an_adapter_folder_validates_that_adapter(
    demo_repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_repo / A)

    for ref in (".", "./", "../demo-v1"):
        code, out, err = run_cli("validate", ref)

        assert code == 0, f"{ref}: {out}{err}"
        assert f"ok   {A}" in out


def test_validate_of_a_folder_that_is_no_adapter_says_so(
    demo_repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo_repo)

    code, out, err = run_cli("validate", ".")

    assert code == 2, out + err
    assert "is not an adapter directory" in err
    assert "missing file" not in out + err


# --- 8. messages ------------------------------------------------------------------------------


def test_the_threshold_drop_hint_names_the_waiver_keys(demo_repo: Path, run_cli: RunCli) -> None:
    assert run_cli("new", "demo-v2", "--from", "demo-v1", "--repo", demo_repo)[0] == 0
    edit(
        demo_repo / "adapters/demo-v2/eval.yaml", "python_parse_rate: 0.9", "python_parse_rate: 0.8"
    )

    _, found = findings(run_cli, demo_repo, "demo-v2")

    [drop] = [f for f in found if f["rule_id"] == "promotion.threshold-drop"]
    assert "`metric`, `reason` and `approved_by`" in drop["hint"]


def test_count_mismatches_are_one_table(demo_repo: Path, run_cli: RunCli) -> None:
    python = first_record(demo_repo / TRAIN) | {"id": "demo-3"}
    append_lines(demo_repo / TRAIN, json.dumps(python))
    lines = (demo_repo / EVAL).read_text()
    (demo_repo / EVAL).write_text(lines + lines.replace("demo-e1", "demo-e2"))

    code, found = findings(run_cli, demo_repo)

    assert code == 1
    [counts] = [f for f in found if f["rule_id"] == "data.count-mismatch"]
    assert counts["line"] == line_of(demo_repo / MANIFEST, "examples: 2")
    rows = [line.split() for line in counts["message"].splitlines()[1:]]
    assert rows == [
        ["split", "count", "recorded", "found"],
        ["train", "examples", "2", "3"],
        ["train", "python", "2", "3"],
        ["eval", "examples", "1", "2"],
        ["eval", "python", "1", "2"],
    ]


@pytest.mark.parametrize(
    ("file", "line", "suggestion"),
    [
        (f"{A}/qlora.yaml", "lr: 1.0e-4", "learning_rate"),
        (f"{A}/qlora.yaml", "epochs: 2", "num_train_epochs"),
        (f"{A}/qlora.yaml", "batch_size: 2", "per_device_train_batch_size"),
        (f"{A}/qlora.yaml", "lora_r: 8", "r"),
        (f"{A}/adapter.yaml", "hardware: t4-small", "training.hardware"),
        (f"{A}/dataset.yaml", "train: datasets/demo/v1/train.jsonl", "files.train"),
        (f"{A}/eval.yaml", "max_new_tokens: 64", "generation.max_new_tokens"),
        ("policies/training.yaml", "rank: 16", "max_lora_rank"),
        ("policies/promotion.yaml", "immutable: true", "promoted_versions_immutable"),
    ],
)
def test_an_unknown_key_gets_a_suggestion_in_every_spec_and_policy_file(
    demo_repo: Path, run_cli: RunCli, file: str, line: str, suggestion: str
) -> None:
    text = (demo_repo / file).read_text()
    (demo_repo / file).write_text(text.replace("\n", f"\n{line}\n", 1))  # top level, line 2
    key = line.split(":")[0]

    _, found = findings(run_cli, demo_repo)

    [unknown] = [f for f in found if f["rule_id"] == "spec.unknown-key"]
    assert (unknown["path"], unknown["line"]) == (file, 2)
    assert unknown["message"] == f"{key}: unknown key; did you mean {suggestion}?"
