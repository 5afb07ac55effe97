"""`runner validate` end to end: hostile data files, the output formats, changed-since
selection with immutable versions, and `runner plan`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import edit

A = "adapters/demo-v1"
TRAIN = "datasets/demo/v1/train.jsonl"


def findings(run_cli, repo: Path, *args: str) -> tuple[int, list[dict]]:
    code, out, _ = run_cli("validate", "--repo", repo, *args, "--format", "json")
    return code, json.loads(out)["findings"]


def rules_at(found: list[dict], path: str) -> list[tuple[int, str]]:
    return sorted((f["line"], f["rule_id"]) for f in found if f["path"] == path)


def test_the_demo_adapter_validates_clean(demo_repo, run_cli):
    code, found = findings(run_cli, demo_repo)
    assert code == 0
    assert [f for f in found if f["severity"] != "info"] == []


def test_a_file_that_is_not_utf8_is_reported_line_by_line(demo_repo, run_cli):
    train = demo_repo / TRAIN
    lines = train.read_text(encoding="utf-8").splitlines()
    latin = [
        lines[0].replace("Add two", "Ajoute deux entiers \u00e9").encode("latin-1"),
        lines[1].encode(),
    ]
    train.write_bytes(b"\n".join(latin) + b"\n")

    code, found = findings(run_cli, demo_repo)

    assert code == 1
    assert (1, "data.encoding") in rules_at(found, TRAIN)
    assert not [r for r in rules_at(found, TRAIN) if r[0] == 2 and r[1] != "data.count-mismatch"]


def test_a_binary_file_gives_findings_not_a_crash(demo_repo, run_cli):
    (demo_repo / TRAIN).write_bytes(bytes(range(256)) * 40 + b"\n" + b"\x89PNG\r\n\x1a\n\x00\x00")
    code, found = findings(run_cli, demo_repo)
    assert code == 1
    assert {"data.binary", "data.sha256-mismatch"} <= {f["rule_id"] for f in found}


def test_a_5mb_line_is_reported_and_the_lines_after_it_are_still_checked(demo_repo, run_cli):
    train = demo_repo / TRAIN
    good, second = train.read_text().splitlines()
    huge = json.loads(good) | {"id": "huge"}
    huge["messages"][2]["content"] = "y" * 5_000_000
    broken = second.replace('"role": "user"', '"role": "usr"')
    train.write_text("\n".join([good, json.dumps(huge), broken, "{oops"]) + "\n")

    code, found = findings(run_cli, demo_repo)

    assert code == 1
    at = rules_at(found, TRAIN)
    assert (2, "data.record-size") in at
    assert (3, "data.roles") in at
    assert (4, "data.json") in at


@pytest.mark.parametrize("fmt", ["github", "markdown", "text"])
def test_findings_render_in_every_format(demo_repo, run_cli, fmt):
    edit(demo_repo / TRAIN, "return a + b", "return a + b  # Generated with Claude")
    code, out, _ = run_cli("validate", "--repo", demo_repo, "--format", fmt)
    assert code == 1
    if fmt == "github":
        assert f"::error file={TRAIN},line=1,title=attribution.tool-signature::" in out
    elif fmt == "markdown":
        assert "| `adapters/demo-v1` | ❌ fails | 2 | 0 |" in out  # attribution + changed sha256
        assert "<details><summary><code>adapters/demo-v1</code>: " in out
        assert f"`{TRAIN}:1`" in out
    else:
        assert f"{TRAIN}:1 " in out
        assert "[attribution.tool-signature]" in out


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def git_repo(demo_repo: Path) -> Path:
    git(demo_repo, "init", "-q", "-b", "main")
    git(demo_repo, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    git(demo_repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "base")
    return demo_repo


def test_changed_since_selects_adapters_through_their_data_and_keeps_versions_immutable(
    git_repo, run_cli
):
    code, out, _ = run_cli("validate", "--repo", git_repo, "--changed-since", "main")
    assert code == 0
    assert "adapters/demo-v1" not in out  # nothing changed, nothing validated

    with (git_repo / TRAIN).open("a") as handle:
        handle.write(
            (git_repo / TRAIN).read_text().splitlines()[0].replace("demo-1", "demo-3") + "\n"
        )

    code, found = findings(run_cli, git_repo, "--changed-since", "main")

    assert code == 1
    assert {f["rule_id"] for f in found if f["severity"] == "error"} >= {
        "data.count-mismatch",
        "data.duplicate",
    }
    edit(git_repo / A / "eval.yaml", "python_parse_rate: 0.9", "python_parse_rate: 0.95")
    code, found = findings(run_cli, git_repo, "--changed-since", "main")
    immutable = [f for f in found if f["rule_id"] == "promotion.immutable"]
    assert len(immutable) == 1
    assert immutable[0]["path"] == f"{A}/adapter.yaml"
    assert "runner new demo-v2 --from demo-v1" in immutable[0]["hint"]


def test_changed_since_an_unknown_ref_is_a_clear_error(git_repo, run_cli):
    code, _, err = run_cli("validate", "--repo", git_repo, "--changed-since", "nope")
    assert code == 2
    assert "git cannot find 'nope' here" in err


def test_a_lower_threshold_needs_a_waiver(demo_repo, run_cli):
    assert run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")[0] == 0
    (demo_repo / "adapters/demo-v2/README.md").write_text("# demo v2\n\nHarder answers.\n")
    eval_yaml = demo_repo / "adapters/demo-v2/eval.yaml"
    edit(eval_yaml, "python_parse_rate: 0.9", "python_parse_rate: 0.8")

    code, found = findings(run_cli, demo_repo, "demo-v2")
    assert code == 1
    assert [(f["line"], f["rule_id"]) for f in found if f["severity"] == "error"] == [
        (5, "promotion.threshold-drop")
    ]

    with eval_yaml.open("a") as handle:
        handle.write(
            "waivers:\n  - metric: python_parse_rate\n"
            "    reason: v2 adds harder multi-file answers; 0.8 is the honest floor\n"
            "    approved_by: ml-lead\n"
        )
    assert findings(run_cli, demo_repo, "demo-v2")[0] == 0


def test_plan_shows_changes_cost_and_waivers(demo_repo, run_cli):
    assert run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")[0] == 0
    edit(demo_repo / "adapters/demo-v2/qlora.yaml", "r: 16", "r: 32")
    with (demo_repo / "adapters/demo-v2/eval.yaml").open("a") as handle:
        handle.write(
            "waivers:\n  - metric: tests_present_rate\n    category: python\n"
            "    reason: tests moved to a separate answer in v2\n    approved_by: ml-lead\n"
        )

    code, out, _ = run_cli("plan", "--repo", demo_repo, "demo-v2", "--format", "markdown")

    assert code == 0
    assert "## Plan: `demo-v2`" in out
    assert "| `training.r` | 16 | 32 |" in out
    assert "| python | 2 → 2 | 1 → 1 |" in out
    assert "GPU time: about" in out
    assert "on `a10g-small`, about $" in out
    assert "- `tests_present_rate` (python): tests moved to a separate answer in v2" in out


def test_plan_of_a_first_version_says_so(demo_repo, run_cli):
    code, out, _ = run_cli("plan", "--repo", demo_repo, A)
    assert code == 0
    assert "First version of this adapter" in out


def test_a_policy_change_revalidates_every_adapter(git_repo, run_cli):
    with (git_repo / "policies/training.yaml").open("a") as handle:
        handle.write("# reviewed 2026-11\n")
    code, out, _ = run_cli("validate", "--repo", git_repo, "--changed-since", "main")
    assert code == 0
    assert "ok   adapters/demo-v1" in out


def test_changed_since_with_explicit_adapters_validates_only_those(git_repo, run_cli):
    def validated(*args: str) -> tuple[int, dict[str, bool], list[dict]]:
        code, out, _ = run_cli("validate", "--repo", git_repo, *args, "--format", "json")
        payload = json.loads(out)
        return code, payload["adapters"], payload["findings"]

    assert run_cli("new", "--repo", git_repo, "demo-v2", "--from", "demo-v1")[0] == 0
    (git_repo / "adapters/demo-v2/README.md").write_text("# demo v2\n\nA smaller rank.\n")
    edit(git_repo / A / "qlora.yaml", "r: 16", "r: 8")  # edits a version that exists on main
    code, adapters, _ = validated("--changed-since", "main")
    assert (code, adapters) == (1, {A: False, "adapters/demo-v2": True})  # both touched

    code, adapters, found = validated("demo-v2", "--changed-since", "main")
    assert (code, adapters) == (0, {"adapters/demo-v2": True})
    assert not [f for f in found if f["path"].startswith(A)]

    code, adapters, found = validated(A, "--changed-since", "main")
    assert (code, adapters) == (1, {A: False})
    assert [f["rule_id"] for f in found if f["severity"] == "error"] == ["promotion.immutable"]

    code, _, err = run_cli("validate", "--repo", git_repo, A, "--changed-since", "nope")
    assert code == 2
    assert "git cannot find 'nope' here" in err


def test_a_channel_naming_a_version_not_in_git_is_reported_at_its_line_with_the_fix(
    demo_repo, run_cli
):
    (demo_repo / "channels").mkdir()
    (demo_repo / "channels/demo.yaml").write_text("# pinned\nchannels:\n  stable: 3\n")
    code, found = findings(run_cli, demo_repo, A)
    assert code == 1
    [missing] = [f for f in found if f["rule_id"] == "channels.unknown-version"]
    assert (missing["path"], missing["line"]) == ("channels/demo.yaml", 3)
    assert (
        "names v3, but adapters/demo-v3/ is not in git (versions in git: v1)"
        in (missing["message"])
    )
    assert "runner rollback demo --channel stable --to N" in missing["hint"]
    code, out, _ = run_cli("validate", "--repo", demo_repo, A, "--format", "markdown")
    assert "`channels/demo.yaml:3`" in out


def test_a_channels_file_that_does_not_load_fails_its_adapter(demo_repo, run_cli):
    (demo_repo / "channels").mkdir()
    (demo_repo / "channels/demo.yaml").write_text("channels:\n  stable: 1\n  v2: 1\n")
    code, found = findings(run_cli, demo_repo, A)
    assert code == 1
    assert rules_at(found, "channels/demo.yaml") == [(3, "spec.channel-name")]


def test_a_channels_file_of_no_adapter_fails_the_repository_validation(demo_repo, run_cli):
    (demo_repo / "channels").mkdir()
    (demo_repo / "channels/dmeo.yaml").write_text("channels:\n  stable: 1\n")
    code, out, _ = run_cli("validate", "--repo", demo_repo)
    assert code == 2
    assert "FAIL channels/dmeo.yaml" in out
    assert "no adapters/dmeo-v<N>/ in git" in " ".join(out.split())
    assert run_cli("validate", "--repo", demo_repo, A)[0] == 0  # not this adapter's file


def test_a_change_that_withdraws_an_adapters_last_version_fails_on_its_channels_file(
    git_repo, run_cli
):
    (git_repo / "channels").mkdir()
    (git_repo / "channels/demo.yaml").write_text("channels:\n  stable: 1\n")
    shutil.copytree(git_repo / A, git_repo / "adapters/other-v1")  # adapters/ stays
    git(git_repo, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    git(git_repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "channels")
    git(git_repo, "rm", "-rq", A)
    code, out, _ = run_cli("validate", "--repo", git_repo, "--changed-since", "main")
    assert code == 2
    assert "FAIL channels/demo.yaml" in out
