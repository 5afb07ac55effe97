"""JSON Schemas of the spec files, generated from the models, so editors validate and
complete `adapters/*/*.yaml` through the `# yaml-language-server` line."""

from __future__ import annotations

import json
from pathlib import Path

from runner.specs.bundle import SPEC_FILES


def render_schemas() -> dict[str, str]:
    rendered = {}
    for spec_file in SPEC_FILES:
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": spec_file.schema_filename,
            **spec_file.model.model_json_schema(mode="validation"),
        }
        schema["title"] = spec_file.filename
        rendered[spec_file.schema_filename] = (
            json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        )
    return rendered


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
