"""Shared building blocks of the spec models: the strict base class and value types."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from runner.findings import quote
from runner.hub.licenses import HUB_LICENSES, LICENSES_PAGE, OTHER_LICENSE, nearest_license
from runner.repofiles import path_problem


class SpecModel(BaseModel):
    """Strict: YAML `"32"` is not an integer, unknown keys are errors, docstrings document
    the JSON Schema that editors use."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        validate_default=True,
    )


def spec_error(kind: str, message: str, *, at: str | None = None) -> PydanticCustomError:
    """A validation error for a rule of our own. `at` is a dotted path below the model being
    validated, so the finding points at the exact key rather than the whole mapping."""
    return PydanticCustomError(kind, message, {"at": at} if at else None)


def _matches(pattern: str, kind: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise spec_error(kind, f"expected {what}, got {quote(value)}")
        return value

    return AfterValidator(check)


_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"

HubRepoId = Annotated[
    str,
    _matches(
        rf"(?!.*(?:--|\.\.))(?!.*\.git$){_HUB_PART}/{_HUB_PART}",
        "hub_repo_id",
        "a Hub repo id such as `owner/name` (letters, digits, '-', '_', '.')",
    ),
]
"""`owner/name` as the Hugging Face Hub accepts it."""

Sha256 = Annotated[
    str, _matches(r"[0-9a-f]{64}", "sha256", "a 64-character lowercase hex sha256 digest")
]

Slug = Annotated[
    str,
    _matches(
        r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?",
        "slug",
        "lowercase letters, digits, '-' and '_', starting and ending with a letter or digit",
    ),
]


def _repo_path(value: str) -> str:
    problem = path_problem(value)
    if problem is None and any(c in value for c in '*?"<>|'):
        problem = 'may not contain * ? " < > or |'
    if problem is not None:
        raise spec_error(
            "repo_path",
            f"expected a path relative to the repository root, got {quote(value)}: "
            f"the path {problem}",
        )
    return value


RepoPath = Annotated[str, AfterValidator(_repo_path)]
"""A file path relative to the repository root."""

DatasetVersion = Annotated[str, _matches(r"v[0-9]+", "dataset_version", "`v<N>`, e.g. `v2`")]


def _hub_license(value: str) -> str:
    if value in HUB_LICENSES:
        return value
    nearest = nearest_license(value)
    fix = (
        f"did you mean `{nearest}`?"
        if nearest
        else f"a license not on the list is `{OTHER_LICENSE}`, named by `license_name` and "
        "`license_link`"
    )
    raise spec_error(
        "license",
        f"{quote(value)} is not a license id the Hub accepts; {fix} (ids: {LICENSES_PAGE})",
    )


LicenseId = Annotated[
    str,
    AfterValidator(_hub_license),
    # The list itself, so editors complete the id from the schema.
    WithJsonSchema({"type": "string", "enum": sorted(HUB_LICENSES)}),
]
"""A license id from the Hub's list, exactly as the Hub spells it (`apache-2.0`)."""

LicenseName = Annotated[
    str,
    _matches(
        r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?",
        "license_name",
        "an id of lowercase letters, digits, '-' and '.', e.g. `my-license-1.0`",
    ),
]
"""The id of a license not on the Hub's list (`license: other`)."""

LicenseLink = Annotated[
    str, _matches(r"https?://[^\s()<>\[\]|`]+", "license_link", "the license's http(s) URL")
]
"""Where a license not on the Hub's list is written down; a URL, since nothing the runner
pushes carries a LICENSE file, and one that stays a single link in the card's markdown table."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
"""A share or score between 0 and 1."""

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
