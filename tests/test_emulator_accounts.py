"""The local Hub's users, tokens and gated repos, as the real Hub answers them: a gated repo's
files answer 403 `GatedRepo` (401 anonymous) until its terms are accepted, while its info
stays readable; `auth-check` says the same; the owners manage access requests; fine-grained
tokens read private repos with `repo.content.read`, write with `repo.write`, and read gated
files only with the gated-repos permission."""

from __future__ import annotations

from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

OWNER, OWNER_TOKEN = "gate-keeper", "hf_gateKeeperToken123"
READER, READER_TOKEN = "reader", "hf_readerToken1234567"
SCOPED_TOKEN = "hf_readerScopedToken12"  # fine-grained, without the gated-repos permission
GATED_SCOPED_TOKEN = "hf_readerGatedScoped12"  # fine-grained, with it
REPO = f"{OWNER}/gated-model"


@pytest.fixture
def gated(hub: Any) -> Any:
    """`REPO` holds a file and is gated `auto`; READER has no access yet."""
    fine = {"user": READER, "role": "fineGrained", "scopes": []}
    hub.add_accounts(
        {
            "users": [{"name": OWNER}, {"name": READER}],
            "tokens": [
                {"token": OWNER_TOKEN, "user": OWNER},
                {"token": READER_TOKEN, "user": READER},
                {**fine, "token": SCOPED_TOKEN},
                {**fine, "token": GATED_SCOPED_TOKEN, "can_read_gated_repos": True},
            ],
        }
    )
    owner = api(hub, OWNER_TOKEN)
    owner.create_repo(REPO)
    owner.upload_file(path_or_fileobj=b"weights", path_in_repo="model.bin", repo_id=REPO)
    owner.update_repo_settings(REPO, gated="auto")
    return hub


def api(hub: Any, token: str | None) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=token or False)


def download(hub: Any, token: str | None, tmp_path: Any) -> str:
    return hf_hub_download(
        REPO, "model.bin", endpoint=hub.endpoint, token=token or False, cache_dir=tmp_path
    )


def test_a_gated_repos_setting_shows_in_its_info_and_its_files_are_refused(
    gated: Any, tmp_path: Any
) -> None:
    assert api(gated, READER_TOKEN).model_info(REPO).gated == "auto"  # info stays readable
    with pytest.raises(GatedRepoError) as refused:
        download(gated, READER_TOKEN, tmp_path)
    assert refused.value.response.status_code == 403
    assert f"{gated.endpoint}/{REPO} to ask for access" in str(refused.value)
    with pytest.raises(GatedRepoError) as anonymous:
        download(gated, None, tmp_path)
    assert anonymous.value.response.status_code == 401
    assert download(gated, OWNER_TOKEN, tmp_path)  # its owners never ask


def test_auth_check_answers_as_the_hub_for_gated_missing_and_granted(gated: Any) -> None:
    with pytest.raises(GatedRepoError):
        api(gated, READER_TOKEN).auth_check(REPO)
    with pytest.raises(RepositoryNotFoundError):
        api(gated, READER_TOKEN).auth_check(f"{OWNER}/missing")
    assert gated.ask_access(REPO, READER) == "accepted"  # gated "auto": at once
    api(gated, READER_TOKEN).auth_check(REPO)
    with pytest.raises(HfHubHTTPError) as write:
        api(gated, READER_TOKEN).auth_check(REPO, write=True)
    assert write.value.response.status_code == 403


def test_a_manual_gate_leaves_a_request_pending_until_the_owner_accepts(
    gated: Any, tmp_path: Any
) -> None:
    owner = api(gated, OWNER_TOKEN)
    owner.update_repo_settings(REPO, gated="manual")
    assert gated.ask_access(REPO, READER) == "pending"
    (pending,) = owner.list_pending_access_requests(REPO)
    assert (pending.username, pending.email) == (READER, f"{READER}@example.invalid")
    with pytest.raises(GatedRepoError):
        download(gated, READER_TOKEN, tmp_path)
    owner.accept_access_request(REPO, request_id=pending.request_id)
    assert [r.username for r in owner.list_accepted_access_requests(REPO)] == [READER]
    assert download(gated, READER_TOKEN, tmp_path)
    with pytest.raises(HfHubHTTPError) as not_owner:
        list(api(gated, READER_TOKEN).list_accepted_access_requests(REPO))
    assert not_owner.value.response.status_code == 403


def test_a_fine_grained_token_reads_granted_gated_files_only_with_that_permission(
    gated: Any, tmp_path: Any
) -> None:
    api(gated, OWNER_TOKEN).grant_access(REPO, READER)
    with pytest.raises(GatedRepoError) as refused:
        download(gated, SCOPED_TOKEN, tmp_path)
    assert "may not read gated repos" in str(refused.value)
    assert download(gated, GATED_SCOPED_TOKEN, tmp_path)
    fine_grained = api(gated, SCOPED_TOKEN).whoami()["auth"]["accessToken"]["fineGrained"]
    assert fine_grained["canReadGatedRepos"] is False


def test_fine_grained_scopes_decide_private_reads_and_writes(hub: Any) -> None:
    hub.add_accounts(
        {
            "users": [{"name": OWNER}],
            "tokens": [
                {"token": OWNER_TOKEN, "user": OWNER},
                {
                    "token": SCOPED_TOKEN,
                    "user": OWNER,
                    "role": "fineGrained",
                    "scopes": [{"entity": OWNER, "permissions": ["repo.content.read"]}],
                },
                {"token": GATED_SCOPED_TOKEN, "user": OWNER, "role": "fineGrained"},
            ],
        }
    )
    api(hub, OWNER_TOKEN).create_repo(REPO, private=True)
    assert api(hub, SCOPED_TOKEN).model_info(REPO).private
    with pytest.raises(RepositoryNotFoundError):
        api(hub, GATED_SCOPED_TOKEN).model_info(REPO)  # no scope on the namespace
    with pytest.raises(HfHubHTTPError) as write:
        api(hub, SCOPED_TOKEN).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=REPO)
    assert write.value.response.status_code == 403


def test_an_orgs_full_name_and_private_default_come_from_its_registration(hub: Any) -> None:
    hub.add_accounts(
        {
            "users": [{"name": OWNER, "orgs": {"private-corp": "admin"}}],
            "tokens": [{"token": OWNER_TOKEN, "user": OWNER}],
            "orgs": [
                {"name": "private-corp", "fullname": "Private Corp", "private_by_default": True}
            ],
        }
    )
    owner = api(hub, OWNER_TOKEN)
    (org,) = owner.whoami()["orgs"]
    assert org["fullname"] == "Private Corp"
    assert owner.model_info(owner.create_repo("private-corp/by-default").repo_id).private
    assert not owner.model_info(
        owner.create_repo("private-corp/asked", private=False).repo_id
    ).private
    assert not owner.model_info(owner.create_repo(f"{OWNER}/own").repo_id).private
