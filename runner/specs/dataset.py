"""`dataset.yaml`: the dataset manifest. Hashes and counts are written by
`runner dataset lock`; the data checks compare the files against them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runner.hub.licenses import OTHER_LICENSE
from runner.specs.base import (
    DatasetVersion,
    Fraction,
    HubRepoId,
    LicenseId,
    LicenseLink,
    LicenseName,
    NonNegativeInt,
    PositiveInt,
    RepoPath,
    Sha256,
    Slug,
    SpecModel,
    spec_error,
)


class DatasetFile(SpecModel):
    path: RepoPath
    """JSONL file, relative to the repository root, e.g. `datasets/ainative/v2/train.jsonl`."""
    sha256: Sha256 | None = None
    """sha256 of the file's bytes (written by `runner dataset lock`)."""
    examples: NonNegativeInt | None = None
    """Number of records (written by `runner dataset lock`)."""
    category_counts: dict[str, NonNegativeInt] | None = None
    """Records per category (written by `runner dataset lock`)."""


class DatasetFiles(SpecModel):
    train: DatasetFile
    eval: DatasetFile


class CategoryMinimum(SpecModel):
    description: str = ""
    """What the category covers."""
    min_train: PositiveInt = 1
    """Fewest training records the category may have; at least 1, since a minimum of 0
    passes every dataset (a category with no training records is never learned)."""
    min_eval: PositiveInt = 1
    """Fewest eval records the category may have; at least 1, since a minimum of 0 passes
    every dataset (a category with no eval records is never scored)."""


class CodeQualityMinimums(SpecModel):
    """Shares of assistant answers (code_assistant datasets) that must show each trait."""

    tests: Fraction = 0.0
    type_hints: Fraction = 0.0
    error_handling: Fraction = 0.0


class DatasetManifest(SpecModel):
    name: Slug
    """Dataset name; the files live under `datasets/<name>/<version>/`."""
    version: DatasetVersion
    """Dataset version, `v<N>`."""
    description: str = ""
    license: LicenseId
    """License id from the Hub's list (huggingface.co/docs/hub/repositories-licenses), e.g.
    `cc-by-4.0` or `apache-2.0`; `other` for a license not on it."""
    license_name: LicenseName | None = None
    """With `license: other`: the license's id, e.g. `my-license-1.0`."""
    license_link: LicenseLink | None = None
    """With `license: other`: the URL of the license's text."""
    hub_repo: HubRepoId
    """Hub dataset repo the files are pushed to (tagged with the version)."""
    format: Literal["chat"] = "chat"
    """Record format: chat JSONL with system, user and assistant messages."""
    files: DatasetFiles
    categories: dict[Slug, CategoryMinimum] = Field(min_length=1)
    """Every category a record may carry, with its minimum counts."""
    extra_fields: list[Slug] = Field(default_factory=list)
    """Record keys beyond the task's own (id, category, messages; answerable and
    gold_citations for citation tasks), e.g. `topic`. Any other key is a finding."""
    near_duplicate_similarity: Fraction = 0.9
    """Prompts at least this similar (Jaccard of word 3-grams) count as near-duplicates."""
    answer_schema: RepoPath | None = None
    """JSON Schema the assistant's answer_json must satisfy (citation_grounded_chat)."""
    code_quality: CodeQualityMinimums | None = None
    """Minimum shares of tests, type hints and error handling (code_assistant)."""

    @model_validator(mode="after")
    def _other_license_is_named(self) -> DatasetManifest:
        """As the Hub's cards do: `other` is named by `license_name` and `license_link`, and
        only `other` is, so a listed id never carries a second, contradicting name."""
        named = {"license_name": self.license_name, "license_link": self.license_link}
        for key, value in named.items():
            if self.license == OTHER_LICENSE and value is None:
                raise spec_error(
                    "other_license_unnamed",
                    f"`license: {OTHER_LICENSE}` needs `license_name` (the license's id) and "
                    f"`license_link` (the URL of its text) to say which license it is; add `{key}`",
                    at="license",
                )
            if self.license != OTHER_LICENSE and value is not None:
                raise spec_error(
                    "license_name_without_other",
                    f"`{key}` is only for `license: {OTHER_LICENSE}`; remove it, "
                    f"`{self.license}` is already on the Hub's list",
                    at=key,
                )
        return self
