"""README front matter: parsed for `cardData` and checked by `/api/validate-yaml`."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml  # PyYAML: what huggingface_hub itself parses cards with

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


# The license ids the Hub accepts in card metadata (huggingface.co/docs/hub/
# repositories-licenses); anything else is `other` with a `license_name` and `license_link`.
_LICENSE_IDS = """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m
    bigscience-bloom-rail-1.0 bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause
    bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0
    cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0
    etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc
    h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
    openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
    llama3.3 llama4 gemma unknown other
"""
HUB_LICENSES = frozenset(_LICENSE_IDS.split())
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
