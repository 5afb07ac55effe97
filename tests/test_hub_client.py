"""The client layer against the emulator: operations survive a flaky Hub, give one clear
error past the retry budget, never overwrite a change made since their parent commit, and
never let a token out."""

from __future__ import annotations

import logging
import random
import string
from pathlib import Path

import pytest

from runner.hub.client import HubClient, HubError, RepoRef, StaleParentError
from runner.hub.retry import RetryPolicy

MODEL = RepoRef("ainative/flaky-lora")


def fake_token() -> str:
    return "hf_" + "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=34))


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(hub, tmp_path, waits) -> HubClient:
    policy = RetryPolicy(attempts=4, sleep=waits.append)
    return HubClient(hub.endpoint, token=fake_token(), retry=policy, cache_dir=tmp_path / "cache")


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "folder"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def every_operation(client: HubClient, tmp_path: Path) -> list[tuple[str, object]]:
    """Each public operation in the order a promotion uses them, as zero-argument calls."""
    synced = folder(tmp_path, {"adapter_config.json": "{}"})
    state: dict[str, str] = {}
    return [
        ("whoami", lambda: client.whoami()),
        ("ensure_repo", lambda: client.ensure_repo(MODEL)),
        ("sync_folder", lambda: state.update(sha=client.sync_folder(MODEL, synced, "adapter"))),
        ("head", lambda: client.head(MODEL)),
        (
            "commit",
            lambda: client.commit(
                MODEL, {"README.md": b"card"}, "card", parent_commit=client.head(MODEL)
            ),
        ),
        ("file_oids", lambda: client.file_oids(MODEL)),
        ("tag_if_absent", lambda: client.tag_if_absent(MODEL, "v1", state["sha"])),
        ("download", lambda: client.download(MODEL, "adapter_config.json", revision="v1")),
        ("snapshot", lambda: client.snapshot(MODEL, revision="v1")),
    ]


@pytest.mark.parametrize(
    "failure",
    [{"status": 503, "retry_after": 1}, {"status": 429}, {"mode": "reset"}],
    ids=["503 with Retry-After", "429", "reset connection"],
)
def test_every_operation_survives_its_first_two_requests_failing(
    hub, client, tmp_path, waits, failure
):
    for name, operation in every_operation(client, tmp_path):
        client.cache_dir = tmp_path / f"cache-{name}"  # no answer from a cache: only the Hub
        hub.clear_requests()
        hub.fail(path=".", times=2, **failure)
        operation()
        faulted = [r for r in hub.requests() if r.get("fault")]
        assert len(faulted) == 2, f"{name}: the injected failures were not served"
    snapshot = client.snapshot(MODEL, revision="v1")
    assert (snapshot / "adapter_config.json").read_text() == "{}"
    if "retry_after" in failure and waits:
        assert set(waits) == {1}  # Retry-After honoured instead of our own backoff


def test_past_the_retry_budget_there_is_one_clear_error(hub, client, waits):
    hub.fail(method="POST", path=r"/api/repos/create", status=503, times=10)
    with pytest.raises(HubError) as caught:
        client.ensure_repo(MODEL)
    message, _, request_id = str(caught.value).partition(" (request id: ")
    assert message == (
        "create repo ainative/flaky-lora: the Hub kept failing (HTTP 503) after retries; "
        "nothing partial was written, try again later"
    )
    assert request_id.startswith("Root=1-")  # the last answer's, for HF support
    assert len(waits) == 3


def test_a_stale_parent_commit_is_detected_and_nothing_is_overwritten(hub, client):
    client.ensure_repo(MODEL)
    first = client.commit(MODEL, {"card.md": b"v1"}, "first")
    client.commit(MODEL, {"card.md": b"edited by hand"}, "someone else", parent_commit=first)
    with pytest.raises(StaleParentError):
        client.commit(MODEL, {"card.md": b"ours"}, "ours", parent_commit=first)
    assert client.download(MODEL, "card.md").read_text() == "edited by hand"


def test_a_tag_is_never_moved(hub, client):
    client.ensure_repo(MODEL)
    one = client.commit(MODEL, {"a.txt": b"1"}, "one")
    two = client.commit(MODEL, {"a.txt": b"2"}, "two")
    assert client.tag_if_absent(MODEL, "v1", one) is True
    assert client.tag_if_absent(MODEL, "v1", one) is False
    with pytest.raises(HubError, match="tags are never moved"):
        client.tag_if_absent(MODEL, "v1", two)


def test_sync_deletes_stray_files_and_skips_unchanged_ones(hub, client, tmp_path):
    client.ensure_repo(RepoRef("ainative/trainer", "space"))
    space = RepoRef("ainative/trainer", "space")
    client.commit(space, {"requirements.txt": b"torch\n", "app.py": b"print(1)\n"}, "by hand")
    client.sync_folder(space, folder(tmp_path, {"app.py": "print(1)\n", "README.md": "x"}), "sync")
    listed = client.snapshot(space)
    # .gitattributes comes with every repo and is never deleted, as on the real Hub
    assert sorted(p.name for p in listed.iterdir() if p.is_file()) == [
        ".gitattributes",
        "README.md",
        "app.py",
    ]


def test_a_token_reaches_no_log_line_exception_or_file(hub, client, tmp_path, caplog):
    token = fake_token()
    caplog.set_level(logging.DEBUG)
    client.ensure_repo(MODEL)
    client.sync_folder(MODEL, folder(tmp_path, {"weights.txt": "w"}), "sync")
    hub.fail(method="POST", path=r"/api/models/.+/commit/.+", status=500, times=10)
    with pytest.raises(HubError) as caught:
        client.commit(MODEL, {"x": b"y"}, "fails")
    texts = [caught.value.args[0], str(caught.value), repr(client), caplog.text]
    texts += [str(r) for r in hub.requests()]
    assert not [t for t in texts if token in t]
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert token.encode() not in file.read_bytes(), file
