"""JSON Schemas of the spec files, generated from the models, so editors validate and
complete `adapters/*/*.yaml` and `channels/*.yaml` through the `# yaml-language-server` line."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from runner.specs.bundle import SPEC_FILES
from runner.specs.channels import CHANNELS_DIR, SCHEMA_FILENAME, ChannelsSpec


def render_schemas() -> dict[str, str]:
    """Schema filename -> its text: the four spec files of a version, then the channels file."""
    specs = [(s.schema_filename, s.filename, s.model) for s in SPEC_FILES]
    specs.append((SCHEMA_FILENAME, f"{CHANNELS_DIR}/<adapter name>.yaml", ChannelsSpec))
    return {name: _render(name, title, model) for name, title, model in specs}


def _render(name: str, title: str, model: type[BaseModel]) -> str:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": name,
        **model.model_json_schema(mode="validation"),
    }
    schema["title"] = title
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema whose content changed; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        target = directory / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def stale_schemas(directory: Path) -> list[str]:
    """Schema files that are missing or differ from what the models generate."""
    return [
        name
        for name, text in render_schemas().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
