"""The files that run outside the runner repeat code they cannot import: the AutoTrain Space
app (train.py's constants, stages, redaction, records and upload), the trl Space app and the
AutoTrain app (each other's Hub timeouts, status server and pause), and runs/progress.py
(train.py's progress marker: the runner reads what train.py prints). Each copy is pinned to
its original here, by value for constants and by syntax tree for code, so that one cannot
change without the other. The files are parsed, never imported.

A copy may differ from its original only where this file says so, and each such difference is
checked to still exist, so that a stale exception fails too."""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

TRAIN = REPO_ROOT / "runner/train/train.py"
AUTOTRAIN_APP = REPO_ROOT / "runner/space/autotrain_app_template.py"
TRL_APP = REPO_ROOT / "runner/space/app_template.py"
PROGRESS = REPO_ROOT / "runner/runs/progress.py"

Definition = ast.FunctionDef | ast.ClassDef


@dataclass(frozen=True)
class Copy:
    """`name` in `copy`, repeating `original_name` (the same name unless given) in
    `original`."""

    copy: Path
    name: str
    original: Path
    original_name: str = ""
    renames: dict[str, str] = field(default_factory=dict)  # original's names -> the copy's
    extra: tuple[str, ...] = ()  # first lines of the statements only the copy has
    replaced: tuple[tuple[str, str], ...] = ()  # (original's text, copy's text)

    @property
    def id(self) -> str:
        return f"{self.copy.stem}.{self.name}"


CONSTANTS = [
    Copy(AUTOTRAIN_APP, "ADAPTER_FILES", TRAIN),
    Copy(AUTOTRAIN_APP, "MODEL_FILES", TRAIN),
    Copy(AUTOTRAIN_APP, "PROGRESS_MARKER", TRAIN),
    Copy(AUTOTRAIN_APP, "TOKEN_PATTERN", TRAIN, "_TOKEN_PATTERN"),
    Copy(PROGRESS, "PROGRESS_MARKER", TRAIN),
    Copy(AUTOTRAIN_APP, "HUB_TIMEOUT_S", TRL_APP),
]

DEFINITIONS = [
    Copy(AUTOTRAIN_APP, "StageFailed", TRAIN),
    Copy(AUTOTRAIN_APP, "now_iso", TRAIN),
    Copy(AUTOTRAIN_APP, "redact", TRAIN, renames={"_TOKEN_PATTERN": "TOKEN_PATTERN"}),
    Copy(AUTOTRAIN_APP, "fill_timeouts", TRL_APP),
    Copy(AUTOTRAIN_APP, "Handler", TRL_APP),
    # AutoTrain's image pins huggingface_hub 0.x, which has no client factory to set.
    Copy(
        AUTOTRAIN_APP,
        "bound_hub_requests",
        TRL_APP,
        extra=("if not hasattr(huggingface_hub, 'set_client_factory'):",),
    ),
    # The AutoTrain app imports huggingface_hub at the top; the trl app only where it must.
    Copy(TRL_APP, "pause_space", AUTOTRAIN_APP, extra=("from huggingface_hub import HfApi",)),
]


def top_level(path: Path) -> dict[str, ast.stmt]:
    """The module's definitions and assignments by name."""
    found: dict[str, ast.stmt] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, Definition):
            found[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found |= {target.id: node for target in targets if isinstance(target, ast.Name)}
    return found


def definition(path: Path, name: str) -> Any:
    node = top_level(path).get(name)
    assert node is not None, f"{path.relative_to(REPO_ROOT)} defines no {name}"
    return node


def value(path: Path, name: str) -> Any:
    """A literal constant's value; a compiled regex's pattern. Lists and tuples compare
    equal: the copies are read, never changed."""
    node = definition(path, name).value
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "re.compile":
        node = node.args[0]
    found = ast.literal_eval(node)
    return tuple(found) if isinstance(found, list) else found


class Normalise(ast.NodeTransformer):
    """Docstrings dropped (the copies explain themselves in fewer words), names renamed and
    the statements only the copy has dropped."""

    def __init__(self, renames: dict[str, str], extra: tuple[str, ...]) -> None:
        self.renames, self.extra, self.dropped = renames, extra, set[str]()

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.renames.get(node.id, node.id)
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if isinstance(node, Definition) and body and _is_docstring(body[0]):
            node.body = body[1:]
        if isinstance(getattr(node, "body", None), list):
            node.body = [statement for statement in node.body if not self._is_extra(statement)]
        return super().generic_visit(node)

    def _is_extra(self, statement: ast.stmt) -> bool:
        first_line = ast.unparse(statement).splitlines()[0]
        if first_line in self.extra:
            self.dropped.add(first_line)
            return True
        return False


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def normalised(node: ast.AST, renames: dict[str, str], extra: tuple[str, ...]) -> str:
    normalise = Normalise(renames, extra)
    text = ast.unparse(normalise.visit(copy.deepcopy(node)))
    assert normalise.dropped == set(extra), (
        f"stale extra statements: {set(extra) - normalise.dropped}"
    )
    return text


@pytest.mark.parametrize("pinned", CONSTANTS, ids=lambda pinned: pinned.id)
def test_a_copied_constant_has_its_original_value(pinned: Copy) -> None:
    original = value(pinned.original, pinned.original_name or pinned.name)
    assert value(pinned.copy, pinned.name) == original


@pytest.mark.parametrize("pinned", DEFINITIONS, ids=lambda pinned: pinned.id)
def test_a_copied_helper_has_its_original_code(pinned: Copy) -> None:
    original_node = definition(pinned.original, pinned.original_name or pinned.name)
    original = normalised(original_node, pinned.renames, ())
    for original_text, copy_text in pinned.replaced:
        assert original_text in original, f"stale difference: {original_text}"
        original = original.replace(original_text, copy_text)
    assert normalised(definition(pinned.copy, pinned.name), {}, pinned.extra) == original


def test_the_autotrain_stage_fails_as_train_py_stages_do() -> None:
    """The two `stage`s differ in what they record (a duration, or the app's /status), not in
    what they raise: StageFailed, never wrapped twice."""

    def handlers(path: Path) -> list[str]:
        tries = [node for node in ast.walk(definition(path, "stage")) if isinstance(node, ast.Try)]
        return [ast.unparse(handler) for handler in tries[0].handlers]

    assert handlers(AUTOTRAIN_APP) == handlers(TRAIN)


def test_the_autotrain_upload_lays_out_files_as_train_py_does() -> None:
    """One commit of every file under the output folder, named as in train.py's upload; the
    retries are train.py's own (the app runs once, on a Space that is watched)."""

    def operations(path: Path, name: str) -> str:
        assignments = [
            node
            for node in ast.walk(definition(path, name))
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "operations"
        ]
        return ast.unparse(assignments[0])

    assert operations(AUTOTRAIN_APP, "upload") == operations(TRAIN, "upload_files")


def test_the_autotrain_error_record_holds_train_py_s_run_error() -> None:
    """The app writes as a dict what train.py builds as a RunError, field by field."""
    built = returned(TRAIN, "error_record")
    assert isinstance(built, ast.Call)
    assert ast.unparse(built.func) == "RunError"
    names = [name for name, _ in fields(TRAIN, "RunError")]
    expected = dict(zip(names, map(ast.unparse, built.args), strict=False))
    expected |= {keyword.arg: ast.unparse(keyword.value) for keyword in built.keywords}
    assert record_fields(AUTOTRAIN_APP, "error_record") == expected


def test_the_autotrain_run_json_is_a_run_result() -> None:
    """Every key of the app's run.json is a RunResult field, and every field without a
    default is there: the runner reads both engines' run.json as one type."""
    keys = set(record_fields(AUTOTRAIN_APP, "run_record"))
    result = fields(TRAIN, "RunResult")
    assert keys <= {name for name, _ in result}
    assert {name for name, has_default in result if not has_default} <= keys


def returned(path: Path, name: str) -> ast.expr:
    returns = [node for node in ast.walk(definition(path, name)) if isinstance(node, ast.Return)]
    assert len(returns) == 1
    assert returns[0].value is not None
    return returns[0].value


def record_fields(path: Path, name: str) -> dict[str, str]:
    """The keys and value expressions of the dict literal that `name` returns."""
    record = returned(path, name)
    assert isinstance(record, ast.Dict)
    keys = [ast.literal_eval(key) for key in record.keys if key is not None]
    return dict(zip(keys, map(ast.unparse, record.values), strict=True))


def fields(path: Path, name: str) -> list[tuple[str, bool]]:
    """A dataclass's fields in order, each with whether it has a default."""
    return [
        (node.target.id, node.value is not None)
        for node in definition(path, name).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    ]
