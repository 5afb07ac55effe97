"""LFS as on the Hub: binary files, files over 10 MiB and files the repo's `.gitattributes`
sends through LFS are uploaded with the LFS batch API, listed with their LFS pointer's blob
id and the content's sha256, and downloaded with the Hub's LFS headers.

huggingface_hub takes Xet instead whenever hf_xet is installed; the emulator has no Xet
storage, so the runner (and these tests) turn it off and the client takes LFS."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.hf_api import RepoFile

from tests.conftest import ADAPTER, TOKEN, RunCli, copy_repo

REPO = "ainative/lfs-parity"
BINARY = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 8
MATCHED = b"text that no rule but .gitattributes sends through LFS\n"
TEXT = b"a regular text file\n"


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    sha256 = hashlib.sha256(data).hexdigest()
    spec = "version https://git-lfs.github.com/spec/v1"
    return f"{spec}\noid sha256:{sha256}\nsize {len(data)}\n".encode()


@pytest.fixture
def api(env: Any, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    # What HF_HUB_DISABLE_XET=1 does when set before huggingface_hub is imported.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    return HfApi(endpoint=env.endpoint, token=TOKEN)


@pytest.fixture
def uploaded(api: HfApi, env: Any) -> dict[str, bytes]:
    """A model repo holding a binary file, a `.gitattributes`-matched file and a text file."""
    files = {"blob.dat": BINARY, "model.safetensors": MATCHED, "notes.txt": TEXT}
    api.create_repo(REPO)
    for path, data in files.items():
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=REPO)
    return files


def lfs_batches(env: Any) -> list[dict[str, Any]]:
    return [r for r in env.requests() if r["path"] == f"/{REPO}.git/info/lfs/objects/batch"]


def lfs_uploads(env: Any) -> list[dict[str, Any]]:
    return [r for r in env.requests() if r["method"] == "PUT"]


def test_binary_and_gitattributes_matched_files_go_through_lfs_and_list_with_their_pointer_id(
    api: HfApi, env: Any, uploaded: dict[str, bytes]
) -> None:
    assert len(lfs_batches(env)) == 2  # one per LFS file; the text file went inline
    assert len(lfs_uploads(env)) == 2
    for listing in (
        {f.path: f for f in api.list_repo_tree(REPO) if isinstance(f, RepoFile)},
        {f.path: f for f in api.get_paths_info(REPO, list(uploaded)) if isinstance(f, RepoFile)},
    ):
        for path in ("blob.dat", "model.safetensors"):
            data, item = uploaded[path], listing[path]
            assert item.lfs is not None, path
            assert item.lfs.sha256 == hashlib.sha256(data).hexdigest()
            assert item.lfs.size == item.size == len(data)
            assert item.lfs.pointer_size == len(lfs_pointer(data))
            assert item.blob_id == git_blob(lfs_pointer(data))
        assert listing["notes.txt"].lfs is None
        assert listing["notes.txt"].blob_id == git_blob(TEXT)


def test_a_text_file_over_10_mib_goes_through_lfs(api: HfApi, env: Any) -> None:
    big = b"plain text, but more of it than the Hub keeps in git\n" * 200_000
    assert len(big) > 10 * 1024 * 1024
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=big, path_in_repo="big.txt", repo_id=REPO)
    (item,) = api.get_paths_info(REPO, ["big.txt"])
    assert isinstance(item, RepoFile)
    assert item.lfs is not None
    assert item.lfs.sha256 == hashlib.sha256(big).hexdigest()
    assert len(lfs_uploads(env)) == 1


# A Space app that uploads a binary file with the plain client (hf_xet installed, nothing set
# by the app itself), then pauses its own Space.
SPACE_APP = """
import os
from huggingface_hub import HfApi
api = HfApi(token=os.environ["HF_TOKEN"])
api.upload_file(path_or_fileobj=bytes(range(256)), path_in_repo="weights.bin",
                repo_id=os.environ["TARGET_REPO"])
api.pause_space(os.environ["SPACE_ID"])
"""


def test_a_space_the_emulator_runs_uploads_its_binary_artifacts_through_lfs(
    api: HfApi, env: Any
) -> None:
    space = "ainative/uploader"
    api.create_repo(REPO)
    api.create_repo(space, repo_type="space", space_sdk="docker")
    api.add_space_secret(space, "HF_TOKEN", TOKEN)
    api.add_space_variable(space, "TARGET_REPO", REPO)
    readme = b"---\ntitle: uploader\nsdk: docker\napp_port: 7860\n---\n"
    api.upload_file(path_or_fileobj=readme, path_in_repo="README.md", repo_id=space,
                    repo_type="space")  # fmt: skip
    api.upload_file(path_or_fileobj=SPACE_APP.encode(), path_in_repo="app.py", repo_id=space,
                    repo_type="space")  # fmt: skip
    give_up = time.monotonic() + 60  # a bound on a hang, not a speed check
    while api.get_space_runtime(space).stage not in ("PAUSED", "RUNTIME_ERROR"):
        assert time.monotonic() < give_up, api.get_space_runtime(space).raw
        time.sleep(0.1)
    assert api.get_space_runtime(space).stage == "PAUSED", list(api.fetch_space_logs(space))
    (item,) = api.get_paths_info(REPO, ["weights.bin"])
    assert isinstance(item, RepoFile)
    assert item.lfs is not None


def test_an_unchanged_lfs_file_uploaded_again_is_neither_sent_nor_committed(
    api: HfApi, env: Any, uploaded: dict[str, bytes]
) -> None:
    head = api.repo_info(REPO).sha
    env.clear_requests()
    api.upload_file(path_or_fileobj=BINARY, path_in_repo="blob.dat", repo_id=REPO)
    assert api.repo_info(REPO).sha == head
    # The client asked the LFS batch API, which answered that the Hub holds the object.
    assert len(lfs_batches(env)) == 1
    assert lfs_uploads(env) == []


def test_lfs_files_download_byte_identical_with_the_hubs_lfs_headers(
    api: HfApi, env: Any, uploaded: dict[str, bytes], tmp_path: Path
) -> None:
    for path in ("blob.dat", "model.safetensors"):
        data = uploaded[path]
        local = hf_hub_download(REPO, path, cache_dir=tmp_path / "cache", endpoint=env.endpoint)
        assert Path(local).read_bytes() == data
        head = httpx.head(f"{env.endpoint}/{REPO}/resolve/main/{path}")
        assert head.headers["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert head.headers["X-Linked-Size"] == str(len(data))
        assert head.headers["ETag"] == f'"{git_blob(lfs_pointer(data))}"'
        metadata = get_hf_file_metadata(hf_hub_url(REPO, path, endpoint=env.endpoint))
        assert (metadata.etag, metadata.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_commit_naming_an_lfs_object_never_uploaded_is_refused_and_writes_nothing(
    api: HfApi, env: Any, uploaded: dict[str, bytes]
) -> None:
    head = api.repo_info(REPO).sha
    lines = [
        {"key": "header", "value": {"summary": "add a file whose bytes never came"}},
        {"key": "lfsFile", "value": {"path": "ghost.bin", "algo": "sha256", "oid": "ab" * 32}},
    ]
    answer = httpx.post(
        f"{env.endpoint}/api/models/{REPO}/commit/main",
        content="\n".join(json.dumps(line) for line in lines),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 400
    assert "LFS pointer pointed to a file that does not exist" in answer.json()["error"]
    assert "ghost.bin" in answer.json()["error"]
    assert api.repo_info(REPO).sha == head


def test_an_lfs_dataset_version_pushed_twice_is_already_on_the_hub_the_second_time(
    env: Any, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset repo whose `.gitattributes` sends JSONL through LFS: the runner turns Xet
    off for the emulator itself, and the second push compares the local files with the Hub's
    by sha256 (their blob ids are the pointers')."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)  # as hf_xet leaves it
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    dataset = "ainative/kwanzaa-grounded-chat"
    api.create_repo(dataset, repo_type="dataset", private=True)
    rules = b"*.jsonl filter=lfs diff=lfs merge=lfs -text\n"
    api.upload_file(
        path_or_fileobj=rules, path_in_repo=".gitattributes", repo_id=dataset, repo_type="dataset"
    )
    root = copy_repo(tmp_path / "repo")
    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, out + err
    assert "pushed and tagged" in out
    head = api.repo_info(dataset, repo_type="dataset").sha
    listing = {f.path: f for f in api.list_repo_tree(dataset, "v0", repo_type="dataset")}
    train = (root / "datasets/kwanzaa/v0/train.jsonl").read_bytes()
    train_item = listing["v0/train.jsonl"]
    assert isinstance(train_item, RepoFile)
    assert train_item.lfs is not None
    assert train_item.lfs.sha256 == hashlib.sha256(train).hexdigest()

    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, out + err
    assert "already on the Hub" in out
    assert api.repo_info(dataset, repo_type="dataset").sha == head


def test_train_py_takes_the_lfs_path_against_the_emulator_as_the_runner_does() -> None:
    """train.py runs alone (a Space, a Job): it keeps its own copy of the loopback rule."""
    from runner.hub import client
    from runner.train import train

    assert train.LOOPBACK_HOSTS == client.LOOPBACK_HOSTS
