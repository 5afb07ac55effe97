"""Release channels end to end on the emulator: each channel is a branch of the publish repo
holding exactly its version's promoted files; git moves it (`channels/<name>.yaml`, else
`stable: latest`), reconcile converges it, a rollback is a change to that file, and a channel
never names a version that is not promoted or was withdrawn. Candidates are planted: seconds
per test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, snapshot_download

from runner.runs.location import candidate_location
from runner.runs.run_id import run_id
from runner.specs import require_adapter
from runner.workspace import Workspace
from tests.conftest import TOKEN, RunCli
from tests.github_standin import event, push
from tests.test_promotion_order import PUBLISH, V1, add_version, plant
from tests.test_reconcile import git, writes
from tests.test_reconcile_faults import killed_then_run_again


def commit_all(root: Path, message: str) -> None:
    if not (root / ".git").is_dir():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def declare(root: Path, text: str) -> None:
    """What a merged PR leaves in git: `channels/demo.yaml`."""
    (root / "channels").mkdir(exist_ok=True)
    (root / "channels" / "demo.yaml").write_text(
        "# yaml-language-server: $schema=../schemas/channels.schema.json\n" + text
    )
    commit_all(root, "Merge pull request #21: channels")


def reweigh(env: Any, root: Path, adapter: str) -> None:
    """Give the planted candidate of `adapter` weights of its own, so versions differ in them."""
    bundle = require_adapter(Workspace(root), f"adapters/{adapter}")
    location = candidate_location(bundle, run_id(bundle, root))
    HfApi(endpoint=env.endpoint, token=TOKEN).upload_file(
        path_or_fileobj=f"weights of {adapter}".encode(),
        path_in_repo=location.file("adapter_model.safetensors"),
        repo_id=location.repo_id,
    )


def files_at(env: Any, tmp_path: Path, revision: str) -> dict[str, bytes]:
    """What a backend loading `revision` gets: every file and its bytes."""
    folder = Path(
        snapshot_download(
            PUBLISH,
            revision=revision,
            endpoint=env.endpoint,
            token=TOKEN,
            cache_dir=tmp_path / f"backend-{revision}",
        )
    )
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def branches(api: HfApi) -> dict[str, str]:
    return {b.name: b.target_commit for b in api.list_repo_refs(PUBLISH).branches}


def reconcile(run_cli: RunCli, root: Path, *args: str) -> str:
    code, out, err = run_cli("reconcile", "--apply", *args, "--repo", root)
    assert code == 0, out + err[-3000:]
    return out


def test_stable_follows_promotions_a_pr_rolls_it_back_and_a_second_reconcile_writes_nothing(
    demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    commit_all(demo_repo, "v1")
    plant(env, demo_repo, V1)
    out = reconcile(run_cli, demo_repo)
    assert "demo stable: created: stable at v1" in out
    v1_files = files_at(env, tmp_path, "v1")
    assert files_at(env, tmp_path, "stable") == v1_files
    assert b"weights" in v1_files["adapter_model.safetensors"]

    v2 = add_version(demo_repo, 2)
    commit_all(demo_repo, "Merge pull request #20: demo-v2")
    plant(env, demo_repo, v2)
    reweigh(env, demo_repo, v2)
    out = reconcile(run_cli, demo_repo)
    assert f"promoted: {PUBLISH}@v2" in out
    assert "demo stable: moved: stable v1 → v2" in out
    v2_files = files_at(env, tmp_path, "v2")
    assert v2_files != v1_files
    assert files_at(env, tmp_path, "stable") == v2_files

    declare(demo_repo, "channels:\n  stable: 1  # v2 regressed on prod traffic\n")
    code, out, _ = run_cli("reconcile", "--repo", demo_repo)  # the plan: nothing written
    assert code == 0
    assert "move 1 release channel(s)" in out
    assert files_at(env, tmp_path, "stable") == v2_files
    result, summary = tmp_path / "result.json", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = reconcile(run_cli, demo_repo, "--result", str(result))
    assert "demo stable: moved: stable v2 → v1" in out
    assert "| `demo` | `stable` | `1` | v2 | [v1](" in summary.read_text()
    assert files_at(env, tmp_path, "stable") == v1_files  # exactly v1's files, card included
    [row] = json.loads(result.read_text())["channels"]
    assert (row["channel"], row["from_version"], row["to_version"], row["moved"]) == (
        "stable",
        2,
        1,
        True,
    )
    assert row["commit"] == branches(api)["stable"]
    assert row["eval"]["passed"] is True
    v1_bundle = require_adapter(Workspace(demo_repo), f"adapters/{V1}")
    assert row["eval"]["run_id"] == run_id(v1_bundle, demo_repo)
    card = Path(api.hf_hub_download(PUBLISH, "README.md")).read_text()
    assert "| `stable` | v1 |" in card  # main holds v2; its card says where stable is

    before = (writes(env), [c.commit_id for c in api.list_repo_commits(PUBLISH)])
    out = reconcile(run_cli, demo_repo)
    assert "nothing to do" in out
    assert (writes(env), [c.commit_id for c in api.list_repo_commits(PUBLISH)]) == before
    code, out, _ = run_cli("status", "--repo", demo_repo)
    assert code == 0
    assert "in sync" in out
    assert "demo stable: at v1" in out
    assert "drifted" not in out  # main's card moved with the channel: that is not drift


@pytest.fixture
def two_promoted(demo_repo: Path, env: Any, run_cli: RunCli) -> Path:
    """demo-v1 and demo-v2 promoted, with weights of their own; `stable` at v2 (latest)."""
    commit_all(demo_repo, "v1")
    plant(env, demo_repo, V1)
    v2 = add_version(demo_repo, 2)
    commit_all(demo_repo, "Merge pull request #20: demo-v2")
    plant(env, demo_repo, v2)
    reweigh(env, demo_repo, v2)
    reconcile(run_cli, demo_repo)
    return demo_repo


@pytest.mark.parametrize(
    "hold",
    [
        "/commit/stable",  # the move itself: one commit on the channel's branch
        "/commit/main",  # moved; the card on main not yet listing it
    ],
)
def test_a_reconcile_killed_mid_move_ends_at_the_declared_version_on_the_next_run(
    two_promoted: Path, env: Any, tmp_path: Path, hold: str
) -> None:
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    v1_files = files_at(env, tmp_path, "v1")
    declare(two_promoted, "channels:\n  stable: 1\n")
    tags = {t.name: t.target_commit for t in api.list_repo_refs(PUBLISH).tags}
    candidates = [c.commit_id for c in api.list_repo_commits(f"{PUBLISH}-candidates")]
    env.fail("POST", hold, mode="timeout", delay=120.0, times=1)

    code, output = killed_then_run_again(env, two_promoted, hold)

    assert code == 0, output[-3000:]
    assert files_at(env, tmp_path, "stable") == v1_files
    assert {t.name: t.target_commit for t in api.list_repo_refs(PUBLISH).tags} == tags
    assert sorted(branches(api)) == ["main", "stable"]
    assert [c.commit_id for c in api.list_repo_commits(f"{PUBLISH}-candidates")] == candidates
    assert "| `stable` | v1 |" in Path(api.hf_hub_download(PUBLISH, "README.md")).read_text()
    titles = [c.title for c in api.list_repo_commits(PUBLISH, revision="stable")]
    assert sum(t.startswith("Channel stable: v2 -> v1") for t in titles) == 1


def test_a_channel_naming_an_unpromoted_version_is_refused_and_stays_where_it_was(
    demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    commit_all(demo_repo, "v1")
    plant(env, demo_repo, V1)
    reconcile(run_cli, demo_repo)
    v2 = add_version(demo_repo, 2)
    declare(demo_repo, "channels:\n  stable: 2\n  canary: 7\n")
    plant(env, demo_repo, v2, answer="no code here")  # fails its gate

    code, out, _ = run_cli("status", "--repo", demo_repo)
    assert "demo stable: moves to v2 once it is promoted" in out
    result = tmp_path / "result.json"
    code, out, _ = run_cli("reconcile", "--apply", "--result", result, "--repo", demo_repo)

    assert code == 1
    assert "not promoted: failed its gate" in out
    assert (
        "FAIL demo stable: channels/demo.yaml (`stable: 2`) names v2, which is not promoted; "
        "a channel only names a promoted version" in out
    )
    assert (
        "FAIL demo canary: channels/demo.yaml (`canary: 7`) names v7, which is neither in git"
        in out
    )
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert sorted(branches(api)) == ["main", "stable"]
    assert files_at(env, tmp_path, "stable") == files_at(env, tmp_path, "v1")
    rows = {r["channel"]: r for r in json.loads(result.read_text())["channels"]}
    assert (rows["stable"]["ok"], rows["stable"]["moved"], rows["stable"]["from_version"]) == (
        False,
        False,
        1,
    )


def test_a_withdrawn_version_cannot_be_named_and_a_named_version_cannot_be_withdrawn(
    two_promoted: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    declare(two_promoted, "channels:\n  stable: 1\n")
    reconcile(run_cli, two_promoted)
    shutil.rmtree(two_promoted / "adapters" / V1)
    commit_all(two_promoted, "Merge pull request #22: withdraw demo-v1")

    code, out, _ = run_cli("reconcile", "--apply", "--repo", two_promoted)

    assert code == 1
    assert (
        "FAIL demo-v1: not withdrawn: channels/demo.yaml still points `stable` at v1; move the "
        "channel first" in out
    )
    assert "names v1, which is withdrawn (adapters/demo-v1/ was removed from git)" in out
    assert files_at(env, tmp_path, "stable") == files_at(env, tmp_path, "v1")

    declare(two_promoted, "channels:\n  stable: 2\n")
    out = reconcile(run_cli, two_promoted)
    assert "demo stable: moved: stable v1 → v2" in out
    assert f"{PUBLISH}@v1 kept; main holds another version" in out
    assert files_at(env, tmp_path, "stable") == files_at(env, tmp_path, "v2")
    assert "v1" in {t.name for t in api.list_repo_refs(PUBLISH).tags}  # nothing deleted


def test_a_channel_changed_by_hand_is_shown_drifted_and_repaired_on_request(
    two_promoted: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.upload_file(
        path_or_fileobj=b"hotfix",
        path_in_repo="adapter_model.safetensors",
        repo_id=PUBLISH,
        revision="stable",
    )
    _, out, _ = run_cli("status", "--repo", two_promoted)
    assert "demo stable: it no longer holds v2's files (a change by hand)" in out

    out = reconcile(run_cli, two_promoted)
    assert "--repair-drift restores its version's files" in out
    assert files_at(env, tmp_path, "stable") != files_at(env, tmp_path, "v2")
    out = reconcile(run_cli, two_promoted, "--repair-drift")
    assert "demo stable: restored: stable to v2's files" in out
    assert files_at(env, tmp_path, "stable") == files_at(env, tmp_path, "v2")


def test_the_plan_of_a_rollback_pr_says_what_moves_and_compares_the_two_versions(
    demo_repo: Path, env: Any, run_cli: RunCli
) -> None:
    commit_all(demo_repo, "v1")
    plant(env, demo_repo, V1)
    v2 = add_version(demo_repo, 2)
    commit_all(demo_repo, "Merge pull request #20: demo-v2")
    plant(env, demo_repo, v2, answer=GUARDED)
    reconcile(run_cli, demo_repo)
    declare(demo_repo, "channels:\n  stable: 1\n")

    code, out, err = run_cli("plan", f"adapters/{v2}", "--format", "markdown", "--repo", demo_repo)

    assert code == 0, out + err
    section = out[out.index("### Release channels") :]
    assert "| `stable` | `1` | v2 | 🚀 v1 |" in section
    assert "**`stable`: v2 → v1.** Eval results each version was promoted with:" in section
    assert "| **python_parse_rate** (primary) | 1.0000 | 1.0000 | +0.0000 |" in section
    assert "| error_handling_rate | 1.0000 | 0.0000 | -1.0000 |" in section


GUARDED = (
    "```python\ndef square(x: float) -> float:\n    if x != x:\n        raise ValueError('nan')\n"
    "    return x * x\n\n\ndef test_square() -> None:\n    assert square(3) == 9\n```"
)


def test_a_merged_rollback_is_told_on_the_pr_and_becomes_a_github_deployment(
    two_promoted: Path,
    env: Any,
    run_cli: RunCli,
    tmp_path: Path,
    github: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The promote workflow's three jobs, through the CLI: reconcile, comment, announce."""
    declare(two_promoted, "channels:\n  stable: 1\n")
    result = tmp_path / "result.json"
    reconcile(run_cli, two_promoted, "--result", str(result))
    event(monkeypatch, tmp_path, "push", push(two_promoted, "HEAD~1"))
    github.pr_files = ["channels/demo.yaml"]

    code, out, err = run_cli("ci", "comment-promotion", result, "--repo", two_promoted)
    assert code == 0, out + err
    [comment] = [c["body"] for c in github.comments.values()]
    assert "### Release channels" in comment
    assert f"| `demo` | `stable` | `1` | v2 | [v1]({env.endpoint}/{PUBLISH}/tree/stable) |" in (
        comment
    )
    assert "🚀 moved: stable v2 → v1" in comment
    assert "🚀 **Release channels moved:** `stable` v2 → v1." in comment

    code, out, err = run_cli("ci", "announce-channels", result)
    assert code == 0, out + err
    [deployment] = github.deployments.values()
    assert deployment["environment"] == "demo-stable"
    assert deployment["production_environment"] is True
    payload = deployment["payload"]
    assert (payload["adapter"], payload["channel"], payload["from"], payload["to"]) == (
        "demo",
        "stable",
        2,
        1,
    )
    assert payload["hub_commit"] == branches(HfApi(endpoint=env.endpoint, token=TOKEN))["stable"]
    assert payload["eval"]["passed"] is True


def test_a_latest_channel_follows_a_withdrawal_back_to_the_newest_version_left(
    two_promoted: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    shutil.rmtree(two_promoted / "adapters" / "demo-v2")
    commit_all(two_promoted, "Merge pull request #23: withdraw demo-v2")

    out = reconcile(run_cli, two_promoted)

    assert f"marked {PUBLISH}@v2 withdrawn" in out
    assert "demo stable: moved: stable v2 → v1" in out
    assert files_at(env, tmp_path, "stable") == files_at(env, tmp_path, "v1")
    card = Path(HfApi(endpoint=env.endpoint, token=TOKEN).hf_hub_download(PUBLISH, "README.md"))
    text = card.read_text()
    assert "**Withdrawn.**" in text
    assert "| `stable` | v1 |" in text


def test_the_plan_without_a_token_says_it_cannot_see_a_private_publish_repo(
    two_promoted: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork's PR job has no HF_TOKEN: the Hub shows it no private repo, and the plan must not
    read that as "nothing promoted"."""
    declare(two_promoted, "channels:\n  stable: 1\n")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(two_promoted.parent / "no-token-home"))

    code, out, err = run_cli(
        "plan", "adapters/demo-v2", "--format", "markdown", "--repo", two_promoted
    )

    assert code == 0, out + err
    section = " ".join(out[out.index("### Release channels") :].split())
    assert (
        f"The Hub could not say where the channels point: {PUBLISH} is not visible without a "
        "token (private, or not created yet)" in section
    )
    assert "| `stable` |" not in section
