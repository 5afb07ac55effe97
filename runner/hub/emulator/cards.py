"""README front matter: parsed for `cardData` and checked by `/api/validate-yaml`."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml  # PyYAML: what huggingface_hub itself parses cards with

from runner.hub.licenses import HUB_LICENSES

# The pattern huggingface_hub.repocard uses, so both sides agree on where metadata ends.
YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")


# Far above any real card (a model-index with hundreds of metrics is a few thousand values),
# far below what would stall a request when expanded.
MAX_NODES = 100_000


class CardError(ValueError):
    pass


def front_matter(text: str) -> dict[str, Any]:
    """The card's metadata as JSON-safe data; {} without a front matter block.
    Raises CardError when the block is not a YAML mapping."""
    match = YAML_BLOCK.search(text)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        raise CardError(f"Invalid YAML in README.md metadata: {exc}") from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise CardError("README.md metadata is nested too deeply") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardError("README.md metadata must be a YAML mapping (key: value)")
    if not _within(data, MAX_NODES):
        raise CardError(
            f"README.md metadata is too large or refers to itself: over {MAX_NODES} values once "
            "its anchors (&) and aliases (*) are expanded"
        )
    # Dates and other YAML-only types become strings, as they do in the Hub's JSON.
    try:
        return json.loads(json.dumps(data, default=str))
    except RecursionError as exc:
        raise CardError("README.md metadata is nested too deeply") from exc


def _within(data: object, limit: int) -> bool:
    """Whether `data` has at most `limit` values, counted as JSON would write them out: each
    alias again (so a "billion laughs" document stops the count early) and a cycle forever."""
    pending, seen = [data], 0
    while pending:
        seen += 1
        if seen > limit:
            return False
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return True


def card_data_or_none(text: str) -> dict[str, Any] | None:
    try:
        return front_matter(text) or None
    except CardError:
        return None


# Keys whose value is one name or a list of names; then keys that take exactly one string.
NAME_OR_NAMES = ("license", "language", "tags", "datasets", "metrics", "base_model")
ONE_STRING = ("library_name", "pipeline_tag", "license_name", "license_link")


def validation_errors(text: str) -> list[str]:
    """What the Hub would reject: unparsable YAML, a license it does not know, a value of
    the wrong type for a key it knows, and a malformed `model-index`."""
    try:
        data = front_matter(text)
    except CardError as exc:
        return [str(exc)]
    return _type_errors(data) + _license_errors(data) + _model_index_errors(data)


# The Hub's warning for a card without metadata; huggingface_hub shows it as a UserWarning.
EMPTY_METADATA = (
    "Empty or missing yaml metadata in repo card "
    "(https://huggingface.co/docs/hub/model-cards#model-card-metadata)"
)


def validation_warnings(text: str) -> list[str]:
    """What the Hub accepts but warns about: a card with no metadata at all."""
    return [EMPTY_METADATA] if card_data_or_none(text) is None else []


def _type_errors(data: dict[str, Any]) -> list[str]:
    errors = [
        f'"{key}" must be a string or a list of strings'
        for key in NAME_OR_NAMES
        if key in data and not _is_name_or_names(data[key])
    ]
    errors += [
        f'"{key}" must be a string'
        for key in ONE_STRING
        if key in data and not isinstance(data[key], str)
    ]
    return errors


def _is_name_or_names(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _license_errors(data: dict[str, Any]) -> list[str]:
    value = data.get("license")
    licenses = value if isinstance(value, list) else [value]
    if value is None or any(not isinstance(v, str) for v in licenses):
        return []  # absent, or already reported as the wrong type
    if all(v in HUB_LICENSES for v in licenses):
        return []
    return [f'"license" must be one of [{", ".join(sorted(HUB_LICENSES))}]']


def _model_index_errors(data: dict[str, Any]) -> list[str]:
    index = data.get("model-index")
    if index is None:
        return []
    if not isinstance(index, list) or not all(isinstance(m, dict) for m in index):
        return ["model-index must be a list of models"]
    errors: list[str] = []
    for model in index:
        if not isinstance(model.get("name"), str):
            errors.append("model-index[].name must be a string")
        results = model.get("results")
        if not isinstance(results, list):
            errors.append("model-index[].results must be a list")
            continue
        for result in results:
            if not isinstance(result, dict):
                errors.append("model-index[].results[] must be a mapping")
                continue
            task, dataset, metrics = (
                result.get("task"),
                result.get("dataset"),
                result.get("metrics"),
            )
            if not isinstance(task, dict) or "type" not in task:
                errors.append("model-index[].results[].task.type is required")
            if not isinstance(dataset, dict) or "type" not in dataset or "name" not in dataset:
                errors.append("model-index[].results[].dataset needs type and name")
            if not isinstance(metrics, list) or not all(
                isinstance(m, dict) and "type" in m and "value" in m for m in metrics
            ):
                errors.append("model-index[].results[].metrics[] need type and value")
    return errors
