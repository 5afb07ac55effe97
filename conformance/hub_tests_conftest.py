"""The fixtures huggingface_hub's own tests expect, for a run against the Hub emulator.

`make conformance` copies this file into the unpacked test folder as `tests/conftest.py`
(huggingface_hub's sdist ships its tests but not its conftest). Written from what the tests
use: an `api` client on the staging endpoint (rewritten to the emulator), a `repo_factory`
that deletes what it made, a private cache per test, and the suite's markers. Tests marked
`production` read huggingface.co's own repos and are skipped, except the Space API class,
whose recorded production answers are replayed against the emulator instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from typing import Protocol

import pytest
from huggingface_hub import HfApi, RepoUrl, constants
from huggingface_hub.utils import SoftTemporaryDirectory

from .testing_constants import ENDPOINT_STAGING, TOKEN
from .testing_utils import repo_name

# Production tests that only need an API the emulator has (no repo of huggingface.co).
EMULATED_PRODUCTION_CLASSES = {"TestSpaceAPIProduction"}
_CACHE_CONSTANTS = {
    "HF_HOME": "",
    "HF_HUB_CACHE": "hub",
    "HUGGINGFACE_HUB_CACHE": "hub",
    "HF_XET_CACHE": "xet",
    "HF_ASSETS_CACHE": "assets",
    "HF_TOKEN_PATH": "token",
    "HF_STORED_TOKENS_PATH": "stored_tokens",
}


class RepoFactory(Protocol):
    def __call__(self, repo_type: str = "model", **kwargs: object) -> RepoUrl: ...


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with SoftTemporaryDirectory() as home:
        for name, sub in _CACHE_CONSTANTS.items():
            monkeypatch.setattr(constants, name, os.path.join(home, sub) if sub else home)
        yield


@pytest.fixture(autouse=True)
def _fresh_oauth_refresh_state() -> None:
    # get_token() keeps its OAuth refresh decision in module globals: one test's token would
    # be served to the next (huggingface_hub's own conftest resets it too).
    from huggingface_hub.utils import _auth

    _auth._OAUTH_REFRESH_CACHE = None
    _auth._OAUTH_REFRESH_WARNED = False


@pytest.fixture(autouse=True)
def _markers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    node = request.node
    if node.get_closest_marker("production") is not None:
        if request.cls is None or request.cls.__name__ not in EMULATED_PRODUCTION_CLASSES:
            pytest.skip("production: reads huggingface.co's own repos")
        monkeypatch.setattr(request.module, "ENDPOINT_PRODUCTION", ENDPOINT_STAGING)
    if node.get_closest_marker("git_lfs") is not None:
        pytest.skip("git_lfs: needs a git-lfs client and the Hub's git server")
    if node.get_closest_marker("xet") is not None:
        pytest.skip("xet: the emulator serves LFS, not Xet's storage")


@pytest.fixture(autouse=True)
def _expects_deprecation(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `deprecated("name")` must see a FutureWarning naming it."""
    names = [name for marker in request.node.iter_markers("deprecated") for name in marker.args]
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(pytest.warns(FutureWarning, match=rf".*'{name}'.*"))
        yield


@pytest.fixture(autouse=True)
def _no_agent_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub fetches an agent registry from huggingface.co for its user agent.
    from huggingface_hub.utils import _detect_agent

    monkeypatch.setattr(_detect_agent, "_registry", _detect_agent._EMPTY_REGISTRY)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session")
def api() -> HfApi:
    return HfApi(endpoint=ENDPOINT_STAGING, token=TOKEN)


@pytest.fixture
def new_repo_id(api: HfApi) -> Iterator[str]:
    """A repo id of the test user's that does not exist yet; deleted after the test."""
    repo_id = f"{api.whoami()['name']}/{repo_name()}"
    yield repo_id
    with suppress(Exception):
        api.delete_repo(repo_id=repo_id)


@pytest.fixture
def repo_factory(api: HfApi) -> Iterator[RepoFactory]:
    made: list[tuple[str, str]] = []

    def make(repo_type: str = "model", **kwargs: object) -> RepoUrl:
        if repo_type == "space":
            kwargs.setdefault("space_sdk", "gradio")
        kwargs.setdefault("repo_id", repo_name(prefix=repo_type))
        url = api.create_repo(repo_type=repo_type, **kwargs)  # type: ignore[arg-type]
        made.append((url.repo_id, repo_type))
        return url

    yield make
    for repo_id, repo_type in made:
        with suppress(Exception):  # cleanup only: the test has its verdict
            api.delete_repo(repo_id=repo_id, repo_type=repo_type)
