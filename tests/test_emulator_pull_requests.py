"""Pull requests and commit conflicts in the local Hub, through the real huggingface_hub client:
a commit sent with `create_pr=True` opens pull request #N at `refs/pr/N`, which the target
branch does not see until the pull request is merged; a commit whose `parent_commit` is no
longer the head is refused with 412 and the Hub's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from tests.conftest import TOKEN

REPO = "ainative/pull-requests"


@pytest.fixture
def api(hub: Any) -> HfApi:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo(REPO)
    return api


def _add(path: str, content: bytes) -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path_in_repo=path, path_or_fileobj=content)]


def test_a_commit_with_create_pr_opens_pr_n_at_its_ref_and_main_does_not_see_it(
    api: HfApi,
) -> None:
    main_before = api.model_info(REPO).sha
    first = api.create_commit(REPO, _add("a.txt", b"a"), commit_message="Add a", create_pr=True)
    second = api.create_commit(REPO, _add("b.txt", b"b"), commit_message="Add b", create_pr=True)

    assert (first.pr_num, first.pr_revision) == (1, "refs/pr/1")
    assert (second.pr_num, second.pr_revision) == (2, "refs/pr/2")
    assert api.model_info(REPO).sha == main_before
    assert api.model_info(REPO, revision="refs/pr/1").sha == first.oid
    assert api.file_exists(REPO, "a.txt", revision="refs/pr/1")
    with pytest.raises(EntryNotFoundError):
        api.hf_hub_download(REPO, "a.txt")
    details = api.get_discussion_details(REPO, 1)
    assert details.is_pull_request
    assert details.status == "open"
    assert details.title == "Add a"
    assert [e.type for e in details.events] == ["comment", "commit"]
    refs = api.list_repo_refs(REPO, include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests or []] == [
        ("refs/pr/1", first.oid),
        ("refs/pr/2", second.oid),
    ]
    assert [b.name for b in refs.branches] == ["main"]


def test_merging_a_pull_request_moves_main_and_marks_it_merged(api: HfApi) -> None:
    opened = api.create_commit(REPO, _add("a.txt", b"a"), commit_message="Add a", create_pr=True)
    assert opened.pr_num is not None

    api.merge_pull_request(REPO, opened.pr_num)

    merged = api.get_discussion_details(REPO, opened.pr_num)
    assert merged.status == "merged"
    assert merged.merge_commit_oid == api.model_info(REPO).sha
    assert api.file_exists(REPO, "a.txt")


def test_a_pull_request_that_conflicts_with_its_target_cannot_be_merged(api: HfApi) -> None:
    opened = api.create_commit(REPO, _add("a.txt", b"pr"), commit_message="PR", create_pr=True)
    api.create_commit(REPO, _add("a.txt", b"main"), commit_message="Main")
    assert opened.pr_num is not None

    assert api.get_discussion_details(REPO, opened.pr_num).conflicting_files == ["a.txt"]
    with pytest.raises(HfHubHTTPError) as refused:
        api.merge_pull_request(REPO, opened.pr_num)
    assert refused.value.response.status_code == 409


def test_a_stale_parent_commit_gets_412_with_the_hubs_message(api: HfApi) -> None:
    parent = api.model_info(REPO).sha
    api.create_commit(REPO, _add("a.txt", b"a"), commit_message="Move main")

    with pytest.raises(HfHubHTTPError) as refused:
        api.create_commit(REPO, _add("b.txt", b"b"), commit_message="Stale", parent_commit=parent)
    assert refused.value.response.status_code == 412
    assert "The branch was updated since you opened this page." in str(refused.value)


def test_upload_folder_leaves_out_what_the_repos_gitignore_ignores(
    api: HfApi, tmp_path: Path
) -> None:
    api.create_commit(REPO, _add(".gitignore", b"nested/*\n*.log\n"), commit_message="Ignore")
    folder = tmp_path / "folder"
    (folder / "nested").mkdir(parents=True)
    for path in ("nested/file.bin", "run.log", "kept.txt"):
        (folder / path).write_bytes(b"x")

    api.upload_folder(folder_path=folder, repo_id=REPO)

    assert set(api.list_repo_files(REPO)) == {".gitattributes", ".gitignore", "kept.txt"}
