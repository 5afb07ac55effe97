"""Only declared, regular files inside the repository are read, hashed or uploaded.

A symlink in a dataset folder once put `/proc/self/environ` (HF_TOKEN included) on the Hub:
every way a path can lead out of the repository is a finding at the manifest's line in
`runner validate` (exit 2) and a refusal in `dataset push`, `dataset lock` and `train`, with
no request to the Hub; a push uploads the manifest's list and nothing else."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from tests.conftest import ADAPTER, TOKEN, RunCli, copy_repo, edit

DATA_REPO = "ainative/kwanzaa-grounded-chat"
VERSION = Path("datasets/kwanzaa/v0")
MANIFEST = f"adapters/{ADAPTER}/dataset.yaml"


def manifest_line(root: Path, text: str) -> int:
    lines = (root / MANIFEST).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def outside_copy(root: Path, name: str) -> Path:
    """A file outside the repository with the same bytes as the repo's `name`."""
    target = root.parent / "outside" / Path(name).name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes((root / name).read_bytes())
    return target


def symlinked_train_file(root: Path) -> str:
    path = root / VERSION / "train.jsonl"
    target = outside_copy(root, str(VERSION / "train.jsonl"))
    path.unlink()
    path.symlink_to(target)
    return "path: datasets/kwanzaa/v0/train.jsonl"


def symlinked_answer_schema(root: Path) -> str:
    path = root / "datasets/kwanzaa/answer_json.schema.json"
    target = outside_copy(root, "datasets/kwanzaa/answer_json.schema.json")
    path.unlink()
    path.symlink_to(target)
    return "answer_schema:"


def symlinked_version_folder(root: Path) -> str:
    folder = root / VERSION
    moved = root.parent / "outside-v0"
    folder.rename(moved)
    folder.symlink_to(moved, target_is_directory=True)
    return "path: datasets/kwanzaa/v0/train.jsonl"


def symlinked_dataset_folder(root: Path) -> str:
    folder = root / "datasets/kwanzaa"
    moved = root.parent / "outside-kwanzaa"
    folder.rename(moved)
    folder.symlink_to(moved, target_is_directory=True)
    return "path: datasets/kwanzaa/v0/train.jsonl"


def named_pipe_as_train_file(root: Path) -> str:
    path = root / VERSION / "train.jsonl"
    path.unlink()
    os.mkfifo(path)
    return "path: datasets/kwanzaa/v0/train.jsonl"


def newline_in_path(root: Path) -> str:
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "train.jsonl").write_bytes((root / VERSION / "train.jsonl").read_bytes())
    (root / "datasets/kwanzaa/v0\n").mkdir()  # so that the path does resolve, outside
    edit(
        root / MANIFEST,
        "path: datasets/kwanzaa/v0/train.jsonl",
        'path: "datasets/kwanzaa/v0\\n/../../../../outside/train.jsonl"',
    )
    return "outside/train.jsonl"


def absolute_path(root: Path) -> str:
    edit(root / MANIFEST, "path: datasets/kwanzaa/v0/train.jsonl", "path: /etc/passwd")
    return "path: /etc/passwd"


ESCAPES: dict[str, Callable[[Path], str]] = {
    "symlinked data file": symlinked_train_file,
    "symlinked answer schema": symlinked_answer_schema,
    "symlinked version folder": symlinked_version_folder,
    "symlinked dataset folder": symlinked_dataset_folder,
    "named pipe as data file": named_pipe_as_train_file,
    "newline in a path": newline_in_path,
    "absolute path": absolute_path,
}


@pytest.fixture(params=sorted(ESCAPES))
def escaped_repo(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int]:
    """The embedded default with one way out of the repository, and the manifest line that
    declares the offending path."""
    root = copy_repo(tmp_path / "repo")
    marker = ESCAPES[request.param](root)
    return root, manifest_line(root, marker)


def test_validate_reports_a_path_out_of_the_repository_at_the_manifest_line(
    escaped_repo: tuple[Path, int], run_cli: RunCli
) -> None:
    root, line = escaped_repo
    code, out, err = run_cli("validate", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 2, out + err
    assert re.search(rf"{re.escape(MANIFEST)}:{line}:\d+ ", out + err), out + err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("verb", "options"),
    [(("dataset", "push"), ()), (("dataset", "lock"), ()), (("train",), ("--backend", "local"))],
)
def test_push_lock_and_train_refuse_a_path_out_of_the_repository_before_any_hub_request(
    escaped_repo: tuple[Path, int],
    verb: tuple[str, ...],
    options: tuple[str, ...],
    env: Any,
    run_cli: RunCli,
) -> None:
    root, line = escaped_repo
    before = (root / MANIFEST).read_bytes()
    code, out, err = run_cli(*verb, f"adapters/{ADAPTER}", *options, "--repo", root)
    assert code == 2, out + err
    assert f"{MANIFEST}:{line}" in out + err
    assert "Traceback" not in out + err
    assert [r for r in env.requests() if not r["path"].startswith("/_emulator")] == []
    assert (root / MANIFEST).read_bytes() == before  # lock wrote nothing


def test_a_push_uploads_the_manifest_list_and_never_an_undeclared_file(
    env: Any, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_repo(tmp_path / "repo")
    monkeypatch.setenv("PLANTED_SECRET", "hf_plantedSecretThatMustNotLeave")
    (root / VERSION / "notes.txt").symlink_to("/proc/self/environ")
    (root / VERSION / "extra.jsonl").write_text("{}\n")
    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, out + err
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    files = set(api.list_repo_files(DATA_REPO, repo_type="dataset", revision="v0"))
    assert files - {".gitattributes"} == {
        "v0/train.jsonl",
        "v0/eval.jsonl",
        "answer_json.schema.json",
    }


def test_validate_warns_of_a_symlink_beside_the_data_that_is_never_uploaded(
    tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    (root / VERSION / "notes.txt").symlink_to("/proc/self/environ")
    code, out, err = run_cli("validate", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, out + err
    assert f"{MANIFEST}:" in out
    assert "datasets/kwanzaa/v0/notes.txt is a symbolic link" in out
    assert "never read or uploaded" in out
