"""What changed between two adapter versions: spec fields and dataset counts per category."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.specs.bundle import AdapterBundle


@dataclass(frozen=True)
class FieldChange:
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class CategoryCounts:
    category: str
    old_train: int | None
    new_train: int | None
    old_eval: int | None
    new_eval: int | None


@dataclass(frozen=True)
class SpecDiff:
    old: str
    new: str
    fields: list[FieldChange]
    categories: list[CategoryCounts]


_MISSING = object()


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists stay whole values."""
    if not isinstance(data, dict) or not data:
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def diff_bundles(old: AdapterBundle, new: AdapterBundle) -> SpecDiff:
    before, after = flatten(old.resolved()), flatten(new.resolved())
    fields = [
        FieldChange(key, before.get(key, _MISSING), after.get(key, _MISSING))
        for key in [*before, *(k for k in after if k not in before)]
        if before.get(key, _MISSING) != after.get(key, _MISSING)
        and not key.startswith("dataset.files.")  # hashes and counts: shown per category below
    ]
    return SpecDiff(old.dirname, new.dirname, fields, _category_counts(old, new))


def _category_counts(old: AdapterBundle, new: AdapterBundle) -> list[CategoryCounts]:
    names = [
        *old.dataset.categories,
        *(c for c in new.dataset.categories if c not in old.dataset.categories),
    ]

    def count(bundle: AdapterBundle, split: str, category: str) -> int | None:
        counts = getattr(bundle.dataset.files, split).category_counts
        if counts is None:
            return None
        return counts.get(category, 0)

    return [
        CategoryCounts(
            name,
            count(old, "train", name),
            count(new, "train", name),
            count(old, "eval", name),
            count(new, "eval", name),
        )
        for name in names
    ]


def is_missing(value: Any) -> bool:
    return value is _MISSING
