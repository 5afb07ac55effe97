"""What `runner --help` and each verb's `--help` tell a new user: every verb shows one example,
descriptions read as whole sentences (no line broken where the source wrapped it), a choice
is listed once (in its option's metavar, not again in prose), and the root help says what
HF_ENDPOINT and HF_TOKEN are."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from runner.cli import app
from tests.conftest import RunCli

WIDE = "1000"  # wider than any help line: every line break left comes from the source text
SENTENCE_END = re.compile(r"[.:!?][)\"'`]*$")
BOX = "│╭╰─╮╯"


def walk(group: TyperGroup, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every command under `group` (typer's click command tree) by its path, groups included."""
    found: dict[tuple[str, ...], Any] = {}
    for name, command in sorted(group.commands.items()):
        found[(*path, name)] = command
        if isinstance(command, TyperGroup):
            found |= walk(command, (*path, name))
    return found


ROOT = typer.main.get_command(app)
assert isinstance(ROOT, TyperGroup)
TREE = walk(ROOT)
VERBS = [path for path, command in TREE.items() if not isinstance(command, TyperGroup)]
GROUPS = [(), *(path for path, command in TREE.items() if isinstance(command, TyperGroup))]


def shown(path: tuple[str, ...]) -> str:
    return " ".join(("runner", *path))


@pytest.fixture
def wide_help(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", WIDE)

    def help_of(path: tuple[str, ...]) -> str:
        code, out, err = run_cli(*path, "--help")
        assert code == 0, err
        return out

    return help_of


def description(help_text: str) -> list[str]:
    """The lines between the usage line and the first panel: the verb's own words."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╭")), len(lines))
    return [line.strip() for line in lines[start:end] if line.strip()]


def panel(help_text: str, title: str) -> list[str]:
    """The rows of a help panel, frame stripped."""
    rows, inside = [], False
    for line in help_text.splitlines():
        stripped = line.strip()
        if stripped.startswith(f"╭─ {title} "):
            inside = True
        elif inside and stripped.startswith("╰"):
            break
        elif inside:
            rows.append(stripped.strip(BOX).strip())
    return rows


@pytest.mark.parametrize("path", VERBS, ids=shown)
def test_every_verb_shows_an_example_and_whole_sentences(wide_help, path) -> None:
    lines = description(wide_help(path))

    examples = [line for line in lines if line.startswith("Example: runner ")]
    assert len(examples) == 1, f"`{shown(path)} --help` shows no one example: {lines}"
    assert examples[0].startswith(f"Example: {shown(path)}")
    broken = [line for line in lines if line not in examples and not SENTENCE_END.search(line)]
    assert broken == [], f"`{shown(path)} --help` breaks a sentence after: {broken}"


def test_command_lists_give_each_verb_one_whole_line(wide_help) -> None:
    cut = []
    for path in GROUPS:
        rows = panel(wide_help(path), "Commands")
        group = TREE[path] if path else ROOT
        assert sorted(row.split()[0] for row in rows) == sorted(group.commands), rows
        cut += [f"{shown(path)}: {row}" for row in rows if not SENTENCE_END.search(row)]
    assert cut == [], "these summaries are cut short"


def test_choices_are_listed_once_in_the_metavar_not_again_in_prose(wide_help) -> None:
    repeated = []
    for path in VERBS:
        for row in panel(wide_help(path), "Options"):
            choices = re.search(r"<([\w-]+(?:\|[\w-]+)+)>", row)
            if choices is None:
                continue
            prose = set(re.findall(r"[\w-]+", row[choices.end() :].split("[default:")[0]))
            if len(prose & set(choices[1].split("|"))) > 1:
                repeated.append(f"{shown(path)}: {row}")
    assert repeated == []
    kind = next(row for row in panel(wide_help(("ci", "comment")), "Options") if "--kind" in row)
    assert "<validation|plan|eval|promotion>" in kind


def test_plan_offers_only_the_formats_it_can_print(wide_help, run_cli: RunCli) -> None:
    options = panel(wide_help(("plan",)), "Options")
    assert any("<text|markdown|json>" in row for row in options), options
    validate = panel(wide_help(("validate",)), "Options")
    assert any("<text|markdown|json|github>" in row for row in validate), validate

    code, _, err = run_cli("plan", "adapters/kwanzaa-mini-v1", "--format", "github")

    assert code == 2
    assert "'github' is not one of" in err


def test_root_help_explains_hf_endpoint_and_hf_token(wide_help) -> None:
    text = " ".join(wide_help(()).split())

    assert "HF_ENDPOINT" in text
    assert "HF_TOKEN" in text
    assert "without HF_ENDPOINT" in text.replace("Without", "without")
    assert "https://huggingface.co" in text
    assert "runner hub serve" in text


def test_a_long_line_written_to_a_log_stays_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """In CI (no terminal) rich would break lines at 80 columns mid-sentence, as in
    `vs floor \\n0.850`; a log keeps each line whole and leaves wrapping to whoever reads it."""
    from rich.text import Text

    from runner.cli.shared import err, out

    line = " json_valid_rate: 0.921 (35 of 38 items; 95% CI 0.792-0.973) vs floor 0.850"
    out.print(Text.assemble("  ", ("pass", "green"), line))
    err.print(Text("warning: " + "the interval's lower bound is under the floor " * 3))
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1, captured.out
    assert len(captured.err.splitlines()) == 1, captured.err
