"""The real Hub's Space API answers, as huggingface_hub recorded them in its cassettes, replay
against the emulator: each request of a cassette is sent in order (repo ids substituted) and
must get the recorded status code and every key the Hub answered (extra keys are fine).

conformance/space_cassettes.json holds the recorded facts; conformance/derive_space_cassettes.py
derives it from a huggingface_hub checkout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import TOKEN

FACTS = Path(__file__).resolve().parents[1] / "conformance" / "space_cassettes.json"
CASSETTES = json.loads(FACTS.read_text(encoding="utf-8"))["cassettes"]
NAMESPACE = "ainative"
CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson"}


def repo_values(cassette: dict[str, Any]) -> dict[str, str]:
    """What each placeholder of the cassette stands for in this replay."""
    values: dict[str, str] = {}
    for index, _ in enumerate(cassette["repos"]):
        name = f"cassette-space-{index}"
        values |= {
            f"{{repo{index}}}": f"{NAMESPACE}/{name}",
            f"{{repo{index}.namespace}}": NAMESPACE,
            f"{{repo{index}.name}}": name,
        }
    return values


def substitute(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    if isinstance(value, str):
        for placeholder, actual in values.items():
            value = value.replace(placeholder, actual)
    return value


def created_by_cassette(cassette: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The create request of each repo the cassette creates, by its placeholder."""
    creates = {}
    for interaction in cassette["interactions"]:
        body = interaction["body"]
        if interaction["path"] == "/api/repos/create" and isinstance(body, dict):
            placeholder = body["name"].replace(".name}", "}")
            creates.setdefault(placeholder, interaction)
    return creates


def prepare(hub: Any, cassette: dict[str, Any], values: dict[str, str]) -> None:
    """Make the repos the recorded run found already there: one whose create was answered
    409 (left over from an earlier run), and one it only read (another user's Space)."""
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    creates = created_by_cassette(cassette)
    for placeholder in cassette["repos"]:
        create = creates.get(placeholder)
        if create is not None and create["status"] != 409:
            continue
        sdk = create["body"]["sdk"] if create else "static"
        api.create_repo(values[placeholder], repo_type="space", space_sdk=sdk)


def missing_keys(expected: Any, actual: Any, where: str = "") -> list[str]:
    """The keys of the Hub's answer that `actual` lacks, as dotted paths."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '.'} (not an object: {actual!r:.80})"]
        found = []
        for key, sub in expected.items():
            if key in actual:
                found += missing_keys(sub, actual[key], f"{where}.{key}")
            else:
                found.append(f"{where}.{key}")
        return found
    if isinstance(expected, list) and expected:
        if not isinstance(actual, list) or not actual:
            return [f"{where}[] (no items: {actual!r:.80})"]
        return [m for item in actual for m in missing_keys(expected[0], item, f"{where}[]")]
    return []


def replay(hub: Any, interaction: dict[str, Any], values: dict[str, str]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body, body_format = substitute(interaction["body"], values), interaction["body_format"]
    content = None
    if body_format == "json":
        content = json.dumps(body)
    elif body_format == "ndjson":
        content = "\n".join(json.dumps(line) for line in body)
    if body_format is not None:
        headers["Content-Type"] = CONTENT_TYPES[body_format]
    url = hub.endpoint + substitute(interaction["path"], values)
    return httpx.request(interaction["method"], url, content=content, headers=headers)


def differences(hub: Any, cassette: dict[str, Any]) -> list[str]:
    values = repo_values(cassette)
    prepare(hub, cassette, values)
    found = []
    for index, interaction in enumerate(cassette["interactions"]):
        response = replay(hub, interaction, values)
        label = f"{cassette['name']} #{index} {interaction['method']} {interaction['path']}"
        if response.status_code != interaction["status"]:
            found.append(
                f"{label}: status {response.status_code}, the Hub answered "
                f"{interaction['status']} ({response.text[:200]})"
            )
            continue
        expected = interaction["response"]
        if isinstance(expected, (dict, list)):
            lacking = missing_keys(expected, response.json())
            if lacking:
                found.append(f"{label}: lacks {', '.join(lacking)} ({response.text[:200]})")
    return found


@pytest.mark.parametrize("cassette", CASSETTES, ids=[c["name"] for c in CASSETTES])
def test_the_hubs_recorded_space_api_answers_replay_against_the_emulator(
    hub: Any, cassette: dict[str, Any]
) -> None:
    assert not (found := differences(hub, cassette)), "\n".join(found)


def test_the_recorded_answers_name_their_source_and_hold_no_secret() -> None:
    facts = FACTS.read_text(encoding="utf-8")
    source = json.loads(facts)["source"]

    assert source["repository"] == "huggingface/huggingface_hub"
    assert len(source["commit"]) == 40
    assert all(c["source"]["file"].startswith("tests/cassettes/") for c in CASSETTES)
    assert [word for word in ("hf_api_", "Bearer", "X-Request-Id") if word in facts] == []
