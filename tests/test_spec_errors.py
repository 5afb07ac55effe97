"""Broken specs are reported as `file:line:column` findings that say what is wrong and what
is allowed, all in one run, with exit code 2 and never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runner.specs import load_adapter
from runner.workspace import Workspace
from tests.conftest import edit

A = "adapters/demo-v1"
REV = "12fd25f77366fa6b3b4b768ec3050bf629380bac"

# (case, file, text to replace, replacement, the exact findings expected)
CORPUS = [
    (
        "unknown key gets a suggestion",
        "qlora.yaml",
        "lora_alpha: 32",
        "lora_aplha: 32",
        [f"{A}/qlora.yaml:4:1 lora_aplha: unknown key; did you mean lora_alpha?"],
    ),
    (
        "wrong type names the key, the expected type and the value",
        "qlora.yaml",
        "lora_alpha: 32",
        "lora_alpha: thirty-two",
        [f'{A}/qlora.yaml:4:13 lora_alpha: expected an integer, got "thirty-two"'],
    ),
    (
        "a quoted number is not an integer",
        "qlora.yaml",
        "r: 16",
        'r: "16"',
        [f'{A}/qlora.yaml:3:4 r: expected an integer, got "16"'],
    ),
    (
        "qlora without 4-bit",
        "qlora.yaml",
        "load_in_4bit: true",
        "load_in_4bit: false",
        [
            f"{A}/qlora.yaml:10:17 quantization.load_in_4bit: method qlora needs "
            "`load_in_4bit: true`; set it, or use `method: lora` to train on a "
            "full-precision base"
        ],
    ),
    (
        "unpinned revision",
        "adapter.yaml",
        f"revision: {REV}",
        "revision: main",
        [
            f'{A}/adapter.yaml:8:13 base_model.revision: expected a 40-hex commit id, got "main"; '
            "pin the commit, or set `floating: true` to accept a moving revision"
        ],
    ),
    (
        "malformed YAML",
        "qlora.yaml",
        "r: 16",
        "r: [16",
        [
            f"{A}/qlora.yaml:4:11 invalid YAML: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence at line 3)"
        ],
    ),
    (
        "a key given twice",
        "qlora.yaml",
        "r: 16",
        "r: 16\nr: 8",
        [
            f'{A}/qlora.yaml:4:1 invalid YAML: found duplicate key "r" with value "8" '
            '(original value: "16")'
        ],
    ),
    (
        "a value outside its allowed set, inside a list",
        "qlora.yaml",
        "  - q_proj",
        "  - q_prj",
        [
            f"{A}/qlora.yaml:7:5 target_modules[0]: expected one of q_proj, k_proj, v_proj, "
            'o_proj, gate_proj, up_proj, down_proj; got "q_prj"'
        ],
    ),
    (
        "threshold above 1",
        "eval.yaml",
        "python_parse_rate: 0.9",
        "python_parse_rate: 1.5",
        [f"{A}/eval.yaml:5:24 thresholds.overall.python_parse_rate: must be at most 1.0, got 1.5"],
    ),
    (
        "eval category missing from the manifest",
        "eval.yaml",
        "    python:",
        "    pythn:",
        [f'{A}/eval.yaml:7:5 thresholds.categories: "pythn" is not a category of dataset.yaml'],
    ),
    (
        "metric of another task kind",
        "eval.yaml",
        "tests_present_rate: 0.5",
        "json_valid_rate: 0.5",
        [
            f"{A}/eval.yaml:8:7 thresholds.categories.python.json_valid_rate: "
            '"json_valid_rate" is not a metric of task code_assistant'
        ],
    ),
    (
        "publish repo id is not a Hub id",
        "adapter.yaml",
        "repo_id: demo-org/demo-lora",
        "repo_id: demo lora",
        [
            f"{A}/adapter.yaml:10:12 publish.repo_id: expected a Hub repo id such as "
            "`owner/name` (letters, digits, '-', '_', '.'), got \"demo lora\""
        ],
    ),
    (
        "missing required key points at the mapping that should hold it",
        "adapter.yaml",
        "task: code_assistant\n",
        "",
        [f"{A}/adapter.yaml:2:1 task: missing required key"],
    ),
    (
        "a list item where a key belongs",
        "eval.yaml",
        "primary_metric: python_parse_rate",
        "- primary_metric: python_parse_rate",
        [
            f"{A}/eval.yaml:3:1 invalid YAML: expected <block end>, but found '?' "
            "(while parsing a block collection at line 2)"
        ],
    ),
]


def findings_of(repo: Path, adapter: str = A) -> list[str]:
    return [str(f) for f in load_adapter(Workspace(repo), repo / adapter).findings]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_broken_spec_yields_exact_findings_and_exit_code_2(
    demo_repo, run_cli, file, old, new, expected
):
    edit(demo_repo / A / file, old, new)

    assert findings_of(demo_repo) == expected

    code, out, err = run_cli("validate", "--repo", demo_repo, A)
    assert code == 2
    for line in expected:
        assert line in out
    assert "Traceback" not in out + err


def test_the_fixture_itself_is_clean(demo_repo, run_cli):
    assert findings_of(demo_repo) == []
    assert run_cli("validate", "--repo", demo_repo)[0] == 0


def test_a_missing_spec_file_is_named(demo_repo, run_cli):
    (demo_repo / A / "eval.yaml").unlink()
    assert findings_of(demo_repo) == [f"{A}/eval.yaml missing file"]
    code, out, err = run_cli("validate", "--repo", demo_repo, A)
    assert code == 2
    assert f"{A}/eval.yaml missing file" in out
    assert "Traceback" not in out + err


def test_wrong_directory_name_points_at_the_version(demo_repo, run_cli):
    shutil.move(demo_repo / A, demo_repo / "adapters/demo-v3")
    expected = (
        'adapters/demo-v3/adapter.yaml:3:10 directory is "demo-v3" but adapter.yaml says "demo-v1"'
    )
    assert findings_of(demo_repo, "adapters/demo-v3") == [expected]
    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v3")
    assert code == 2
    assert expected in out


def test_every_error_in_a_directory_is_reported_in_one_run(demo_repo, run_cli):
    edit(demo_repo / A / "qlora.yaml", "lora_alpha: 32", "lora_alpha: thirty-two")
    edit(demo_repo / A / "qlora.yaml", "method: qlora", "method: full")
    edit(demo_repo / A / "adapter.yaml", f"revision: {REV}", "revision: main")
    (demo_repo / A / "eval.yaml").unlink()

    found = findings_of(demo_repo)

    assert found == [
        f'{A}/adapter.yaml:8:13 base_model.revision: expected a 40-hex commit id, got "main"; '
        "pin the commit, or set `floating: true` to accept a moving revision",
        f"{A}/eval.yaml missing file",
        f'{A}/qlora.yaml:2:9 method: expected one of qlora, lora; got "full"',
        f'{A}/qlora.yaml:4:13 lora_alpha: expected an integer, got "thirty-two"',
    ]
    code, out, _ = run_cli("validate", "--repo", demo_repo, A)
    assert code == 2
    assert "4 error(s)" in out


def test_a_floating_revision_is_a_warning_not_an_error(demo_repo, run_cli):
    edit(demo_repo / A / "adapter.yaml", f"revision: {REV}", "revision: main\n  floating: true")

    result = load_adapter(Workspace(demo_repo), demo_repo / A)

    assert result.ok
    assert [(f.rule_id, f.severity, f.line) for f in result.findings] == [
        ("spec.floating-revision", "warning", 8)
    ]
    assert run_cli("validate", "--repo", demo_repo, A)[0] == 0


def test_lora_with_4bit_settings_is_contradictory(demo_repo):
    edit(demo_repo / A / "qlora.yaml", "method: qlora", "method: lora")
    assert findings_of(demo_repo) == [
        f"{A}/qlora.yaml:10:17 quantization.load_in_4bit: method lora trains on a full-precision "
        "base but `load_in_4bit` is true; use `method: qlora`, or remove the quantization block"
    ]


def test_adapter_paths_resolve_inside_the_repo_given(demo_repo, run_cli, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "adapters" / "demo-v1"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere.parent.parent)
    assert run_cli("validate", "--repo", demo_repo, "adapters/demo-v1")[0] == 0


def test_a_repo_without_adapters_is_a_clear_error(tmp_path, run_cli):
    code, _, err = run_cli("validate", "--repo", tmp_path)
    assert code == 2
    assert f"{tmp_path} has no adapters/ directory; pass the repository root" in err


def test_unknown_adapter_is_a_clear_error_with_exit_code_2(demo_repo, run_cli):
    code, out, err = run_cli("show", "--repo", demo_repo, "nope-v9")
    assert code == 2
    assert 'no adapter directory "nope-v9"; known adapters: demo-v1' in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    "args", [("bogus",), ("show",), ("validate", "--format", "xml")], ids=" ".join
)
def test_usage_errors_exit_2_with_a_message_not_a_traceback(run_cli, args):
    code, out, err = run_cli(*args)
    assert code == 2
    assert "Usage: runner" in out + err
    assert "Traceback" not in out + err


def test_show_of_a_broken_adapter_lists_its_findings(demo_repo, run_cli):
    edit(demo_repo / A / "qlora.yaml", "lora_alpha: 32", "lora_alpha: thirty-two")
    code, _, err = run_cli("show", "--repo", demo_repo, A)
    assert code == 2
    assert f'{A}/qlora.yaml:4:13 lora_alpha: expected an integer, got "thirty-two"' in err
    assert "1 spec error(s)" in err


def test_a_top_level_list_is_not_a_spec(demo_repo):
    (demo_repo / A / "eval.yaml").write_text("- primary_metric\n- thresholds\n")
    assert findings_of(demo_repo) == [
        f"{A}/eval.yaml:1:1 expected a mapping of keys at the top level, got list"
    ]


def test_an_empty_spec_file_is_a_finding(demo_repo):
    (demo_repo / A / "eval.yaml").write_text("# yaml-language-server: $schema=x\n")
    assert findings_of(demo_repo) == [f"{A}/eval.yaml:1:1 empty file; expected a mapping of keys"]


def test_a_non_utf8_spec_file_is_a_finding(demo_repo):
    (demo_repo / A / "eval.yaml").write_bytes(b"primary_metric: caf\xe9\n")
    assert findings_of(demo_repo) == [f"{A}/eval.yaml:1 not UTF-8 text (byte 0xe9)"]
