"""Builds a throwaway adapters repository whose data files mix clean records (taken from the
real example datasets) with planted problems at known lines, and records what a correct
validator must report: exactly those (file, line, rule id) and nothing on the clean lines."""

from __future__ import annotations

import json
import random
import shutil
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

Record = dict[str, Any]
Plant = Callable[[Record], bytes]


def token(prefix: str, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    """A realistic-looking secret, built at run time so none is ever committed."""
    return prefix + "".join(random.Random(length).choices(alphabet, k=length))


def dump(record: Record) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def with_answer(text: str) -> Plant:
    def plant(record: Record) -> bytes:
        record["messages"][2]["content"] = text
        return dump(record)

    return plant


def appended_to_answer(text: str) -> Plant:
    def plant(record: Record) -> bytes:
        record["messages"][2]["content"] += text
        return dump(record)

    return plant


def edited(change: Callable[[Record], Any]) -> Plant:
    def plant(record: Record) -> bytes:
        change(record)
        return dump(record)

    return plant


@dataclass
class DataFile:
    """Clean records with a plant after every second one. Each plant starts from its own
    donor record, so no plant is accidentally a duplicate of a clean line."""

    path: str
    clean: list[Record]
    donors: list[Record]
    plants: list[tuple[str, Plant]]
    expected: set[tuple[str, int, str]] = field(default_factory=set)
    clean_lines: set[int] = field(default_factory=set)

    def write(self, root: Path) -> None:
        assert len(self.donors) >= len(self.plants), f"{self.path}: not enough donor records"
        assert len(self.clean) >= 2 * len(self.plants), f"{self.path}: not enough clean records"
        lines: list[bytes] = []
        plants = iter(zip(self.plants, self.donors, strict=False))
        for index, record in enumerate(self.clean):
            lines.append(dump(record))
            self.clean_lines.add(len(lines))
            if index % 2 == 1 and (planted := next(plants, None)):
                (rule, plant), donor = planted
                lines.append(plant(json.loads(json.dumps(donor))))
                if rule:
                    self.expected.add((self.path, len(lines), rule))
        target = root / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\n".join(lines) + b"\n")


def read_records(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def copy_specs(root: Path, source: str, target: str, replacements: dict[str, str]) -> Path:
    directory = root / "adapters" / target
    shutil.copytree(REPO_ROOT / "adapters" / source, directory)
    for spec in directory.glob("*.yaml"):
        text = spec.read_text()
        for old, new in replacements.items():
            text = text.replace(old, new)
        spec.write_text(text)
    return directory


def base_repo(root: Path) -> None:
    for part in ("schemas", "policies"):
        shutil.copytree(REPO_ROOT / part, root / part)
    (root / "datasets/planted").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "datasets/kwanzaa/answer_json.schema.json", root / "datasets/planted")
