"""Rules that span fields of different spec files, or the specs and the repository.
Rules within one file live next to the fields they guard, in the models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from runner.findings import Finding, Severity, quote
from runner.repofiles import MissingFileError, UnsafePathError, declared_file
from runner.specs.adapter import AdapterSpec
from runner.specs.tasks import TASK_METRICS
from runner.specs.yamlio import YamlDoc
from runner.workspace import Workspace, split_adapter_dirname

if TYPE_CHECKING:
    from runner.specs.bundle import AdapterBundle

MAX_LISTED = 20  # findings about one folder's odd entries: enough to act on, never a flood


def directory_name(directory: Path, doc: YamlDoc, adapter: AdapterSpec) -> list[Finding]:
    expected = f"{adapter.name}-v{adapter.version}"
    if directory.name == expected:
        return []
    parsed = split_adapter_dirname(directory.name)
    loc = ["version"] if parsed and parsed[0] == adapter.name else ["name"]
    return [
        doc.finding(
            loc,
            "spec.dir-name",
            f"directory is {quote(directory.name)} but adapter.yaml says {quote(expected)}",
            hint="the directory must be `<name>-v<version>`: rename it or fix name/version",
        )
    ]


def cross_file_findings(bundle: AdapterBundle, workspace: Workspace) -> list[Finding]:
    return [
        *floating_revision(bundle),
        *eval_metrics_exist_for_task(bundle),
        *eval_categories_exist_in_manifest(bundle),
        *task_needs(bundle),
        *dataset_files_exist(bundle, workspace),
        *links_beside_the_data(bundle, workspace),
        *dataset_is_locked(bundle),
    ]


def floating_revision(bundle: AdapterBundle) -> Iterator[Finding]:
    base = bundle.adapter.base_model
    if base.floating:
        yield bundle.docs["adapter.yaml"].finding(
            ["base_model", "revision"],
            "spec.floating-revision",
            f"base_model.revision {quote(base.revision)} floats: a moved branch changes the run",
            hint="pin a 40-hex commit id before promoting",
            severity=Severity.WARNING,
        )


def eval_metrics_exist_for_task(bundle: AdapterBundle) -> Iterator[Finding]:
    task = bundle.adapter.task
    known = TASK_METRICS[task]
    doc = bundle.docs["eval.yaml"]
    spec = bundle.evaluation
    hint = f"metrics of {task}: {', '.join(known)}"

    def unknown(loc: list[str | int], metric: str, at_key: bool) -> Finding:
        message = f"{'.'.join(map(str, loc))}: {quote(metric)} is not a metric of task {task}"
        return doc.finding(loc, "spec.unknown-metric", message, hint=hint, at_key=at_key)

    if spec.primary_metric not in known:
        yield unknown(["primary_metric"], spec.primary_metric, False)
    for metric in spec.thresholds.overall:
        if metric not in known:
            yield unknown(["thresholds", "overall", metric], metric, True)
    for category, floors in spec.thresholds.categories.items():
        for metric in floors:
            if metric not in known:
                yield unknown(["thresholds", "categories", category, metric], metric, True)
    for index, waiver in enumerate(spec.waivers):
        if waiver.metric not in known:
            yield unknown(["waivers", index, "metric"], waiver.metric, False)


def eval_categories_exist_in_manifest(bundle: AdapterBundle) -> Iterator[Finding]:
    declared = list(bundle.dataset.categories)
    doc = bundle.docs["eval.yaml"]
    hint = f"categories in dataset.yaml: {', '.join(declared)}"
    spec = bundle.evaluation
    for category in spec.thresholds.categories:
        if category not in declared:
            yield doc.finding(
                ["thresholds", "categories", category],
                "spec.unknown-category",
                f"thresholds.categories: {quote(category)} is not a category of dataset.yaml",
                hint=hint,
                at_key=True,
            )
    for index, waiver in enumerate(spec.waivers):
        if waiver.category is not None and waiver.category not in declared:
            yield doc.finding(
                ["waivers", index, "category"],
                "spec.unknown-category",
                f"waivers[{index}].category: {quote(waiver.category)} "
                "is not a category of dataset.yaml",
                hint=hint,
            )


def task_needs(bundle: AdapterBundle) -> Iterator[Finding]:
    doc = bundle.docs["dataset.yaml"]
    if bundle.adapter.task == "citation_grounded_chat" and bundle.dataset.answer_schema is None:
        yield doc.finding(
            [],
            "spec.answer-schema",
            "answer_schema: missing; citation_grounded_chat answers are checked against it",
            hint="add `answer_schema: datasets/<name>/answer_json.schema.json`",
        )


def dataset_files_exist(bundle: AdapterBundle, workspace: Workspace) -> Iterator[Finding]:
    doc = bundle.docs["dataset.yaml"]
    manifest = bundle.dataset
    paths: list[tuple[list[str | int], str]] = [
        (["files", "train", "path"], manifest.files.train.path),
        (["files", "eval", "path"], manifest.files.eval.path),
    ]
    if manifest.answer_schema is not None:
        paths.append((["answer_schema"], manifest.answer_schema))
    for loc, relative in paths:
        key = ".".join(map(str, loc))
        try:
            declared_file(workspace.root, relative, what=key)
        except MissingFileError:
            yield doc.finding(
                loc,
                "spec.missing-data-file",
                f"{key}: no file at {relative}",
                hint="paths are relative to the repository root",
            )
        except UnsafePathError as error:
            yield doc.finding(
                loc,
                "spec.unsafe-path",
                f"{key}: {error}",
                hint="only regular files inside the repository are read or uploaded",
            )


def links_beside_the_data(bundle: AdapterBundle, workspace: Workspace) -> Iterator[Finding]:
    """A symlink or special file next to the data files is never read nor uploaded; say so,
    since whoever put it there may believe it ships with the dataset (or hope it does)."""
    doc = bundle.docs["dataset.yaml"]
    folder = workspace.root / bundle.dataset.files.train.path.rsplit("/", 1)[0]
    if folder.is_symlink() or not folder.is_dir():
        return  # the data file's own finding covers it
    with os.scandir(folder) as entries:
        odd = sorted(e.name for e in entries if e.is_symlink() or not (e.is_file() or e.is_dir()))
    for name in odd[:MAX_LISTED]:
        yield doc.finding(
            ["files", "train", "path"],
            "spec.unsafe-path",
            f"{workspace.rel(folder)}/{name} is a symbolic link or special file: it is never "
            "read or uploaded (only the files this manifest declares are)",
            hint="remove it, or replace it with the file itself and declare it",
            severity=Severity.WARNING,
        )


def dataset_is_locked(bundle: AdapterBundle) -> Iterator[Finding]:
    doc = bundle.docs["dataset.yaml"]
    for split in ("train", "eval"):
        file = getattr(bundle.dataset.files, split)
        if file.sha256 is None or file.examples is None:
            yield doc.finding(
                ["files", split],
                "spec.dataset-unlocked",
                f"files.{split}: no sha256/examples recorded, so changes go unnoticed",
                hint=f"run `runner dataset lock {bundle.path}`",
                severity=Severity.WARNING,
                at_key=True,
            )
