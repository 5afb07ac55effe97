"""A spec cannot aim at Hub repos it does not own: every repo it names lives under an owner
that policies/repos.yaml lists (checked by `runner validate` at the spec's line, and again
before anything reaches the Hub), one publish repo belongs to one adapter name (in git, and
on the Hub at promotion), and a Space the runner did not make is never wiped."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from tests.conftest import ADAPTER, TOKEN, RunCli, copy_repo, edit
from tests.test_reconcile import PUBLISH, lenient

DEMO = "adapters/demo-v1"
# The emulated user may write here: only the allowlist stands between a spec and this owner.
OUTSIDER = "ainative-labs"


def validate_json(run_cli: RunCli, repo: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    code, out, _ = run_cli("validate", "--repo", repo, *args, "--format", "json")
    return code, json.loads(out)["findings"]


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def writes(hub: Any) -> list[str]:
    """Every request that could change the Hub, as `METHOD path`."""
    reads = {"GET", "HEAD"}
    return [f"{r['method']} {r['path']}" for r in hub.requests() if r["method"] not in reads]


@pytest.mark.parametrize(
    ("spec", "old", "new", "what"),
    [
        (
            "adapter.yaml",
            "  repo_id: demo-org/demo-lora\n",
            f"  repo_id: {OUTSIDER}/demo-lora\n",
            "publish repo",
        ),
        (
            "adapter.yaml",
            "  repo_id: demo-org/demo-lora\n",
            f"  repo_id: demo-org/demo-lora\ntraining:\n  space_id: {OUTSIDER}/website\n",
            "training Space",
        ),
        (
            "dataset.yaml",
            "hub_repo: demo-org/demo-data\n",
            f"hub_repo: {OUTSIDER}/demo-data\n",
            "dataset repo",
        ),
    ],
    ids=["publish", "space", "dataset"],
)
def test_a_repo_outside_the_allowlist_is_an_error_at_its_spec_line(
    demo_repo: Path, run_cli: RunCli, spec: str, old: str, new: str, what: str
) -> None:
    file = demo_repo / DEMO / spec
    edit(file, old, new)
    code, found = validate_json(run_cli, demo_repo)
    assert code == 1
    # A publish repo outside also moves the default Space outside: one finding each.
    [finding] = [
        f
        for f in found
        if f["rule_id"] == "repos.owner" and f["message"].startswith(f'{what} "{OUTSIDER}/')
    ]
    assert finding["severity"] == "error"
    assert finding["path"] == f"{DEMO}/{spec}"
    assert finding["line"] == line_of(file, new.splitlines()[-1])
    assert "policies/repos.yaml" in finding["message"]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda policy: policy.unlink(), "policies/repos.yaml missing"),
        (
            lambda policy: policy.write_text(
                policy.read_text().replace("  - ainative\n", "  - '*'\n", 1)
            ),
            "expected a Hub user or organisation name",
        ),
    ],
    ids=["missing", "wildcard"],
)
def test_a_missing_or_broken_allowlist_allows_nothing(
    env: Any, tmp_path: Path, run_cli: RunCli, damage: Any, expected: str
) -> None:
    root = copy_repo(tmp_path / "repo")
    damage(root / "policies" / "repos.yaml")

    code, out, _ = run_cli("validate", "--repo", root)
    assert code == 2
    assert expected in out

    code, _, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 2
    assert "policies/repos.yaml is missing or invalid" in err
    assert writes(env) == []


OUTSIDE_PUBLISH = ("adapter.yaml", f"repo_id: {PUBLISH}", f"repo_id: {OUTSIDER}/kwanzaa-mini-lora")
OUTSIDE_DATASET = (
    "dataset.yaml",
    "hub_repo: ainative/kwanzaa-grounded-chat",
    f"hub_repo: {OUTSIDER}/kwanzaa-grounded-chat",
)


@pytest.mark.parametrize(
    ("command", "change", "code"),
    [
        (("train", f"adapters/{ADAPTER}", "--backend", "local"), OUTSIDE_PUBLISH, 2),
        (("space", "sync", f"adapters/{ADAPTER}"), OUTSIDE_PUBLISH, 2),
        (("reconcile", "--apply"), OUTSIDE_PUBLISH, 1),
        (("dataset", "push", f"adapters/{ADAPTER}"), OUTSIDE_DATASET, 2),
        (("eval", f"adapters/{ADAPTER}", "--upload"), OUTSIDE_PUBLISH, 2),
    ],
    ids=["train", "space-sync", "reconcile", "dataset-push", "eval-upload"],
)
def test_a_spec_that_skipped_validate_never_reaches_a_repo_outside_the_allowlist(
    env: Any,
    tmp_path: Path,
    run_cli: RunCli,
    command: tuple[str, ...],
    change: tuple[str, str, str],
    code: int,
) -> None:
    root = copy_repo(tmp_path / "repo")
    spec, old, new = change
    edit(root / "adapters" / ADAPTER / spec, old, new)

    got, out, err = run_cli(*command, "--repo", root)

    assert got == code, out + err[-3000:]
    assert f'aims at Hub repos outside policies/repos.yaml ("{OUTSIDER}/' in out + err
    assert writes(env) == []


def add_adapter(root: Path, name: str, publish: str) -> Path:
    """A copy of the demo adapter under another name, publishing to `publish`."""
    directory = root / "adapters" / f"{name}-v1"
    shutil.copytree(root / DEMO, directory)
    edit(directory / "adapter.yaml", "name: demo\n", f"name: {name}\n")
    edit(directory / "adapter.yaml", "repo_id: demo-org/demo-lora", f"repo_id: {publish}")
    return directory


def shared_findings(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in found if f["rule_id"] == "repos.publish-shared"}


@pytest.mark.parametrize(
    "publish", ["demo-org/demo-lora", "Demo-Org/Demo-Lora", "demo-org/demo-lora-candidates"]
)
def test_two_adapter_names_with_one_publish_repo_fail_validate_at_both_lines(
    demo_repo: Path, run_cli: RunCli, publish: str
) -> None:
    other = add_adapter(demo_repo, "other", publish)
    code, found = validate_json(run_cli, demo_repo)
    assert code == 1
    mine, theirs = f"{DEMO}/adapter.yaml", "adapters/other-v1/adapter.yaml"
    shared = shared_findings(found)
    assert sorted(shared) == sorted([mine, theirs])
    assert shared[mine]["line"] == line_of(demo_repo / mine, "  repo_id: demo-org/demo-lora")
    assert shared[theirs]["line"] == line_of(other / "adapter.yaml", f"  repo_id: {publish}")
    assert f"({theirs}:{shared[theirs]['line']}: {publish})" in shared[mine]["message"]


def test_validating_only_the_changed_adapter_still_sees_every_adapter_in_git(
    demo_repo: Path, run_cli: RunCli
) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(demo_repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "base")
    add_adapter(demo_repo, "other", "demo-org/demo-lora")

    code, found = validate_json(run_cli, demo_repo, "--changed-since", "main")

    assert code == 1
    shared = shared_findings(found)
    assert list(shared) == ["adapters/other-v1/adapter.yaml"]  # only the changed adapter
    assert (
        f'claimed by adapter "demo" ({DEMO}/adapter.yaml:10: '
        in shared["adapters/other-v1/adapter.yaml"]["message"]
    )


FOREIGN_APP = b"print('the website of another team')\n"


def test_a_space_the_runner_did_not_make_keeps_its_files_and_gets_no_secret(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    root = tiny_repo  # its base model is on the Hub: the Space is what is refused
    space = "ainative/adapter-trainer"
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.create_repo(space, repo_type="space", space_sdk="docker")
    api.upload_file(
        path_or_fileobj=FOREIGN_APP, path_in_repo="app.py", repo_id=space, repo_type="space"
    )
    files = sorted(api.list_repo_files(space, repo_type="space"))
    env.clear_requests()

    code, _, err = run_cli("space", "sync", f"adapters/{ADAPTER}", "--repo", root)

    assert code == 2, err[-3000:]
    assert f"Space {space} exists and was not made by the runner" in err
    assert "training.space_id" in err
    assert "Traceback" not in err
    assert sorted(api.list_repo_files(space, repo_type="space")) == files
    app = api.hf_hub_download(space, "app.py", repo_type="space")
    assert Path(app).read_bytes() == FOREIGN_APP
    touched = [w for w in writes(env) if space in w]
    assert touched == []  # no pause, no secret, no variable, no hardware, no commit
    assert TOKEN not in err


def test_a_second_adapter_name_cannot_promote_over_another_adapters_repo(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    lenient(tiny_repo)
    code, out, err = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert code == 0, out + err[-3000:]
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    commits = [c.commit_id for c in api.list_repo_commits(PUBLISH)]
    card = Path(api.hf_hub_download(PUBLISH, "README.md")).read_text()
    # Another name, a version the publish repo has no tag for yet, the same publish repo.
    second = tiny_repo / "adapters" / "kwanzaa-tiny-v2"
    shutil.copytree(tiny_repo / "adapters" / ADAPTER, second)
    edit(
        second / "adapter.yaml", "name: kwanzaa-mini\nversion: 1", "name: kwanzaa-tiny\nversion: 2"
    )

    code, out, err = run_cli(
        "reconcile", "--apply", "--adapter", "kwanzaa-tiny-v2", "--repo", tiny_repo
    )

    assert code == 1, out + err[-3000:]
    assert f"{PUBLISH} holds adapter 'kwanzaa-mini'" in out
    assert "nothing was committed or tagged" in out
    assert [c.commit_id for c in api.list_repo_commits(PUBLISH)] == commits
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]
    assert Path(api.hf_hub_download(PUBLISH, "README.md")).read_text() == card
