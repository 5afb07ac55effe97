"""The local Hub answers as the Hub does where the runner (and huggingface_hub) tell errors
apart: a repo id without a namespace (a legacy id such as `gpt2`) is a missing repo on every
route, refs errors carry the Hub's status and words, and repo listings honour visibility,
filters, pages and the item shapes `list_models` and its kin parse; a moved repo's old id
leads to the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from runner.hub.emulator import listing
from tests.conftest import TOKEN


@pytest.fixture
def api(hub: Any) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


def test_a_repo_id_without_namespace_is_a_missing_repo_on_every_route(api: HfApi) -> None:
    for repo_id in ("gpt2", "repo-that-does-not-exist"):
        assert not api.repo_exists(repo_id)
        assert not api.revision_exists(repo_id, "main")
        assert not api.file_exists(repo_id, "config.json")
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_refs(repo_id, repo_type="dataset")
        with pytest.raises(RepositoryNotFoundError):
            api.hf_hub_download(repo_id, "config.json")


def test_an_existing_branch_and_the_default_branch_are_refused_in_the_hubs_words(
    api: HfApi,
) -> None:
    repo_id = api.create_repo("ainative/refs").repo_id
    api.create_branch(repo_id, branch="cool")
    for branch in ("cool", "main"):
        with pytest.raises(HfHubHTTPError, match=f"Reference refs/heads/{branch} already exists"):
            api.create_branch(repo_id, branch=branch)
        api.create_branch(repo_id, branch=branch, exist_ok=True)  # the client's 409 rule
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main"):
        api.delete_branch(repo_id, branch="main")


def test_a_tag_on_a_missing_revision_is_a_missing_revision(api: HfApi) -> None:
    repo_id = api.create_repo("ainative/tags").repo_id
    with pytest.raises(RevisionNotFoundError):
        api.create_tag(repo_id, tag="not a valid name", revision="foobar")
    api.create_tag(repo_id, tag="v1")
    with pytest.raises(HfHubHTTPError) as twice:
        api.create_tag(repo_id, tag="v1")
    assert twice.value.response.status_code == 409


def test_listings_show_a_private_repo_only_to_who_may_read_it(api: HfApi) -> None:
    api.create_repo("ainative/hidden-model", private=True)
    api.create_repo("ainative/hidden-data", private=True, repo_type="dataset")
    anonymous = HfApi(endpoint=api.endpoint, token=False)
    kwargs: dict[str, Any] = {"author": "AINATIVE", "search": "hidden"}
    assert [m.id for m in api.list_models(**kwargs)] == ["ainative/hidden-model"]
    assert [d.id for d in api.list_datasets(**kwargs)] == ["ainative/hidden-data"]
    assert list(anonymous.list_models(**kwargs)) == []
    assert list(anonymous.list_datasets(**kwargs)) == []


def test_listing_items_take_the_shape_the_query_asks_for(api: HfApi) -> None:
    repo_id = api.create_repo("ainative/shapes").repo_id
    api.upload_file(
        path_or_fileobj=b"---\ntags: [lora]\nlibrary_name: peft\n---\n",
        path_in_repo="README.md",
        repo_id=repo_id,
    )
    (light,) = api.list_models(author="ainative", filter="lora")
    assert (light.id, light.library_name, light.private) == (repo_id, "peft", False)
    assert light.siblings is None
    assert light.sha is None
    (full,) = api.list_models(author="ainative", full=True)
    assert full.sha == api.model_info(repo_id).sha
    assert {s.rfilename for s in full.siblings or []} == {".gitattributes", "README.md"}
    (expanded,) = api.list_models(author="ainative", expand=["sha"])
    assert expanded.sha == full.sha
    assert expanded.private is None
    assert expanded.tags is None
    assert list(api.list_models(author="ainative", filter="not-a-tag")) == []


def test_a_long_listing_comes_in_linked_pages(api: HfApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    made = {api.create_repo(f"ainative/paged-{i}").repo_id for i in range(5)}
    first = httpx.get(f"{api.endpoint}/api/models", params={"author": "ainative"}, timeout=30)
    assert len(first.json()) == 2
    assert "cursor=2" in first.links["next"]["url"]
    assert {m.id for m in api.list_models(author="ainative")} == made
    created = [m.created_at for m in api.list_models(author="ainative", sort="created_at")]
    assert len(created) == 5
    assert created == sorted(created, reverse=True)
    assert len(list(api.list_models(author="ainative", limit=3))) == 3


def test_a_moved_repo_is_reached_by_its_old_id_by_who_may_read_it(api: HfApi) -> None:
    old = api.create_repo("ainative/before", private=True).repo_id
    api.upload_file(path_or_fileobj=b"content", path_in_repo="file.txt", repo_id=old)
    api.move_repo(old, "ainative/after")
    assert Path(api.hf_hub_download(old, "file.txt")).read_bytes() == b"content"
    assert api.model_info(old).id == "ainative/after"
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=api.endpoint, token=False).model_info(old)


def test_only_a_path_that_begins_by_climbing_out_is_refused(api: HfApi) -> None:
    repo_id = api.create_repo("ainative/paths").repo_id
    api.upload_file(path_or_fileobj=b"x", path_in_repo="folder/..\\..\\file", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="..\\file", repo_id=repo_id)
    assert refused.value.response.status_code == 422


def test_the_root_of_a_branch_with_a_slash_in_its_name_lists(api: HfApi) -> None:
    repo_id = api.create_repo("ainative/slashed").repo_id
    api.create_branch(repo_id, branch="release/v1")
    listed = api.list_repo_tree(repo_id, revision="release/v1")
    assert [entry.path for entry in listed] == [".gitattributes"]
