"""Loading an adapter version: its four spec files parsed, validated and checked against each
other."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from runner.errors import SpecError
from runner.findings import Finding, Severity, sort_findings
from runner.specs import rules
from runner.specs.bundle import SPEC_FILES, AdapterBundle, LoadResult, SpecFile
from runner.specs.translate import validation_findings
from runner.specs.yamlio import YamlDoc, read_yaml_file
from runner.workspace import Workspace

M = TypeVar("M", bound=BaseModel)


def load_model_file(
    file: Path, model: type[M], path: str, *, schema_hint: str = ""
) -> tuple[YamlDoc | None, M | None, list[Finding]]:
    """Parse a YAML file and validate it against `model`; every problem is a finding."""
    doc, findings = read_yaml_file(file, path)
    if doc is None:
        return None, None, findings
    try:
        return doc, model.model_validate(doc.data), findings
    except ValidationError as error:
        hint = schema_hint or f"the {model.__name__} fields"
        return doc, None, findings + validation_findings(error, doc, model, hint)


def load_spec_file(
    file: Path, spec_file: SpecFile, path: str
) -> tuple[YamlDoc | None, BaseModel | None, list[Finding]]:
    """One of the four spec files: validated, and warned about when it names no schema."""
    schema = f"schemas/{spec_file.schema_filename}"
    doc, spec, findings = load_model_file(file, spec_file.model, path, schema_hint=schema)
    if doc is not None and not doc.text.startswith("# yaml-language-server:"):
        findings.append(
            Finding(
                "spec.schema-header",
                Severity.WARNING,
                path,
                1,
                "no `# yaml-language-server` line; editors cannot validate this file",
                f"make the first line `{spec_file.schema_header}`",
                1,
            )
        )
    return doc, spec, findings


def load_adapter(workspace: Workspace, directory: Path) -> LoadResult:
    """Load all four specs of `directory`, reporting every problem in one pass."""
    base = workspace.rel(directory)
    if directory.is_symlink():
        link = Finding(
            "spec.unsafe-path",
            Severity.ERROR,
            f"adapters/{directory.name}",
            None,
            "is a symbolic link; only regular files inside the repository are read",
            "replace the link with the adapter's own folder",
        )
        return LoadResult(None, [link])
    findings: list[Finding] = []
    docs: dict[str, YamlDoc] = {}
    specs: dict[str, BaseModel] = {}
    for spec_file in SPEC_FILES:
        doc, spec, found = load_spec_file(
            directory / spec_file.filename, spec_file, f"{base}/{spec_file.filename}"
        )
        findings += found
        if doc is not None:
            docs[spec_file.filename] = doc
        if spec is not None:
            specs[spec_file.filename] = spec

    if "adapter.yaml" in specs:
        findings += rules.directory_name(directory, docs["adapter.yaml"], specs["adapter.yaml"])
    if len(specs) < len(SPEC_FILES):
        return LoadResult(None, sort_findings(findings))
    bundle = AdapterBundle(
        directory=directory,
        path=base,
        adapter=specs["adapter.yaml"],  # type: ignore[arg-type]
        dataset=specs["dataset.yaml"],  # type: ignore[arg-type]
        training=specs["qlora.yaml"],  # type: ignore[arg-type]
        evaluation=specs["eval.yaml"],  # type: ignore[arg-type]
        docs=docs,
    )
    findings += rules.cross_file_findings(bundle, workspace)
    return LoadResult(bundle, sort_findings(findings))


def require_adapter(workspace: Workspace, ref: str | Path) -> AdapterBundle:
    """The bundle for `ref`, or a SpecError listing every problem."""
    directory = workspace.adapter_dir(ref)
    result = load_adapter(workspace, directory)
    if not result.ok or result.bundle is None:
        errors = [f for f in result.findings if f.severity is Severity.ERROR]
        raise SpecError(
            f"{workspace.rel(directory)}: {len(errors)} spec error(s); fix them and run again",
            result.findings,
        )
    return result.bundle
