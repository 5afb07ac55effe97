"""The Hub emulator answers malformed and hostile requests as the Hub would: a 4xx with an
`error` message, never a 500 or a dropped connection, and nothing it already holds changes.

Raw HTTP (httpx) rather than huggingface_hub: the client never sends these requests, which
is the point. Each case checks the answer, then that the emulator still serves the same repos,
refs, Space settings and faults as before, with no stray blob left behind."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOKEN = "hf_emulatorTestToken"
MODEL = "/api/models/ainative/repo"
SPACE = "/api/spaces/ainative/space"
COMMIT = f"{MODEL}/commit/main"
PATHS_INFO = f"{MODEL}/paths-info/main"
FAULTS = "/_emulator/faults"
HEADER: dict[str, Any] = {"key": "header", "value": {"summary": "a commit"}}
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"


def ndjson(*lines: object) -> bytes:
    """Commit payload lines; a str is sent as is (not JSON-encoded)."""
    return b"\n".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() for line in lines
    )


def add(path: object = "ok.txt", **value: object) -> dict[str, Any]:
    return {"key": "file", "value": {"path": path, "content": "aGk=", **value}}


def card(front_matter: str) -> bytes:
    readme = base64.b64encode(f"---\n{front_matter}\n---\nA model.\n".encode()).decode()
    return ndjson(HEADER, add("README.md", content=readme))


@pytest.fixture
def http(hub: Any) -> Iterator[httpx.Client]:
    """A client of the emulator holding one model repo (with a file) and one Space."""
    with httpx.Client(
        base_url=hub.endpoint, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        client.post("/api/repos/create", json={"name": "repo"}).raise_for_status()
        client.post(COMMIT, content=ndjson(HEADER, add("data/file.txt"))).raise_for_status()
        space = {"name": "space", "type": "space", "sdk": "docker"}
        client.post("/api/repos/create", json=space).raise_for_status()
        client.post(f"{SPACE}/variables", json={"key": "KEPT", "value": "1"}).raise_for_status()
        yield client


def served_state(http: httpx.Client, hub: Any) -> dict[str, Any]:
    """What the emulator serves (each read must succeed) and how many blobs it stores."""
    reads = {
        "tree": f"{MODEL}/tree/main?recursive=true",
        "refs": f"{MODEL}/refs",
        "commits": f"{MODEL}/commits/main",
        "info": MODEL,
        "variables": f"{SPACE}/variables",
        "secrets": f"{SPACE}/secrets",
        "faults": FAULTS,
    }
    state: dict[str, Any] = {}
    for name, url in reads.items():
        response = http.get(url)
        assert response.status_code == 200, (url, response.text)
        state[name] = response.json()
    state["blobs"] = hub.ctx.store.blobs.count()
    return state


LONG_PART = "x" * 256  # one path part over 255 bytes (NAME_MAX)
LONG_PATH = "/".join(["abcdefgh"] * 460)  # 4139 bytes in parts of 8: over 4096 (PATH_MAX)
DEEP_JSON = "[" * 100_000

# id, method, url, body, content type, expected status
MALFORMED: list[tuple[str, str, str, bytes | None, str | None, int]] = [
    # -- commit NDJSON lines ------------------------------------------------------------------
    ("header-value-string", "POST", COMMIT, ndjson({"key": "header", "value": "s"}), None, 400),
    ("header-value-list", "POST", COMMIT, ndjson({"key": "header", "value": ["s"]}), None, 400),
    (
        "header-summary-object",
        "POST",
        COMMIT,
        ndjson({"key": "header", "value": {"summary": {"nested": "s"}}}),
        None,
        400,
    ),
    (
        "header-description-list",
        "POST",
        COMMIT,
        ndjson({"key": "header", "value": {"summary": "s", "description": ["d"]}}),
        None,
        400,
    ),
    (
        "header-parent-object",
        "POST",
        COMMIT,
        ndjson({"key": "header", "value": {"summary": "s", "parentCommit": {"id": "x"}}}),
        None,
        400,
    ),
    ("two-headers", "POST", COMMIT, ndjson(HEADER, add(), HEADER), None, 400),
    ("file-value-string", "POST", COMMIT, ndjson(HEADER, {"key": "file", "value": "x"}), None, 400),
    ("file-path-object", "POST", COMMIT, ndjson(HEADER, add({"nested": "x"})), None, 400),
    ("file-content-number", "POST", COMMIT, ndjson(HEADER, add(content=5)), None, 400),
    ("file-encoding-unknown", "POST", COMMIT, ndjson(HEADER, add(encoding="utf-8")), None, 400),
    (
        # Nothing of a rejected commit is stored, not even the blob of its good first file.
        "file-after-good-file",
        "POST",
        COMMIT,
        ndjson(HEADER, add("new.txt", content=base64.b64encode(b"fresh").decode()), add(7)),
        None,
        400,
    ),
    # A path no repo may hold is a 422 wherever it arrives, as the Hub answers it.
    ("path-nul", "POST", COMMIT, ndjson(HEADER, add("a\x00b")), None, 422),
    ("path-newline", "POST", COMMIT, ndjson(HEADER, add("a\nb.txt")), None, 422),
    ("path-lone-surrogate", "POST", COMMIT, ndjson(HEADER, add("\ud800.txt")), None, 400),
    ("path-part-too-long", "POST", COMMIT, ndjson(HEADER, add(LONG_PART)), None, 422),
    ("path-too-long", "POST", COMMIT, ndjson(HEADER, add(LONG_PATH)), None, 422),
    (
        "deleted-file-value-string",
        "POST",
        COMMIT,
        ndjson(HEADER, {"key": "deletedFile", "value": "data/file.txt"}),
        None,
        400,
    ),
    (
        "deleted-file-path-number",
        "POST",
        COMMIT,
        ndjson(HEADER, {"key": "deletedFile", "value": {"path": 5}}),
        None,
        400,
    ),
    (
        "deleted-file-dotdot",
        "POST",
        COMMIT,
        ndjson(HEADER, {"key": "deletedFile", "value": {"path": "data/../data/file.txt"}}),
        None,
        422,
    ),
    (
        "deleted-folder-value-number",
        "POST",
        COMMIT,
        ndjson(HEADER, {"key": "deletedFolder", "value": 3}),
        None,
        400,
    ),
    (
        "lfs-file-value-string",
        "POST",
        COMMIT,
        ndjson(HEADER, {"key": "lfsFile", "value": "x"}),
        None,
        400,
    ),
    ("line-nested-too-deep", "POST", COMMIT, ndjson(HEADER, DEEP_JSON), None, 400),
    # -- preupload ----------------------------------------------------------------------------
    (
        "preupload-path-nul",
        "POST",
        f"{MODEL}/preupload/main",
        json.dumps({"files": [{"path": "a\x00b", "size": 1, "sample": ""}]}).encode(),
        JSON_TYPE,
        422,
    ),
    (
        "preupload-negative-size",
        "POST",
        f"{MODEL}/preupload/main",
        json.dumps({"files": [{"path": "a.txt", "size": -1, "sample": ""}]}).encode(),
        JSON_TYPE,
        400,
    ),
    # -- paths-info ---------------------------------------------------------------------------
    ("paths-info-not-json", "POST", PATHS_INFO, b"{paths", JSON_TYPE, 400),
    ("paths-info-json-list", "POST", PATHS_INFO, b"[1]", JSON_TYPE, 400),
    (
        "paths-info-paths-number",
        "POST",
        PATHS_INFO,
        b'{"paths": 5}',
        JSON_TYPE,
        400,
    ),
    (
        "paths-info-path-object",
        "POST",
        PATHS_INFO,
        b'{"paths": [{"a": 1}]}',
        JSON_TYPE,
        400,
    ),
    (
        "paths-info-path-null",
        "POST",
        PATHS_INFO,
        b'{"paths": [null]}',
        JSON_TYPE,
        400,
    ),
    ("paths-info-form-not-utf8", "POST", PATHS_INFO, b"\xff\xfe", FORM_TYPE, 400),
    ("paths-info-form-nul", "POST", PATHS_INFO, b"paths=a%00b", FORM_TYPE, 422),
    (
        "paths-info-form-dotdot",
        "POST",
        PATHS_INFO,
        b"paths=..%2Fdata",
        FORM_TYPE,
        422,
    ),
    (
        "paths-info-leading-slash",
        "POST",
        PATHS_INFO,
        b"paths=%2Fdata",
        FORM_TYPE,
        422,
    ),
    (
        # The Hub answers 413 "too many parameters" above 1,000 paths.
        "paths-info-too-many",
        "POST",
        PATHS_INFO,
        "&".join(f"paths=p{i}" for i in range(1001)).encode(),
        FORM_TYPE,
        413,
    ),
    # -- tree, downloads, refs ----------------------------------------------------------------
    ("tree-path-nul", "GET", f"{MODEL}/tree/main/data%00x", None, None, 422),
    ("resolve-path-nul", "GET", "/ainative/repo/resolve/main/data%00x", None, None, 422),
    (
        "resolve-dotdot",
        "GET",
        "/ainative/repo/resolve/main/..%2F..%2Fetc%2Fpasswd",
        None,
        None,
        422,
    ),
    ("revision-nul", "GET", f"{MODEL}/revision/ma%00in", None, None, 404),
    (
        "branch-from-nul",
        "POST",
        f"{MODEL}/branch/b1",
        b'{"startingPoint": "ma\\u0000in"}',
        JSON_TYPE,
        404,
    ),
    ("delete-tag-nul", "DELETE", f"{MODEL}/tag/v%00", None, None, 404),
    # -- repos and settings -------------------------------------------------------------------
    (
        "create-space-secret-without-key",
        "POST",
        "/api/repos/create",
        b'{"name": "s2", "type": "space", "sdk": "docker", "secrets": [{"value": "x"}]}',
        JSON_TYPE,
        400,
    ),
    (
        "create-space-unknown-sdk",
        "POST",
        "/api/repos/create",
        b'{"name": "s3", "type": "space", "sdk": "nonsense"}',
        JSON_TYPE,
        400,
    ),
    ("create-nested-too-deep", "POST", "/api/repos/create", DEEP_JSON.encode(), JSON_TYPE, 400),
    ("delete-repo-nul", "DELETE", "/api/repos/delete", b'{"name": "re\\u0000po"}', JSON_TYPE, 404),
    ("settings-visibility", "PUT", f"{MODEL}/settings", b'{"visibility": "odd"}', JSON_TYPE, 400),
    ("settings-gated", "PUT", f"{MODEL}/settings", b'{"gated": "sometimes"}', JSON_TYPE, 400),
    ("unknown-route", "GET", "/api/no-such-route/x", None, None, 404),
    # -- Space settings -----------------------------------------------------------------------
    ("secret-empty-key", "POST", f"{SPACE}/secrets", b'{"key": ""}', JSON_TYPE, 400),
    ("secret-key-nul", "POST", f"{SPACE}/secrets", b'{"key": "A\\u0000B"}', JSON_TYPE, 400),
    (
        "variable-value-nul",
        "POST",
        f"{SPACE}/variables",
        b'{"key": "A", "value": "x\\u0000"}',
        JSON_TYPE,
        400,
    ),
    ("sleep-time-negative", "POST", f"{SPACE}/sleeptime", b'{"seconds": -100}', JSON_TYPE, 400),
    (
        "hardware-sleep-negative",
        "POST",
        f"{SPACE}/hardware",
        b'{"flavor": "cpu-basic", "sleepTimeSeconds": -5}',
        JSON_TYPE,
        400,
    ),
    # -- the emulator's control API -----------------------------------------------------------
    ("fault-invalid-regex", "POST", FAULTS, b'{"path": "("}', JSON_TYPE, 400),
    (
        "fault-negative-delay",
        "POST",
        FAULTS,
        b'{"path": "x", "delay": -1}',
        JSON_TYPE,
        400,
    ),
    (
        "fault-negative-retry-after",
        "POST",
        FAULTS,
        b'{"path": "x", "retry_after": -1}',
        JSON_TYPE,
        400,
    ),
    (
        "fault-status-99",
        "POST",
        FAULTS,
        b'{"path": "x", "status": 99}',
        JSON_TYPE,
        400,
    ),
    (
        "script-negative-times",
        "POST",
        "/_emulator/spaces/script",
        b'{"repo_id": "ainative/space", "outcome": "hang", "times": -1}',
        JSON_TYPE,
        400,
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "content_type", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_request_is_answered_4xx_with_an_error_and_changes_nothing(
    http: httpx.Client,
    hub: Any,
    method: str,
    url: str,
    body: bytes | None,
    content_type: str | None,
    status: int,
):
    before = served_state(http, hub)
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.request(method, url, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str)
    assert error
    assert served_state(http, hub) == before


def test_body_over_the_bound_is_answered_413_while_it_streams(http: httpx.Client, hub: Any):
    """A chunked body (no declared size) is refused once it passes the 16 MiB bound."""
    before = served_state(http, hub)

    def megabytes() -> Iterator[bytes]:
        for _ in range(17):
            yield b" " * (1 << 20)

    response = http.post("/api/repos/create", content=megabytes())
    assert response.status_code == 413
    assert "16 MiB" in response.json()["error"]
    assert served_state(http, hub) == before


def test_declared_oversized_commit_is_refused_before_its_body_is_read(http: httpx.Client, hub: Any):
    """A commit declaring 5 GB gets its 413 at once, without the emulator waiting for (or
    buffering) the body."""
    request = (
        f"POST {COMMIT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/x-ndjson\r\nContent-Length: 5000000000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(request + b'{"key": "header"')
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert "1024 MiB" in head
    assert http.get(f"{MODEL}/tree/main").status_code == 200


LAUGHS = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 7)
)  # 9**7 values once expanded, from 54 aliases


@pytest.mark.parametrize(
    "front_matter",
    [
        pytest.param("a: &a [*a]\nname: m", id="refers-to-itself"),
        pytest.param(LAUGHS, id="billion-laughs"),
        pytest.param("a: " + "[" * 1500 + "]" * 1500, id="nested-too-deep"),
    ],
)
def test_repo_with_a_hostile_card_is_served_without_its_card_data(
    http: httpx.Client, front_matter: str
):
    """Card metadata that cannot be written as JSON in reasonable size (a cycle, aliases
    expanding to millions of values, runaway nesting) is left out of `cardData`; the repo's
    info is still served."""
    assert http.post(COMMIT, content=card(front_matter)).status_code == 200
    response = http.get(MODEL)
    assert response.status_code == 200, response.text
    assert "cardData" not in response.json()


def test_card_that_refers_to_itself_is_reported_by_validate_yaml(http: httpx.Client):
    content = "---\na: &a [*a]\n---\n"
    response = http.post("/api/validate-yaml", json={"content": content})
    assert response.status_code == 400
    assert "refers to itself" in response.json()["errors"][0]["message"]


def test_variable_description_with_a_lone_surrogate_is_still_listed(http: httpx.Client):
    """Python's JSON parser lets `\\ud800` through; a description holding one is stored
    and must still be listed, escaped, rather than break every later listing."""
    body = b'{"key": "NOTE", "value": "v", "description": "\\ud800"}'
    headers = {"Content-Type": JSON_TYPE}
    assert http.post(f"{SPACE}/variables", content=body, headers=headers).status_code == 200
    response = http.get(f"{SPACE}/variables")
    assert response.status_code == 200
    assert response.json()["NOTE"]["description"] == "\ud800"


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
CONTENTS = st.sampled_from(["aGk=", "!!", ""])
PATHS = st.sampled_from(["ok.txt", "data/file.txt", "data/", "../x", "/x", "a\x00b", ""])
VALUES = JSON_VALUES | st.fixed_dictionaries(
    {"path": PATHS | JSON_VALUES},
    optional={
        "content": CONTENTS | JSON_VALUES,
        "encoding": JSON_VALUES,
    },
)
KEYS = st.sampled_from(["header", "file", "deletedFile", "deletedFolder", "lfsFile"]) | JSON_VALUES
LINES = JSON_VALUES | st.fixed_dictionaries({"key": KEYS, "value": VALUES})


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(LINES, min_size=1, max_size=3))
def test_random_commit_lines_never_get_a_server_error(http: httpx.Client, lines: list[Any]):
    """Lines shaped like commit operations with random parts, or any JSON at all (a string
    goes out raw, so not even JSON), after a valid header: never a 5xx."""
    response = http.post(COMMIT, content=ndjson(HEADER, *lines))
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]
    assert http.get(f"{MODEL}/tree/main?recursive=true").status_code == 200
