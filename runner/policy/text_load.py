"""Read the text policy files of a policies folder: those that declare `kind: text`."""

from __future__ import annotations

import re
from pathlib import Path

from runner.findings import Finding, Severity
from runner.policy.text import TextPolicies
from runner.policy.text_build import compile_rules
from runner.policy.text_format import SCHEMA_HINT, TextPolicyFile
from runner.policy.text_rules import CompiledRule
from runner.repofiles import UnsafePathError, read_regular_bytes
from runner.specs.load import load_model_file
from runner.specs.yamlio import YamlDoc

# Decided on the raw text, so that a text policy with broken YAML is still recognised as
# one (and reported), while other policy files are left to their own readers.
_TEXT_KIND = re.compile(r"""^kind:[ \t]*(["']?)text\1[ \t]*(?:#.*)?$""", re.MULTILINE)


def load_text_policies(
    folder: Path, display_prefix: str = "policies"
) -> tuple[TextPolicies, list[Finding]]:
    """The rules of every `kind: text` file in `folder`, and findings for the problems in
    those files. Broken rules are left out; the rest still apply."""
    if not folder.is_dir():
        missing = "no policies folder; text policies (attribution, secrets) cannot run"
        return TextPolicies(), [
            Finding("spec.missing-file", Severity.ERROR, display_prefix, None, missing)
        ]
    rules: list[CompiledRule] = []
    problems: list[Finding] = []
    for file in sorted(folder.glob("*.yaml")):
        if not _is_text_policy(file):
            continue
        path = f"{display_prefix}/{file.name}"
        doc, policy, found = load_model_file(file, TextPolicyFile, path, schema_hint=SCHEMA_HINT)
        problems += found
        if doc is not None and policy is not None:
            problems += _duplicate_ids(policy, doc, {rule.id for rule in rules})
            compiled, found = compile_rules(policy, doc)
            problems += found
            rules += compiled
    return TextPolicies(rules), problems


def _is_text_policy(file: Path) -> bool:
    try:
        raw = read_regular_bytes(file)
    except (OSError, UnsafePathError):
        # Not knowing what a file holds is no reason to skip its rules in silence: the
        # loader reports why it cannot be read (once, however many loaders try).
        return True
    return bool(_TEXT_KIND.search(raw.decode("utf-8-sig", errors="replace")))


def _duplicate_ids(policy: TextPolicyFile, doc: YamlDoc, taken: set[str]) -> list[Finding]:
    # Two rules with one id would make findings ambiguous and waivers hit the wrong rule.
    problems: list[Finding] = []
    for index, rule in enumerate(policy.rules):
        if rule.id in taken:
            message = f"rules[{index}].id: {rule.id} is defined twice"
            problems.append(doc.finding(["rules", index, "id"], "spec.duplicate-rule", message))
        taken.add(rule.id)
    return problems
