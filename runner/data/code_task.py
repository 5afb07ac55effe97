"""code_assistant records: every Python block parses, and the traits the manifest sets
minimum shares for (tests, type hints, error handling)."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt

from runner.findings import Finding, Severity

MAX_PYTHON_CHARS = 100_000
"""Python of one answer (all its blocks) beyond this is not parsed: far more than any answer a
small model is trained on or writes, and the syntax tree of a megabyte of code takes hundreds
of megabytes."""

PYTHON_LANGUAGES = frozenset({"python", "python3", "py", "py3"})
"""Fence labels (first word of the info string, any case) that mark a block as Python. An
unlabelled fence is not Python: its language is unknown (shell sessions, output and JSON are
usually unlabelled), and "it parses" is no test, since `ls` or `make test` parse as Python."""


@dataclass(frozen=True, slots=True)
class CodeTraits:
    blocks: int
    tests: bool
    type_hints: bool
    error_handling: bool


_LINE_BREAK = re.compile(r"\r\n?|\n")
_UNCLOSED = "no closing fence, so the answer was cut off in it"


@dataclass(frozen=True, slots=True)
class PythonBlock:
    source: str
    closed: bool
    """False for a block that runs to the end of the answer (or of its list item) without a
    closing fence: a truncated answer, whose last block counts as not parsing."""


def python_blocks(answer: str) -> list[PythonBlock]:
    """The Python fenced blocks of `answer`, read by CommonMark's rules (markdown-it-py):
    ``` or ~~~ fences, indented up to 3 spaces or within a list item or quote, labelled with
    a word of PYTHON_LANGUAGES. A block closes only at a line that is nothing but a fence of
    its character, at least as long as the opening one; so a fence inside a string literal,
    on a line with other text, does not end it (a line of only ``` inside a triple-quoted
    string does: CommonMark has no notion of Python strings)."""
    if "```" not in answer and "~~~" not in answer:
        return []  # most text has no fence: skip the parser
    lines = _LINE_BREAK.split(answer)  # CommonMark's line breaks, which token.map counts
    return [
        PythonBlock(token.content, _closed(token.map, token.markup, lines))
        for token in _markdown().parse(answer)
        if token.type == "fence" and token.map and _is_python(token.info)
    ]


@cache
def _markdown() -> MarkdownIt:
    # Blocks are all we read, so inline parsing (emphasis, links) is left out.
    parser = MarkdownIt("commonmark")
    parser.core.ruler.disable(["inline", "text_join"])
    return parser


def _is_python(info: str) -> bool:
    words = info.split()
    return bool(words) and words[0].lower() in PYTHON_LANGUAGES


def _closed(span: list[int], markup: str, lines: list[str]) -> bool:
    last = span[1] - 1
    if last <= span[0] or last >= len(lines):
        return False
    # A closing fence sits after its container's markers: list indentation, `>` of a quote.
    fence = lines[last].strip(" \t>")
    return len(fence) >= len(markup) and set(fence) == {markup[0]}


def check_code_answer(answer: str, *, path: str, line: int) -> tuple[list[Finding], CodeTraits]:
    def finding(message: str) -> Finding:
        hint = "fix the code, or mark a non-Python block with its own language"
        return Finding("data.python-syntax", Severity.ERROR, path, line, message, hint)

    blocks = python_blocks(answer)
    size = sum(len(block.source) for block in blocks)
    if size > MAX_PYTHON_CHARS:
        message = (
            f"the python blocks of the assistant answer hold {size} characters; "
            f"over {MAX_PYTHON_CHARS} are not parsed"
        )
        return [finding(message)], _traits(len(blocks), [])
    findings: list[Finding] = []
    trees: list[ast.Module] = []
    for number, block in enumerate(blocks, start=1):
        tree, problem = parse_python(block.source) if block.closed else (None, _UNCLOSED)
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
    error_handling = False
    for node in _statements(trees):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.append(node)
        elif isinstance(node, ast.Try | ast.TryStar | ast.Raise):
            error_handling = True
    tests = any(_collects_a_test(node) for tree in trees for node in tree.body)
    hinted = bool(functions) and all(_fully_annotated(f) for f in functions)
    return CodeTraits(blocks, tests, hinted, error_handling)


def _collects_a_test(node: ast.stmt) -> bool:
    """Whether pytest, with its default settings, collects a test from this module-level
    statement: a function named test*, or a method test* of a class Test* without an
    __init__ (pytest skips such a class). A test_* function nested in another is not run."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name.startswith("test")
    if not (isinstance(node, ast.ClassDef) and node.name.startswith("Test")):
        return False
    methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
    names = {method.name for method in methods}
    return "__init__" not in names and any(name.startswith("test") for name in names)


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
    """Every parameter (but self or cls) and the return annotated. An `__init__` with an
    annotated parameter needs no `-> None`: PEP 484 lets it be left out there, and type
    checkers treat such an `__init__` as typed; one with no parameter to annotate does."""
    arguments = function.args
    params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    params += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    returns = function.returns is not None or (function.name == "__init__" and bool(params))
    return returns and all(p.annotation is not None for p in params)
