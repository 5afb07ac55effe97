"""Errors as the Hub sends them, seen through the real huggingface_hub client: the exception
class for each kind of "not found", a request id on every answer (and in the runner's own
messages), repo ids in any case, abbreviated commit ids, 422 for a path no commit may hold,
and card metadata checked by `/api/validate-yaml`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, ModelCard, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session

from runner.hub.client import HubClient, NotFoundError, RepoRef
from tests.conftest import TOKEN, RunCli

REPO_ID = "ainative/kwanzaa-mini-lora"
REQUEST_ID = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}")


@pytest.fixture
def api(hub: Any) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture
def seeded(hub: Any) -> str:
    """The repo's one seeded commit id."""
    return hub.seed(REPO_ID, {"a.txt": b"hello", "data/b.txt": b"bee"})


def download(hub: Any, tmp_path: Path, repo_id: str, filename: str, **kwargs: Any) -> bytes:
    path = hf_hub_download(
        repo_id, filename, endpoint=hub.endpoint, token=TOKEN, cache_dir=tmp_path / "c", **kwargs
    )
    return Path(path).read_bytes()


# -- the exception class for each 404, with a request id ------------------------------------

Call = Callable[[HfApi, Any, Path], object]
MISSING: dict[str, tuple[Call, type[Exception]]] = {
    "repo": (lambda a, h, t: a.repo_info("ainative/nope"), RepositoryNotFoundError),
    "revision": (lambda a, h, t: a.repo_info(REPO_ID, revision="v9"), RevisionNotFoundError),
    "entry": (lambda a, h, t: download(h, t, REPO_ID, "nope.txt"), EntryNotFoundError),
    "tag to delete": (lambda a, h, t: a.delete_tag(REPO_ID, tag="v9"), RevisionNotFoundError),
    "file to delete": (lambda a, h, t: a.delete_file("nope.txt", REPO_ID), EntryNotFoundError),
}


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_each_missing_thing_raises_its_own_client_error_quoting_the_request_id(
    api: HfApi, hub: Any, seeded: str, tmp_path: Path, missing: str
) -> None:
    call, expected = MISSING[missing]
    with pytest.raises(expected) as raised:
        call(api, hub, tmp_path)
    error = raised.value
    assert isinstance(error, HfHubHTTPError)
    assert error.response.status_code == 404
    assert REQUEST_ID.match(error.request_id or ""), error.request_id
    assert f"Request ID: {error.request_id}" in str(error)


def test_every_answer_carries_its_own_request_id_echoing_the_clients_trace_id(
    hub: Any, seeded: str
) -> None:
    """Successes, errors and injected faults alike; the client's `X-Amzn-Trace-Id` (a uuid
    huggingface_hub sends with every request) ends the id, so a log line finds its answer."""
    session = get_session()
    hub.fail(method="GET", path=r"/refs$", status=503, times=1)
    answers = [
        session.get(f"{hub.endpoint}/api/models/{REPO_ID}"),
        session.get(f"{hub.endpoint}/api/models/{REPO_ID}"),
        session.get(f"{hub.endpoint}/api/models/ainative/nope"),
        session.get(f"{hub.endpoint}/api/models/{REPO_ID}/refs"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 503]
    ids = [a.headers.get("X-Request-Id") or "" for a in answers]
    assert all(REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    for answer, request_id in zip(answers[:3], ids[:3], strict=True):
        assert request_id.endswith(";" + answer.request.headers["X-Amzn-Trace-Id"])


def test_runner_hub_error_names_the_request_id_to_quote_to_support(
    hub: Any, seeded: str, tmp_path: Path
) -> None:
    client = HubClient(hub.endpoint, token=TOKEN, cache_dir=tmp_path / "cache")
    with pytest.raises(NotFoundError) as raised:
        client.download(RepoRef(REPO_ID), "nope.txt")
    assert re.search(
        r"\(request id: Root=1-[0-9a-f]{8}-[0-9a-f]{24};[0-9a-f-]+\)", str(raised.value)
    )


@pytest.mark.parametrize("status", [403, 503])
def test_cli_error_from_the_hub_shows_the_request_id(
    env: Any, demo_repo: Path, run_cli: RunCli, status: int
) -> None:
    """A refusal, and a failure that outlasted the retries (the last answer's id)."""
    env.fail(method="GET", path=r"/refs$", status=status, times=None, retry_after=0)
    code, out, err = run_cli("status", "--repo", demo_repo)
    assert code in (1, 2), out + err
    assert "Traceback" not in out + err
    assert re.search(r"request id: Root=1-[0-9a-f]{8}-[0-9a-f]{24}", err), err


# -- repo ids in any case ---------------------------------------------------------------------


def test_repo_id_in_another_case_finds_the_repo_and_answers_in_its_own_case(
    api: HfApi, hub: Any, seeded: str, tmp_path: Path
) -> None:
    shouted = "AINative/Kwanzaa-Mini-Lora"
    assert api.repo_info(shouted).id == REPO_ID
    assert download(hub, tmp_path, shouted, "a.txt") == b"hello"
    commit = api.upload_file(path_or_fileobj=b"new", path_in_repo="n.txt", repo_id=shouted)
    assert api.repo_info(REPO_ID).sha == commit.oid
    with pytest.raises(HfHubHTTPError) as raised:
        api.create_repo(shouted)
    assert raised.value.response.status_code == 409


# -- abbreviated commit ids -------------------------------------------------------------------


def test_unique_commit_id_prefix_of_seven_or_more_hex_is_a_revision(
    api: HfApi, hub: Any, seeded: str, tmp_path: Path
) -> None:
    assert api.repo_info(REPO_ID, revision=seeded[:7]).sha == seeded
    assert download(hub, tmp_path, REPO_ID, "data/b.txt", revision=seeded[:12]) == b"bee"
    assert "data/b.txt" in api.list_repo_files(REPO_ID, revision=seeded[:7])
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(REPO_ID, revision=seeded[:6])


def test_commit_id_prefix_shared_by_two_commits_names_neither(api: HfApi, hub: Any) -> None:
    hub.seed("ainative/twins", {"a.txt": b"1"}, commit_id="abcdef1" + "0" * 33)
    hub.seed("ainative/twins", {"a.txt": b"2"}, commit_id="abcdef1" + "1" * 33)
    with pytest.raises(RevisionNotFoundError):
        api.repo_info("ainative/twins", revision="abcdef1")
    assert api.repo_info("ainative/twins", revision="abcdef11").sha == "abcdef1" + "1" * 33


# -- invalid paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["bad\nname.txt", "x" * 256 + ".txt", "data//b.txt"])
def test_upload_to_a_path_no_commit_may_hold_is_refused_with_422(
    api: HfApi, seeded: str, path: str
) -> None:
    with pytest.raises(HfHubHTTPError) as raised:
        api.upload_file(path_or_fileobj=b"x", path_in_repo=path, repo_id=REPO_ID)
    assert raised.value.response.status_code == 422
    assert "path" in str(raised.value).lower()
    assert api.repo_info(REPO_ID).sha == seeded


# -- validate-yaml ----------------------------------------------------------------------------


@pytest.fixture
def hub_endpoint(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # RepoCard.validate posts to the endpoint huggingface_hub read at import.
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)


def card(metadata: str) -> ModelCard:
    return ModelCard(f"---\n{metadata}\n---\n\n# An adapter\n")


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ("license: asdf", '- Error: "license" must be one of ['),
        ("license: Apache-2.0", '- Error: "license" must be one of ['),
        ("license: [mit, nope]", '- Error: "license" must be one of ['),
        ("datasets: {a: 1}", '- Error: "datasets" must be a string or a list of strings'),
        ("library_name: [peft]", '- Error: "library_name" must be a string'),
    ],
)
def test_card_metadata_the_hub_would_refuse_fails_validation_with_its_reason(
    hub_endpoint: None, metadata: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        card(metadata).validate()


@pytest.mark.parametrize("license_id", ["apache-2.0", "cc-by-4.0", "mit", "other"])
def test_card_license_must_be_the_hubs_id_exactly(hub_endpoint: None, license_id: str) -> None:
    """The ids our specs use validate; the same id in capitals (which a spec's SPDX-style
    pattern lets through) is refused, as the Hub refuses it."""
    card(f"license: {license_id}\nlibrary_name: peft\ntags: [peft, lora]").validate()
    with pytest.raises(ValueError, match='"license" must be one of'):
        card(f"license: {license_id.upper()}").validate()
