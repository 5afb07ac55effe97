"""The local Hub's tokens, as the README's "The local Hub" states them: a token shaped as a Hub
user access token (`hf_` and 8 or more letters or digits) is the one emulated user, who may
write; `hf_invalid…` and anything not so shaped are refused as the Hub refuses a bad token; no
token is anonymous. The runner tells "no token is set" from "the Hub rejected the token", with
exit 2 in every verb, and never mangles the message it shows."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from runner.hub.redact import redact
from tests.conftest import ADAPTER, TOKEN, RunCli, copy_repo

REFUSED = "Invalid credentials in Authorization header"  # the real Hub's words for a bad token
ANONYMOUS = "Invalid username or password."  # and for none, where one is needed


def hub_shaped_token() -> str:
    """As the Hub issues them: `hf_` and 34 letters and digits."""
    return "hf_" + "".join(random.Random(14).choices(string.ascii_letters + string.digits, k=34))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


def whoami(hub: Any, token: str) -> str:
    return HfApi(endpoint=hub.endpoint, token=token).whoami()["name"]


def test_only_a_hub_shaped_token_is_the_emulated_user_and_may_write(hub: Any) -> None:
    for token in (hub_shaped_token(), TOKEN):
        assert whoami(hub, token) == "ainative"
        api = HfApi(endpoint=hub.endpoint, token=token)
        assert api.create_repo("ainative/token-check", exist_ok=True).repo_id
    for token in ("hf_invalidButWellShaped1234", "ghp_aGitHubToken123456", "hf_short", "secret"):
        with pytest.raises(HfHubHTTPError) as refused:
            whoami(hub, token)
        assert refused.value.response.status_code == 401, token


def test_a_missing_or_refused_token_gets_the_hubs_401_message_header_and_body(hub: Any) -> None:
    for headers, message in (
        ({}, ANONYMOUS),
        ({"Authorization": "Bearer hf_invalidButWellShaped1234"}, REFUSED),
        ({"Authorization": "Bearer not-a-hub-token"}, REFUSED),
        ({"Authorization": f"Basic {TOKEN}"}, REFUSED),
    ):
        answer = httpx.get(f"{hub.endpoint}/api/whoami-v2", headers=headers, timeout=30)
        assert answer.status_code == 401, headers
        assert answer.headers["X-Error-Message"] == message, headers
        assert answer.json() == {"error": message}, headers


@pytest.mark.parametrize(
    "verb",
    [
        ("status",),
        ("eval", f"adapters/{ADAPTER}"),
        ("train", f"adapters/{ADAPTER}"),
        ("dataset", "push", f"adapters/{ADAPTER}"),
        ("reconcile", "--apply"),
    ],
    ids=" ".join,
)
def test_with_no_token_a_verb_that_reads_candidates_or_writes_says_so_and_exits_2(
    verb: tuple[str, ...],
    env: Any,
    repo: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Candidate repos are private and the Hub shows them to an anonymous read as missing:
    without a token `status` would say "needs training" and `eval` "no run", exit 0 and 1."""
    monkeypatch.delenv("HF_TOKEN")
    code, out, err = run_cli(*verb, "--repo", repo)
    assert code == 2, out + err
    assert "Traceback" not in err
    named = " ".join(verb[:2] if verb[0] == "dataset" else verb[:1])
    assert f"`runner {named}` reads private repos or writes" in err, err
    assert "HF_TOKEN is not set" in err, err
    assert "needs training" not in out, out
    assert "FAIL" not in out, out


def test_a_token_the_hub_rejects_is_named_as_rejected_and_exits_2(
    env: Any, repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp_aGitHubToken123456"  # a token, but not a Hub one
    monkeypatch.setenv("HF_TOKEN", token)
    code, out, err = run_cli("status", "--repo", repo)
    assert code == 2, err
    assert "Traceback" not in err
    assert f"the Hub at {env.endpoint} rejected the token (HTTP 401: {REFUSED})" in err, err
    assert "set HF_TOKEN to a valid access token" in err, err
    assert token not in out + err


def test_redaction_hides_the_secret_only_never_the_text_around_it() -> None:
    placeholder = "send `Authorization: Bearer <token>`; the Hub answered 401"
    assert redact(placeholder) == placeholder
    token = hub_shaped_token()
    assert redact(f"header `Authorization: Bearer {token}`; then retried") == (
        "header `Authorization: Bearer ***`; then retried"
    )
    assert redact(f"token {token}, unregistered") == "token hf_***, unregistered"


def test_a_token_saved_by_hf_auth_login_is_used_when_hf_token_is_unset(
    env: Any, repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As huggingface_hub itself does: the token file stands in for HF_TOKEN."""
    from huggingface_hub import constants

    saved = tmp_path / "token"
    saved.write_text(TOKEN + "\n", encoding="utf-8")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(saved))
    monkeypatch.delenv("HF_TOKEN")
    code, out, err = run_cli("status", "--repo", repo)
    assert code == 0, out + err
    assert "needs training" in out, out
