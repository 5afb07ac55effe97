"""`runner rollback`: the rollback is a PR, so the command only edits `channels/<name>.yaml` in
the working tree (comments and other channels kept) and refuses what the PR could not merge."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from runner.specs.channels import SCHEMA_FILENAME, SCHEMA_HEADER, load_channels
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT, RunCli

CHANNELS = Path("channels/demo.yaml")


@pytest.fixture
def two_versions(demo_repo: Path, run_cli: RunCli) -> Path:
    assert run_cli("new", "demo-v2", "--from", "demo-v1", "--repo", demo_repo)[0] == 0
    return demo_repo


def test_rollback_without_a_channels_file_writes_stable_one_version_back(
    two_versions: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli("rollback", "demo", "--repo", two_versions)
    assert code == 0, err
    assert "stable: latest → 1 in channels/demo.yaml (new file)" in out
    assert "git switch -c demo-stable-v1" in out
    assert "merging it moves `stable`" in out
    text = (two_versions / CHANNELS).read_text()
    assert text == f"{SCHEMA_HEADER}\nchannels:\n  stable: 1\n"
    channels, findings = load_channels(Workspace(two_versions), "demo")
    assert findings == []
    assert channels is not None
    assert channels.spec.channels == {"stable": 1}


def test_rollback_keeps_comments_and_the_other_channels(
    two_versions: Path, run_cli: RunCli
) -> None:
    (two_versions / "channels").mkdir()
    (two_versions / CHANNELS).write_text(
        f"{SCHEMA_HEADER}\n# v2 is what users get\nchannels:\n  stable: 2  # pinned\n"
        "  canary: latest\n"
    )
    code, out, err = run_cli("rollback", "adapters/demo-v2/", "--repo", two_versions)
    assert code == 0, err
    assert "stable: 2 → 1 in channels/demo.yaml\n" in out
    assert (two_versions / CHANNELS).read_text() == (
        f"{SCHEMA_HEADER}\n# v2 is what users get\nchannels:\n  stable: 1  # pinned\n"
        "  canary: latest\n"
    )
    code, out, _ = run_cli("rollback", "demo", "--to", "1", "--repo", two_versions)
    assert code == 0
    assert "stable already names 1 in channels/demo.yaml; nothing changed" in out


def test_a_new_channel_is_added_next_to_the_default(two_versions: Path, run_cli: RunCli) -> None:
    args = ("rollback", "demo", "--channel", "canary", "--to", "2", "--repo", two_versions)
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert "canary: 2 (new channel) in channels/demo.yaml (new file)" in out
    text = (two_versions / CHANNELS).read_text()
    assert text == f"{SCHEMA_HEADER}\nchannels:\n  stable: latest\n  canary: 2\n"


def test_the_written_file_validates_clean(two_versions: Path, run_cli: RunCli) -> None:
    assert run_cli("rollback", "demo", "--repo", two_versions)[0] == 0
    text = (two_versions / CHANNELS).read_text()
    schema = json.loads((REPO_ROOT / "schemas" / SCHEMA_FILENAME).read_text())
    jsonschema.validate(YAML(typ="safe").load(text), schema)  # what editors check
    code, out, err = run_cli("validate", "adapters/demo-v1", "--repo", two_versions)
    assert code == 0, out + err
    assert "channels/demo.yaml" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--to", "7"], "adapters/demo-v7/ is not in git (versions in git: v1, v2)"),
        (["demo-v1", "--to", "3"], "adapters/demo-v3/ is not in git"),
        (["dmeo"], 'no adapter "dmeo" in git; name an adapter'),
        (["demo-v9"], 'no adapter "demo-v9" in git'),
        (["demo", "--channel", "main", "--to", "1"], "channel 'main' is reserved"),
        (["demo", "--channel", "Beta", "--to", "1"], "use lowercase letters, digits and '-'"),
        (["demo", "--channel", "canary"], "channel `canary` is not declared in channels/demo"),
    ],
)
def test_rollback_refuses_what_a_pr_could_not_merge_and_writes_nothing(
    two_versions: Path, run_cli: RunCli, args: list[str], message: str
) -> None:
    code, _, err = run_cli("rollback", *args, "--repo", two_versions)
    assert code == 2
    assert message in " ".join(err.split())
    assert not (two_versions / "channels").exists()


def test_rollback_with_no_version_below_says_so(demo_repo: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli("rollback", "demo", "--repo", demo_repo)
    assert code == 2
    assert "no version of demo in git below v1, which `stable` names now" in " ".join(err.split())
    assert not (demo_repo / "channels").exists()


def test_rollback_of_a_channels_file_that_does_not_load_shows_its_findings(
    two_versions: Path, run_cli: RunCli
) -> None:
    (two_versions / "channels").mkdir()
    broken = "channels:\n  stable: 0\n"
    (two_versions / CHANNELS).write_text(broken)
    code, _, err = run_cli("rollback", "demo", "--repo", two_versions)
    assert code == 2
    assert "channels/demo.yaml:2:" in err
    assert "channels/demo.yaml does not load" in " ".join(err.split())
    assert (two_versions / CHANNELS).read_text() == broken
