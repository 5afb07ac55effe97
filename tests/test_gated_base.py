"""A gated base model, and tokens without the rights a spec needs, are refused before anything
is spent, with the fix: which base, whose account must accept its terms and where; which
namespace a fine-grained token may not write. `runner doctor` shows the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.hub.tiny_llama import TINY_REPO_ID
from tests.conftest import ADAPTER, TOKEN, RunCli

TRAIN = ("train", f"adapters/{ADAPTER}", "--backend", "local")
VERBS = [TRAIN, ("reconcile", "--apply")]
BASE_OWNER_TOKEN = "hf_baseOwnerToken123456"
FINE_GRAINED_TOKEN = "hf_fineGrainedNoWrite123"


def gate_base(hub: Any) -> None:
    """The base's owners gate it, as meta-llama gates its models."""
    owner = {"name": "base-owner", "orgs": {TINY_REPO_ID.split("/")[0]: "admin"}}
    hub.add_accounts(
        {"users": [owner], "tokens": [{"token": BASE_OWNER_TOKEN, "user": "base-owner"}]}
    )
    HfApi(endpoint=hub.endpoint, token=BASE_OWNER_TOKEN).update_repo_settings(
        TINY_REPO_ID, gated="auto"
    )


def base_rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if TINY_REPO_ID in line and "base model" in line]


def nothing_made(root: Path, hub: Any) -> bool:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    return not (root / ".runs").exists() and not api.repo_exists(
        "ainative/kwanzaa-mini-lora-candidates"
    )


def test_doctor_names_a_gated_base_with_the_link_then_is_green_once_granted(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    gate_base(env)
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out
    (row,) = base_rows(out)
    assert "❌" in row
    assert "gated: ainative has not been granted access" in out
    assert f"accept its terms at {env.endpoint}/{TINY_REPO_ID}" in out
    assert "HF_TOKEN" in out

    assert env.ask_access(TINY_REPO_ID, "ainative") == "accepted"  # gated "auto"
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 0, out
    (row,) = base_rows(out)
    assert "✅" in row
    assert "gated, access granted to ainative" in out


@pytest.mark.parametrize("verb", VERBS, ids=["train", "reconcile --apply"])
def test_a_gated_base_is_refused_before_anything_is_spent_with_the_fix(
    verb: tuple[str, ...], tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    gate_base(env)
    code, out, err = run_cli(*verb, "--repo", tiny_repo)
    assert code == 2, out + err
    said = " ".join((out + err).split())  # the console wraps long lines
    assert f"the base model {TINY_REPO_ID} is gated" in said
    assert "the account ainative (the token's) must accept its terms at" in said
    assert f"{env.endpoint}/{TINY_REPO_ID}" in said.replace(" ", "")
    assert "HF_TOKEN secret" in said
    assert nothing_made(tiny_repo, env)


def fine_grained_without_write(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fine-grained token that may write only demo-org, not the publish namespace."""
    scopes = [{"entity": "demo-org", "permissions": ["repo.content.read", "repo.write"]}]
    token = {"token": FINE_GRAINED_TOKEN, "user": "ainative", "role": "fineGrained"}
    hub.add_accounts({"tokens": [{**token, "scopes": scopes}]})
    monkeypatch.setenv("HF_TOKEN", FINE_GRAINED_TOKEN)


def test_doctor_names_the_namespace_a_fine_grained_token_may_not_write(
    tiny_repo: Path, env: Any, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    fine_grained_without_write(env, monkeypatch)
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out
    assert "ainative, fineGrained token" in out
    assert "give the fine-grained token write access to ainative" in out


@pytest.mark.parametrize("verb", VERBS, ids=["train", "reconcile --apply"])
def test_a_fine_grained_token_without_write_is_refused_before_anything_is_spent(
    verb: tuple[str, ...],
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fine_grained_without_write(env, monkeypatch)
    code, out, err = run_cli(*verb, "--repo", tiny_repo)
    assert code == 2, out + err
    said = " ".join((out + err).split())
    assert "(ainative, fineGrained token) cannot write publish ainative/kwanzaa-mini-lora" in said
    assert "give the fine-grained token write access to ainative" in said
    assert nothing_made(tiny_repo, env)
