"""`runner reconcile --apply --adapter NAME` narrows what is done, never what is seen: the
sibling versions still in git are observed (so they never look removed from it), and only
NAME's row is acted on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

from tests.conftest import ADAPTER, TOKEN, RunCli
from tests.test_reconcile import PUBLISH, lenient

SIBLING = "kwanzaa-mini-v2"


def test_reconcile_of_one_adapter_leaves_its_promoted_siblings_alone(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    lenient(tiny_repo)
    assert run_cli("new", SIBLING, "--from", ADAPTER, "--repo", tiny_repo)[0] == 0
    code, out, err = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert code == 0, out + err[-3000:]
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert sorted(t.name for t in api.list_repo_refs(PUBLISH).tags) == ["v1", "v2"]
    commits = [c.commit_id for c in api.list_repo_commits(PUBLISH)]

    code, out, err = run_cli("reconcile", "--apply", "--adapter", ADAPTER, "--repo", tiny_repo)

    assert code == 0, out + err[-3000:]
    assert [c.commit_id for c in api.list_repo_commits(PUBLISH)] == commits
    assert "withdrawn" not in out
    assert f"only {ADAPTER} (--adapter); left alone: {SIBLING} (promoted)" in out
    code, out, _ = run_cli("status", "--repo", tiny_repo)
    assert code == 0
    assert f"{ADAPTER}: {PUBLISH}@v1" in out  # the detail of a promoted row
    assert f"{SIBLING}: {PUBLISH}@v2" in out
    assert "drifted" not in out


def test_reconcile_of_an_unknown_adapter_names_the_known_ones(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    """`adapters/` exists as a directory, but it is no adapter: exit 2, no Hub writes."""
    code, out, err = run_cli("reconcile", "--apply", "--adapter", "adapters", "--repo", tiny_repo)

    assert code == 2
    assert '--adapter "adapters": no such adapter in git or on the Hub' in err
    assert f"known adapters: {ADAPTER}" in err
    assert "Traceback" not in out + err
    assert not any(r["method"] == "POST" for r in env.requests())
