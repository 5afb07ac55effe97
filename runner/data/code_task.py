"""code_assistant records: every Python block parses, and the traits the manifest sets
minimum shares for (tests, type hints, error handling)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from runner.findings import Finding, Severity

_PYTHON_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CodeTraits:
    blocks: int
    tests: bool
    type_hints: bool
    error_handling: bool


def python_blocks(answer: str) -> list[str]:
    return _PYTHON_BLOCK.findall(answer)


def check_code_answer(answer: str, *, path: str, line: int) -> tuple[list[Finding], CodeTraits]:
    findings: list[Finding] = []
    trees: list[ast.Module] = []
    blocks = python_blocks(answer)
    for number, block in enumerate(blocks, start=1):
        try:
            trees.append(ast.parse(block))
        except SyntaxError as err:
            findings.append(
                Finding(
                    "data.python-syntax",
                    Severity.ERROR,
                    path,
                    line,
                    f"python block {number} of the assistant answer does not parse: "
                    f"{err.msg} (block line {err.lineno})",
                    "fix the code, or mark a non-Python block with its own language",
                )
            )
    return findings, _traits(len(blocks), trees)


def _traits(blocks: int, trees: list[ast.Module]) -> CodeTraits:
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
    tests = error_handling = False
    for node in _statements(trees):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.append(node)
            tests = tests or node.name.startswith("test_")
        elif isinstance(node, ast.Try | ast.TryStar | ast.Raise):
            error_handling = True
    hinted = bool(functions) and all(_fully_annotated(f) for f in functions)
    return CodeTraits(blocks, tests, hinted, error_handling)


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(trees: list[ast.Module]) -> Iterator[ast.AST]:
    """Every statement, nested ones included. Functions, try and raise are statements, so
    the walk skips expressions: ast.walk visits about ten times as many nodes."""
    stack: list[ast.AST] = list(trees)
    while stack:
        node = stack.pop()
        yield node
        for name in _BODIES:
            children = getattr(node, name, None)
            if children:
                stack.extend(children)


def _fully_annotated(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    arguments = function.args
    params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    extras = [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return function.returns is not None and all(p.annotation is not None for p in params + extras)
