"""Derive conformance/space_cassettes.json from huggingface_hub's recorded Space API answers.

huggingface_hub records real Hub answers in tests/cassettes/TestSpaceAPIProduction.*.yaml.
The cassettes are not shipped in its sdist and hold real headers, so the repository commits
only what the emulator is measured against, per interaction: the method, the path with the
repo id as a placeholder, the request body (secret values redacted), the status code and the
response's JSON key structure (keys and value types, never values). No header is kept.

Usage: python conformance/derive_space_cassettes.py /path/to/huggingface_hub.git [--rev REV]
(a checkout or a bare clone: the cassettes are read from git at REV, HEAD by default).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML

REPOSITORY = "huggingface/huggingface_hub"
CASSETTES = "tests/cassettes"
PATTERN = "TestSpaceAPIProduction.*.yaml"
OUTPUT = Path(__file__).resolve().parent / "space_cassettes.json"
REDACTED = "<redacted>"
# Token shapes (Hugging Face, GitHub) that must never reach the derived file.
TOKEN_LIKE = re.compile(r"^(hf_|ghp_|gho_|ghs_|github_pat_)")
SPACE_PATH = re.compile(r"^/api/spaces/([^/]+)/([^/?]+)")


def structure(value: Any) -> Any:
    """Keys, recursively, and the JSON type of each leaf: what an answer holds, not its values.
    A list is the merged structure of its items."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = merge(merged, structure(item))
        return [] if merged is None else [merged]
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value), "null")


def merge(left: Any, right: Any) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        return {k: merge(left.get(k), right.get(k)) for k in {**left, **right}}
    return right if left is None else left


def parse_body(text: str | None) -> tuple[str | None, Any]:
    """The request body's format (json, ndjson, or None when empty) and its data."""
    if not text:
        return None, None
    try:
        return "json", json.loads(text)
    except json.JSONDecodeError:
        return "ndjson", [json.loads(line) for line in text.splitlines() if line.strip()]


def repo_ids(interactions: list[dict[str, Any]]) -> list[str]:
    """The repo ids a cassette touches, in order of appearance."""
    found: list[str] = []
    for interaction in interactions:
        request = interaction["request"]
        _, body = parse_body(request.get("body"))
        candidates = []
        if isinstance(body, dict) and body.get("name") and body.get("organization"):
            candidates.append(f"{body['organization']}/{body['name']}")
        if match := SPACE_PATH.match(urlsplit(request["uri"]).path):
            candidates.append(f"{match.group(1)}/{match.group(2)}")
        found += [repo for repo in candidates if repo not in found]
    return found


def placeholders(ids: list[str]) -> dict[str, str]:
    """Exact strings to replace: each repo id, and its namespace and name as create/delete
    bodies send them."""
    table: dict[str, str] = {}
    for index, repo in enumerate(ids):
        namespace, name = repo.split("/")
        table[repo] = f"{{repo{index}}}"
        table.setdefault(name, f"{{repo{index}.name}}")
        table.setdefault(namespace, f"{{repo{index}.namespace}}")
    return table


def anonymise(value: Any, table: dict[str, str], *, secret: bool = False) -> Any:
    """Repo ids as placeholders; secret values and anything shaped like a token redacted."""
    if isinstance(value, dict):
        return {
            k: REDACTED if secret and k == "value" else anonymise(v, table, secret=secret)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [anonymise(item, table, secret=secret) for item in value]
    if isinstance(value, str):
        return REDACTED if TOKEN_LIKE.match(value) else table.get(value, value)
    return value


def templated_path(uri: str, ids: list[str]) -> str:
    parts = urlsplit(uri)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    for index, repo in enumerate(ids):
        path = path.replace(f"/{repo}/", f"/{{repo{index}}}/").replace(
            f"/{repo}?", f"/{{repo{index}}}?"
        )
        if path.endswith(f"/{repo}"):
            path = path[: -len(repo)] + f"{{repo{index}}}"
    return path


def response_structure(text: str | None) -> Any:
    if not text:
        return None
    try:
        return structure(json.loads(text))
    except json.JSONDecodeError:
        return "text"


def interaction_facts(interaction: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    request, response = interaction["request"], interaction["response"]
    table = placeholders(ids)
    path = templated_path(request["uri"], ids)
    body_format, body = parse_body(request.get("body"))
    return {
        "method": request["method"],
        "path": path,
        "body_format": body_format,
        "body": anonymise(body, table, secret=path.split("?")[0].endswith("/secrets")),
        "status": response["status"]["code"],
        "response": response_structure(response["body"].get("string")),
    }


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def derive(repo: Path, rev: str = "HEAD") -> dict[str, Any]:
    commit = git(repo, "rev-parse", f"{rev}^{{commit}}").strip()
    names = git(repo, "ls-tree", "--name-only", commit, f"{CASSETTES}/").splitlines()
    yaml = YAML(typ="safe", pure=True)
    cassettes = []
    for file in sorted(n for n in names if fnmatch.fnmatch(Path(n).name, PATTERN)):
        interactions = yaml.load(git(repo, "show", f"{commit}:{file}"))["interactions"]
        ids = repo_ids(interactions)
        cassettes.append(
            {
                "name": Path(file).stem,
                "source": {"repository": REPOSITORY, "commit": commit, "file": file},
                "repos": [f"{{repo{index}}}" for index in range(len(ids))],
                "interactions": [interaction_facts(item, ids) for item in interactions],
            }
        )
    if not cassettes:
        raise SystemExit(f"no {CASSETTES}/{PATTERN} at {rev} in {repo}: is that the repo?")
    return {
        "about": "Real Hub answers to huggingface_hub's Space API tests: status codes and "
        "JSON key structures, derived by conformance/derive_space_cassettes.py",
        "source": {"repository": REPOSITORY, "commit": commit, "files": CASSETTES + "/" + PATTERN},
        "cassettes": cassettes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="a huggingface_hub checkout or bare clone")
    parser.add_argument("--rev", default="HEAD", help="the commit to read (default: HEAD)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    facts = derive(args.repo, args.rev)
    args.output.write_text(json.dumps(facts, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(facts['cassettes'])} cassettes")


if __name__ == "__main__":
    main()
