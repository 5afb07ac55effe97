"""A publish repo's `main` never moves backwards: once v2 is promoted, v1 is superseded (shown,
never promoted, its candidate not even read), and versions promoted in one reconcile go in
ascending order. Candidates are planted on the emulator, not trained: seconds per test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.engines.trl import TRL
from runner.errors import RunnerError
from runner.evaluate.pipeline import fetch_candidate, read_report
from runner.hub.client import HubClient
from runner.promote.card import Provenance
from runner.promote.promote import promote
from runner.runs.location import candidate_location
from runner.runs.run_id import run_id
from runner.specs import require_adapter
from runner.workspace import Workspace
from tests.conftest import TOKEN, RunCli, edit
from tests.github_standin import event, push
from tests.test_parser_limits import eval_record, output_row, plant_candidate
from tests.test_reconcile import git

PUBLISH = "demo-org/demo-lora"
V1, V2 = "demo-v1", "demo-v2"
# The fixture's own eval answer: it parses, is typed and carries a test, so the gate passes.
PASSING = (
    "```python\ndef square(x: float) -> float:\n    return x * x\n\n\n"
    "def test_square() -> None:\n    assert square(3) == 9\n```"
)


def add_version(root: Path, version: int) -> str:
    """`demo-v<version>`: demo-v1 with another learning rate (so another run id)."""
    name = f"demo-v{version}"
    shutil.copytree(root / "adapters" / V1, root / "adapters" / name)
    edit(root / "adapters" / name / "adapter.yaml", "version: 1", f"version: {version}")
    edit(root / "adapters" / name / "qlora.yaml", "2.0e-4", f"{version + 1}.0e-4")
    return name


def plant(env: Any, root: Path, adapter: str, answer: str = PASSING) -> str:
    """A trained candidate of `adapter` at the specs' run id, answering `answer`; its run id."""
    bundle = require_adapter(Workspace(root), f"adapters/{adapter}")
    rid = run_id(bundle, root)
    record = eval_record(root, "datasets/demo/v1/eval.jsonl")
    plant_candidate(env, root, f"adapters/{adapter}", [output_row(record, answer)], rid)
    return rid


def evaluated(run_cli: RunCli, root: Path, adapter: str, out: Path) -> None:
    """`runner eval --upload`, as the PR job runs it: the report goes next to the candidate."""
    code, printed, err = run_cli(
        "eval", f"adapters/{adapter}", "--upload", "--out", out, "--repo", root
    )
    assert code == 0, printed + err


def main_record(api: HfApi) -> dict[str, Any]:
    return json.loads(Path(api.hf_hub_download(PUBLISH, "promotion.json")).read_text())


def tags(api: HfApi) -> list[str]:
    return sorted(t.name for t in api.list_repo_refs(PUBLISH).tags)


@pytest.fixture
def v2_promoted(demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path) -> Path:
    """demo-v2 promoted; demo-v1 in git with a candidate that passed its gate (on the Hub)."""
    add_version(demo_repo, 2)
    plant(env, demo_repo, V2)
    code, out, err = run_cli("reconcile", "--apply", "--adapter", V2, "--repo", demo_repo)
    assert code == 0, out + err
    assert f"promoted: {PUBLISH}@v2" in out
    plant(env, demo_repo, V1)
    evaluated(run_cli, demo_repo, V1, tmp_path / "v1-eval")
    return demo_repo


def test_status_shows_an_older_version_superseded_without_reading_its_candidate(
    v2_promoted: Path, env: Any, run_cli: RunCli
) -> None:
    env.clear_requests()

    code, out, _ = run_cli("status", "--repo", v2_promoted)

    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(f"│ {V1}"))
    assert "superseded" in row
    assert "candidate passed" not in row
    assert f"{V1}: v2 is promoted; an older version is never promoted over it" in out
    assert f"{V2}: {PUBLISH}@v2" in out  # promoted, not drifted
    assert "drifted" not in out
    assert not [r["path"] for r in env.requests() if "-candidates" in r["path"]]


@pytest.mark.parametrize("only", [(), ("--adapter", V1)], ids=["every adapter", "--adapter v1"])
def test_reconcile_apply_never_promotes_an_older_version_over_a_newer_one(
    v2_promoted: Path, env: Any, run_cli: RunCli, only: tuple[str, ...]
) -> None:
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    commits = [c.commit_id for c in api.list_repo_commits(PUBLISH)]

    code, out, err = run_cli("reconcile", "--apply", *only, "--repo", v2_promoted)

    assert code == 0, out + err
    assert tags(api) == ["v2"]
    assert main_record(api)["adapter"] == V2
    assert [c.commit_id for c in api.list_repo_commits(PUBLISH)] == commits
    assert f"nothing to do: the Hub matches git except {V1} (superseded)" in out
    code, out, _ = run_cli("status", "--repo", v2_promoted)
    assert f"{V2}: {PUBLISH}@v2" in out
    assert "drifted" not in out


def test_promoting_an_older_version_by_hand_is_refused_once_a_newer_one_is_promoted(
    v2_promoted: Path, env: Any, tmp_path: Path
) -> None:
    """What reconcile's promotion step checks again right before its commit, for when another
    run promoted a newer version after this one looked."""
    client = HubClient(env.endpoint, token=TOKEN, cache_dir=tmp_path / "cache")
    bundle = require_adapter(Workspace(v2_promoted), f"adapters/{V1}")
    location = candidate_location(bundle, run_id(bundle, v2_promoted))
    report = read_report(client, location)
    assert report is not None
    assert report.passed
    files = fetch_candidate(client, location, TRL.required_files)
    provenance = Provenance("0" * 40, None, location.run_id, "test")

    with pytest.raises(RunnerError, match="v2 is promoted; an older version is never promoted"):
        promote(client, bundle, files.folder, report, provenance)

    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert tags(api) == ["v2"]
    assert main_record(api)["adapter"] == V2


def test_versions_promoted_in_one_reconcile_go_in_ascending_order(
    demo_repo: Path, env: Any, run_cli: RunCli
) -> None:
    """v2 and v10 both pass: v2 first (although "demo-v10" sorts before "demo-v2"), so `main`
    ends on v10 and neither is drifted."""
    for version in (2, 10):
        plant(env, demo_repo, add_version(demo_repo, version))
    shutil.rmtree(demo_repo / "adapters" / V1)  # never trained: out of this test

    code, out, err = run_cli("reconcile", "--apply", "--repo", demo_repo)

    assert code == 0, out + err
    assert out.index("demo-v2: promoted") < out.index("demo-v10: promoted")
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert main_record(api)["adapter"] == "demo-v10"
    code, out, _ = run_cli("status", "--repo", demo_repo)
    assert "drifted" not in out


def test_the_merged_pr_of_an_older_version_hears_it_was_not_promoted_because_a_newer_one_is(
    v2_promoted: Path,
    env: Any,
    run_cli: RunCli,
    tmp_path: Path,
    github: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    git(v2_promoted, "init", "-q", "-b", "main")
    git(v2_promoted, "add", ".")
    git(v2_promoted, "reset", "-q", "adapters/demo-v1")
    git(v2_promoted, "commit", "-qm", "v2")
    git(v2_promoted, "add", "adapters/demo-v1")
    git(v2_promoted, "commit", "-qm", "Merge pull request #12: demo-v1")
    result = tmp_path / "result.json"
    assert run_cli("reconcile", "--apply", "--result", result, "--repo", v2_promoted)[0] == 0
    event(monkeypatch, tmp_path, "push", push(v2_promoted, "HEAD~1"))

    code, _, err = run_cli("ci", "comment-promotion", result, "--repo", v2_promoted)

    assert code == 0, err
    [comment] = [c["body"] for c in github.comments.values()]
    headline = comment.splitlines()[1]
    assert headline.startswith(f"## Promotion: `{V1}`")
    assert "superseded" in headline
    assert "Not promoted: v2 is promoted; an older version is never promoted over it" in comment


def test_a_readme_that_is_a_link_is_never_published_as_the_model_card(
    demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    """The README becomes the model card: a link to a file outside the repository (a token
    file, /proc/self/environ) is refused at promotion, its target never uploaded."""
    secret = tmp_path / "outside.txt"
    secret.write_text("HF_TOKEN=hf_outsideTheRepository0123\n", encoding="utf-8")
    readme = demo_repo / "adapters" / V1 / "README.md"
    readme.unlink(missing_ok=True)
    readme.symlink_to(secret)
    plant(env, demo_repo, V1)
    code, out, err = run_cli("reconcile", "--apply", "--adapter", V1, "--repo", demo_repo)
    assert code == 1, out + err
    assert f"adapters/{V1}/README.md" in out + err
    assert "Traceback" not in err
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert not api.repo_exists(PUBLISH) or "v1" not in tags(api)
