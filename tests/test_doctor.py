"""`runner doctor` checks, read-only, that the account HF_TOKEN names can do what the specs
ask before anything is spent: green on the embedded default's state, and each class of ❌
with the fix a user acts on, exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.engines.trl import TRL
from runner.space.render import render_space
from tests.conftest import ADAPTER, TOKEN, RunCli, allow_owner, edit

SPACE = "ainative/adapter-trainer"  # the default Space of a spec publishing under ainative/
SPEC = f"adapters/{ADAPTER}/adapter.yaml"


def on_a_space(root: Path) -> None:
    """The demo's way: kwanzaa-mini-v1 trains on the emulated Space."""
    edit(root / SPEC, "backend: local", "backend: space")


def runner_made_space(hub: Any, files: dict[str, str] | None = None) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo(SPACE, repo_type="space", space_sdk="docker", private=True)
    for name, text in (files or render_space(ADAPTER, TRL.space_app)).items():
        api.upload_file(
            path_or_fileobj=text.encode(), path_in_repo=name, repo_id=SPACE, repo_type="space"
        )


def rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if "✅" in line or "❌" in line]


def failing(out: str) -> list[str]:
    return [line for line in rows(out) if "❌" in line]


def test_doctor_is_green_on_the_embedded_defaults_state(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    on_a_space(tiny_repo)
    runner_made_space(env)
    code, out, err = run_cli("doctor", "--repo", tiny_repo)
    assert code == 0, out + err
    assert not failing(out), out
    for subject in ("HF_TOKEN", "ainative", "tiny-random-llama", SPACE, "cpu-basic"):
        assert any(subject in line for line in rows(out)), (subject, out)
    assert "ainative, write token" in out


@pytest.mark.parametrize(
    ("token", "found", "fix"),
    [
        (None, "no token is set", "set HF_TOKEN"),
        ("hf_invalidToken123456", "rejected the token", "set HF_TOKEN to a valid token"),
        ("hf_readonlyToken123456", "a read token", "create one with write access"),
    ],
    ids=["no token", "rejected", "read token"],
)
def test_a_token_that_cannot_promote_is_the_first_failure_with_its_fix(
    token: str | None,
    found: str,
    fix: str,
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if token is None:
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    code, out, err = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out + err
    assert "Traceback" not in err
    first = failing(out)[0]
    assert "token" in first, out
    assert found in out, out
    assert fix in out, out
    if token is not None:
        assert token not in out + err


def test_a_namespace_the_account_cannot_write_is_named_with_what_needs_it(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    edit(tiny_repo / SPEC, "repo_id: ainative/kwanzaa-mini-lora", "repo_id: other-team/mini-lora")
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out
    (line,) = failing(out)
    assert "other-team" in line, out
    assert "publish other-team/mini-lora" in out
    assert "candidates other-team/mini-lora-candidates" in out
    assert "ask an admin of other-team to add ainative" in out


def test_a_base_model_missing_at_its_pinned_revision_is_named_with_the_fix(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    text = (tiny_repo / SPEC).read_text(encoding="utf-8")
    pinned = next(line for line in text.splitlines() if "revision:" in line).split()[-1]
    edit(tiny_repo / SPEC, pinned, missing)
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out
    assert any("base model" in line for line in failing(out)), out
    assert f"at revision {missing}" in out
    assert "check base_model.id and base_model.revision" in out


@pytest.mark.parametrize(
    ("space_files", "found", "fix"),
    [
        (
            {"README.md": "---\nsdk: docker\n---\nsomeone's app\n"},
            "not made by the runner",
            "set training.space_id to a new Space name",
        ),
        (
            {**render_space(ADAPTER, TRL.space_app), "requirements.txt": "torch\n"},
            "stray files: requirements.txt",
            "the next `runner space sync` deletes them",
        ),
    ],
    ids=["someone else's Space", "stray requirements.txt"],
)
def test_a_training_space_the_runner_would_refuse_or_repair_is_named(
    space_files: dict[str, str],
    found: str,
    fix: str,
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
) -> None:
    on_a_space(tiny_repo)
    runner_made_space(env, space_files)
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out
    (line,) = failing(out)
    assert SPACE in line
    assert found in out
    assert fix in out


def test_a_hardware_flavor_without_a_price_is_named_with_the_policy_to_edit(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    on_a_space(tiny_repo)
    edit(
        tiny_repo / "policies" / "training.yaml",
        "  cpu-basic:\n    tokens_per_second: 120\n    usd_per_hour: 0.0\n",
        "",
    )
    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out
    assert any("cpu-basic" in line for line in failing(out)), out
    assert "policies/training.yaml (hardware.cpu-basic.usd_per_hour)" in out


@pytest.mark.parametrize(
    "verb",
    [("train", f"adapters/{ADAPTER}", "--backend", "local"), ("reconcile", "--apply")],
    ids=["train", "reconcile --apply"],
)
def test_a_read_token_is_refused_before_anything_is_spent_with_the_fix(
    verb: tuple[str, ...],
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_readonlyToken123456")
    code, out, err = run_cli(*verb, "--repo", tiny_repo)
    assert code == 2, out + err
    assert "(ainative, read token) cannot write publish ainative/kwanzaa-mini-lora" in out + err
    assert "create one with write access" in out + err
    assert not (tiny_repo / ".runs").exists()  # nothing trained
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert not api.repo_exists("ainative/kwanzaa-mini-lora-candidates")


def test_a_namespace_the_token_cannot_write_is_refused_before_training(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    allow_owner(tiny_repo, "other-team")
    edit(tiny_repo / SPEC, "repo_id: ainative/kwanzaa-mini-lora", "repo_id: other-team/mini-lora")
    code, out, err = run_cli("train", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert code == 2, out + err
    assert "cannot write publish other-team/mini-lora, candidates other-team/mini-lora" in err
    assert "ask an admin of other-team to add ainative" in err
    assert not (tiny_repo / ".runs").exists()


def test_a_secret_the_runner_did_not_set_on_its_space_is_named_with_the_fix(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    on_a_space(tiny_repo)
    runner_made_space(env)
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.add_space_secret(SPACE, "HF_TOKEN", "hf_spaceToken123456")
    api.add_space_secret(SPACE, "OLD_PERSONAL_TOKEN", "hf_personal123456")

    code, out, _ = run_cli("doctor", "--repo", tiny_repo)

    assert code == 1, out
    (line,) = failing(out)
    assert f"{SPACE} secrets" in line
    assert "not set by the runner: OLD_PERSONAL_TOKEN" in line
    assert "delete them in the Space's settings" in out
    assert "hf_personal123456" not in out


def test_doctor_checks_only_the_adapters_named_with_adapter(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    other = tiny_repo / "adapters" / "kwanzaa-mini-v9"
    shutil.copytree(tiny_repo / "adapters" / ADAPTER, other)
    edit(other / "adapter.yaml", "version: 1", "version: 9")
    text = (other / "adapter.yaml").read_text(encoding="utf-8")
    pinned = next(line for line in text.splitlines() if "revision:" in line).split()[-1]
    edit(other / "adapter.yaml", pinned, "ab" * 20)

    code, out, _ = run_cli("doctor", "--repo", tiny_repo)
    assert code == 1, out  # the other adapter's base is not on the Hub at that revision

    code, out, _ = run_cli("doctor", "--adapter", ADAPTER, "--repo", tiny_repo)
    assert code == 0, out
    assert not failing(out), out

    code, _, err = run_cli("doctor", "--adapter", "kwanzaa-nope", "--repo", tiny_repo)
    assert code == 2
    assert "--adapter kwanzaa-nope: no such adapter" in err
