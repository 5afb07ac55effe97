"""code_assistant records: every Python block parses, and the traits the manifest sets
minimum shares for (tests, type hints, error handling)."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from runner.findings import Finding, Severity

MAX_PYTHON_CHARS = 100_000
"""Python of one answer (all its blocks) beyond this is not parsed: far more than any answer a
small model is trained on or writes, and the syntax tree of a megabyte of code takes hundreds
of megabytes."""

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
    def finding(message: str) -> Finding:
        hint = "fix the code, or mark a non-Python block with its own language"
        return Finding("data.python-syntax", Severity.ERROR, path, line, message, hint)

    blocks = python_blocks(answer)
    size = sum(map(len, blocks))
    if size > MAX_PYTHON_CHARS:
        message = (
            f"the python blocks of the assistant answer hold {size} characters; "
            f"over {MAX_PYTHON_CHARS} are not parsed"
        )
        return [finding(message)], _traits(len(blocks), [])
    findings: list[Finding] = []
    trees: list[ast.Module] = []
    for number, block in enumerate(blocks, start=1):
        tree, problem = parse_python(block)
        if tree is None:
            message = f"python block {number} of the assistant answer does not parse: {problem}"
            findings.append(finding(message))
        else:
            trees.append(tree)
    return findings, _traits(len(blocks), trees)


def parse_python(source: str) -> tuple[ast.Module | None, str]:
    """The module `source` parses to, or None and why not. Any text gets an answer: answers
    come from people and from models, and neither is bound to write Python."""
    try:
        with warnings.catch_warnings():  # an odd escape in the answer is not our warning
            warnings.simplefilter("ignore")
            return ast.parse(source), ""
    except SyntaxError as err:
        return None, err.msg + (f" (block line {err.lineno})" if err.lineno else "")
    except (RecursionError, MemoryError):
        # CPython's parser gives up on deeply nested code (`- - - ... 1`, `((((...`) with one
        # of these rather than a SyntaxError; the block is then code no one can run either.
        return None, "nested too deeply for Python's parser"
    except UnicodeEncodeError as err:
        return None, f"a lone surrogate (U+{ord(err.object[err.start]):04X}) is not Python text"
    except ValueError as err:  # a NUL byte, on the Python versions that raise this for it
        return None, str(err)


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
