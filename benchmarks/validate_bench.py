"""Throughput and peak memory of `runner validate` on a large dataset, against a naive
one-pass validator measured in the same run.

The benchmark builds a throwaway adapters repository in a temporary directory: adapter
`bench-v1` (the specs of ainative-v2, renamed) and a generated chat dataset of N train and
N/20 eval records (~2 KB each, so ~200 MB at the default N=100_000), streamed to disk.
Records are built from the real ainative v2 records: prompts recombine their sentences with
new context and numbers; answers keep a definition that handles errors and a test of a real
answer, with the imports they use and identifiers and numbers varied. So no two records
share a prompt or a code block, and the answers keep the traits the manifest sets minimum
shares for (tests, type hints, error handling) at the real data's rates. Noise is planted
at ~0.1% a kind: lines that are not JSON, AI-attribution lines, Python that does not parse,
leaked tokens and repeated prompts (duplicates in train, leakage in eval).

Measuring: each command runs alone under a small probe interpreter (PROBE) that spawns it,
reaps it with `os.wait4` and reports its wall time and ru_maxrss, the exact peak RSS of its
largest process. Meanwhile this process samples the PSS of the whole process tree every
100 ms (Linux), which counts each worker process, and shared pages once. Wall time
includes the interpreter's start-up and imports on both sides; the data files are in the
page cache for both (they were just written and locked).

Targets: runner throughput >= 2.0x the baseline's, runner peak memory < 1024 MB.

    python benchmarks/validate_bench.py [--examples N] [--seed S] [--keep]
    python benchmarks/validate_bench.py --baseline-only FILE...   # the baseline alone
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import os
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import tokenize
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ADAPTER = ROOT / "adapters" / "ainative-v2"
SOURCE_DATA = [ROOT / "datasets" / "ainative" / "v2" / f"{s}.jsonl" for s in ("train", "eval")]
COPIED_SPECS = ("adapter.yaml", "qlora.yaml", "eval.yaml")
ADAPTER = "adapters/bench-v1"
DATA_DIR = "datasets/bench/v1"

DEFAULT_EXAMPLES = 100_000
NOISE_RATE = 0.001
TARGET_RATIO = 2.0
TARGET_PEAK_MB = 1024
SAMPLE_EVERY_S = 0.1
RUNNER_CLI = "from runner.cli import main; main()"

# Spawns argv[2:], reaps it with os.wait4 and writes "wall_s ru_maxrss exit_code" to argv[1].
# wait4's rusage is that child's own, but on Linux a child's ru_maxrss also counts the memory
# of the process that spawned it (the mm it had before exec), so the spawner must be small:
# this fresh interpreter (-I -S, no imports beyond os/sys/time) is, the benchmark is not.
PROBE = """
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as result:
    result.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""

NUMBER_MARK = "\x01"
NAME_MARK = "\x00"
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
FENCE = re.compile(r"(```.*?```)", re.DOTALL)
SENTENCE_END = re.compile(r"(?<=[.?!:])\s+")
PROSE_NUMBER = re.compile(r"(?<![\w.\-])(?:[2-9]|[1-9][0-9]+)(?![\w.])")
DEF_LINE = re.compile(r"^([ \t]*(?:async def|def|class) [^\n]*):$", re.MULTILINE)
DECIMAL_INT = re.compile(r"[1-9][0-9_]*")

# The naive baseline's forbidden terms: AI attribution and secret-looking strings.
FORBIDDEN_TERMS = (
    r"generated with claude",
    r"co-authored-by: claude",
    r"noreply@anthropic\.com",
    r"claude\.com/claude-code",
    r"as an ai language model",
    r"as an ai assistant",
    r"i am an ai\b",
    r"i'm an ai\b",
    r"as of my knowledge cutoff",
    r"i don't have access to real-time",
    r"generated (?:by|with) chatgpt",
    r"written by chatgpt",
    r"generated (?:by|with) gpt-?4",
    r"generated (?:by|with) (?:github )?copilot",
    r"co-authored-by: (?:github )?copilot",
    r"hf_[A-Za-z0-9]{30,}",
    r"AKIA[0-9A-Z]{16}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"ghp_[A-Za-z0-9]{36}",
    r"github_pat_[A-Za-z0-9_]{22,}",
    r"sk-ant-[A-Za-z0-9_-]{20,}",
    r"sk-[A-Za-z0-9]{32,}",
    r"xox[baprs]-[A-Za-z0-9-]{10,}",
    r"AIza[0-9A-Za-z_-]{35}",
    r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
)

# Context a user adds to a request: each line has two values drawn from large ranges, so
# prompts that happen to share all their other sentences still differ.
CONTEXTS = (
    "This is for `{mod}` in {svc}, ticket {TEAM}-{n}.",
    "Peak load is {n} requests a minute, {m} on `{mod}`.",
    "The code is in `{svc}/{mod}.py`, about {n} lines.",
    "It runs as {k} pods in {region}, build {n}.{m}.",
    "{team} wants it before release {k}.{n}, see PR {m}.",
    "We have {n} tests and {m} of them touch `{mod}`.",
)
SERVICES = ("billing", "search", "ingest", "notify", "ledger", "catalog", "reports", "gateway")
TEAMS = ("platform", "growth", "data", "payments", "support", "infra", "mobile", "security")
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-south-1", "eu-central-1")
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
ATTRIBUTIONS = (
    "\n\n🤖 Generated with Claude Code (https://claude.com/claude-code)",
    "\n\nGenerated with Claude Code\n\nCo-Authored-By: Claude <noreply@anthropic.com>",
)


# --- templates taken from the real dataset -------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """Text with NAME_MARK after each identifier to rename, split where a number varies."""

    parts: tuple[str, ...]

    @property
    def renames(self) -> bool:
        return any(NAME_MARK in part for part in self.parts)

    def render(self, rng: random.Random, suffix: str = "") -> str:
        pieces = [self.parts[0]]
        for part in self.parts[1:]:
            pieces.append(str(rng.randint(2, 9999)))
            pieces.append(part)
        return "".join(pieces).replace(NAME_MARK, suffix)


@dataclass(frozen=True)
class Unit:
    """A top-level statement of a code block, with the traits the data checks look for."""

    snippet: Snippet
    names: frozenset[str]
    """The names it uses, to pick the imports it needs."""
    tests: bool
    errors: bool


@dataclass(frozen=True)
class Import:
    snippet: Snippet
    names: frozenset[str]
    """The names it binds; empty for `from __future__`, which is always kept."""
    gap: bool
    """Whether a blank line precedes it (import groups)."""


@dataclass(frozen=True)
class Block:
    imports: tuple[Import, ...]
    units: tuple[Unit, ...]

    def render(self, chosen: list[int], rng: random.Random, suffix: str) -> str:
        """The chosen units, after the imports they use."""
        units = [self.units[i] for i in sorted(chosen)]
        used = frozenset().union(*(unit.names for unit in units))
        lines: list[str] = []
        gap = False
        for imp in self.imports:
            gap = gap or imp.gap
            if not imp.names or imp.names & used:
                lines += ["\n"] if gap and lines else []
                lines.append(imp.snippet.render(rng, suffix))
                gap = False
        header = ["".join(lines).rstrip("\n")] if lines else []
        bodies = [unit.snippet.render(rng, suffix).rstrip("\n") for unit in units]
        return "\n\n\n".join(header + bodies) + "\n"


@dataclass(frozen=True)
class Chunk:
    """A sentence of a request, or a fenced block in it."""

    snippet: Snippet
    fence: bool


@dataclass(frozen=True)
class Template:
    category: str
    request: tuple[Chunk, ...]
    intro: str
    blocks: tuple[Block, ...]


def load_templates(paths: list[Path]) -> dict[str, list[Template]]:
    by_category: dict[str, list[Template]] = {}
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                template = template_of(json.loads(line))
                if template is not None:
                    by_category.setdefault(template.category, []).append(template)
    return by_category


def system_prompt_of(paths: list[Path]) -> str:
    with paths[0].open(encoding="utf-8") as handle:
        return json.loads(handle.readline())["messages"][0]["content"]


def template_of(record: dict) -> Template | None:
    answer = record["messages"][2]["content"]
    sources = PYTHON_BLOCK.findall(answer)
    if not sources:
        return None
    trees = [ast.parse(source) for source in sources]
    rename = {name for tree in trees for name in defined_names(tree)}
    return Template(
        category=record["category"],
        request=chunks_of(record["messages"][1]["content"]),
        intro=first_sentence(answer.split("```", 1)[0]),
        blocks=tuple(block_of(s, t, rename) for s, t in zip(sources, trees, strict=True)),
    )


def chunks_of(request: str) -> tuple[Chunk, ...]:
    chunks: list[Chunk] = []
    for piece in FENCE.split(request):
        if piece.startswith("```"):
            chunks.append(Chunk(prose_snippet(piece), fence=True))
        else:
            sentences = SENTENCE_END.split(piece.strip())
            chunks += [Chunk(prose_snippet(s), fence=False) for s in sentences if s]
    return tuple(chunks)


def prose_snippet(text: str) -> Snippet:
    return Snippet(tuple(PROSE_NUMBER.sub(NUMBER_MARK, text).split(NUMBER_MARK)))


def first_sentence(text: str) -> str:
    text = text.strip()
    end = re.search(r"[.:!?](?:\s|$)", text)
    return text[: end.end()].strip() if end else text


def defined_names(tree: ast.Module) -> Iterator[str]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                yield from (e.id for e in elements if isinstance(e, ast.Name))


def block_of(source: str, tree: ast.Module, rename: set[str]) -> Block:
    """The leading imports, then each top-level statement."""
    lines = source.splitlines(keepends=True)
    imports: list[Import] = []
    end = 0
    for node in tree.body:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            break
        text = "".join(lines[node.lineno - 1 : node.end_lineno])
        gap = bool(imports) and node.lineno > end + 1
        imports.append(Import(mark(text, rename), bound_names(node), gap))
        end = node.end_lineno or node.lineno
    units = [unit_of(node, lines, rename) for node in tree.body[len(imports) :]]
    return Block(tuple(imports), tuple(units))


def bound_names(node: ast.Import | ast.ImportFrom) -> frozenset[str]:
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return frozenset()
    return frozenset(alias.asname or alias.name.split(".")[0] for alias in node.names)


def unit_of(node: ast.stmt, lines: list[str], rename: set[str]) -> Unit:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    nodes = list(ast.walk(node))
    return Unit(
        snippet=mark("".join(lines[first - 1 : node.end_lineno]), rename),
        names=frozenset(n.id for n in nodes if isinstance(n, ast.Name)),
        tests=any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
            for n in nodes
        ),
        errors=any(isinstance(n, ast.Try | ast.Raise) for n in nodes),
    )


def mark(text: str, rename: set[str]) -> Snippet:
    """Mark the identifiers to rename and the integers to vary, found by tokenizing."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    edits: list[tuple[int, int, str]] = []
    previous = ""
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        start = offsets[token.start[0] - 1] + token.start[1]
        end = offsets[token.end[0] - 1] + token.end[1]
        if token.type == tokenize.NAME and token.string in rename and previous != ".":
            edits.append((start, end, token.string + NAME_MARK))
        elif token.type == tokenize.NUMBER and is_varied_int(token.string):
            edits.append((start, end, NUMBER_MARK))
        previous = token.string
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    return Snippet(tuple(text.split(NUMBER_MARK)))


def is_varied_int(literal: str) -> bool:
    return DECIMAL_INT.fullmatch(literal) is not None and int(literal.replace("_", "")) >= 2


def sentence_pools(templates: dict[str, list[Template]]) -> dict[str, list[Snippet]]:
    """Per category, the sentences of its requests that can stand alone in another one."""
    return {
        category: [
            chunk.snippet
            for template in group
            for chunk in template.request[1:]
            if not chunk.fence and not chunk.snippet.parts[-1].endswith(":")
        ]
        for category, group in templates.items()
    }


# --- record generation -----------------------------------------------------------------


@dataclass
class Noise:
    not_json: int = 0
    attribution: int = 0
    syntax_error: int = 0
    secret: int = 0
    repeated_prompt: int = 0

    def describe(self) -> str:
        counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in vars(self).items())
        return f"{counts} ({sum(vars(self).values())} in all)"


@dataclass(frozen=True)
class Draft:
    """A clean record before noise: the parts that vary from record to record."""

    user: str
    intro: str
    blocks: tuple[str, ...]


@dataclass
class RecordFactory:
    rng: random.Random
    system: str
    categories: list[str]
    templates: dict[str, list[Template]]
    pools: dict[str, list[Snippet]]
    noise: Noise = field(default_factory=Noise)
    records: int = 0
    chars: int = 0
    """Records and characters written so far."""
    recent_prompts: list[str] = field(default_factory=list)

    def line(self, index: int, record_id: str) -> str:
        category = self.rng.choice(self.categories)
        template = self.rng.choice(self.templates[category])
        draft = self.draft(template, "_" + syllables(index))
        # A line that is not JSON gets no other noise: every planted problem can be found.
        broken = self.rng.random() < NOISE_RATE
        record = {
            "id": record_id,
            "category": category,
            "messages": [
                {"role": "system", "content": self.system},
                {"role": "user", "content": draft.user if broken else self.prompt(draft.user)},
                {"role": "assistant", "content": self.answer(draft, plant=not broken)},
            ],
        }
        text = json.dumps(record, ensure_ascii=False)
        if broken:
            self.noise.not_json += 1
            text = self.broken_json(text, record)
        self.records += 1
        self.chars += len(text) + 1
        return text + "\n"

    def draft(self, template: Template, suffix: str) -> Draft:
        covered: set[str] = set()
        blocks = [self.code_block(block, suffix, covered) for block in template.blocks]
        return Draft(
            user=self.request(template),
            intro=template.intro,
            blocks=tuple(block for block in blocks if block),
        )

    def request(self, template: Template) -> str:
        """The request's first sentence, its fences and some of its other sentences, one
        from another request of the category and two of context, with numbers varied."""
        head, *rest = template.request
        chosen = [head, *(c for c in rest if c.fence or self.rng.random() < 0.3)]
        chosen.insert(1, Chunk(self.rng.choice(self.pools[template.category]), fence=False))
        paragraphs: list[list[str]] = [[]]
        for chunk in chosen:
            text = chunk.snippet.render(self.rng)
            if chunk.fence:
                paragraphs += [[text], []]
            else:
                paragraphs[-1].append(text)
        paragraphs[-1] += [self.context(line) for line in self.rng.sample(CONTEXTS, 2)]
        return "\n\n".join(" ".join(p) for p in paragraphs if p)

    def context(self, line: str) -> str:
        return line.format(
            svc=self.rng.choice(SERVICES),
            team=self.rng.choice(TEAMS),
            TEAM=self.rng.choice(TEAMS).upper(),
            mod="".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(5, 9))),
            region=self.rng.choice(REGIONS),
            n=self.rng.randint(100, 99_999),
            m=self.rng.randint(100, 99_999),
            k=self.rng.randint(4, 40),
        )

    def code_block(self, block: Block, suffix: str, covered: set[str]) -> str:
        """The fewest units, picked at random, that keep the answer's traits: a unit that
        handles errors and a test (unless an earlier block has one) and a renamed
        identifier; after the imports they use. Adds their traits to `covered`."""
        chosen: set[int] = set()
        for trait in ("errors", "tests", "renames"):
            if trait in covered or any(self.has(block.units[i], trait) for i in chosen):
                continue
            fits = [i for i, unit in enumerate(block.units) if self.has(unit, trait)]
            if fits:
                chosen.add(self.rng.choice(fits))
        covered.update(
            t for t in ("errors", "tests") for i in chosen if self.has(block.units[i], t)
        )
        return block.render(sorted(chosen), self.rng, suffix) if chosen else ""

    @staticmethod
    def has(unit: Unit, trait: str) -> bool:
        return unit.snippet.renames if trait == "renames" else getattr(unit, trait)

    def prompt(self, user: str) -> str:
        """Usually the draft's; at NOISE_RATE, a recent record's prompt again."""
        if self.recent_prompts and self.rng.random() < NOISE_RATE:
            self.noise.repeated_prompt += 1
            return self.rng.choice(self.recent_prompts)
        if len(self.recent_prompts) < 1000:
            self.recent_prompts.append(user)
        else:
            self.recent_prompts[self.rng.randrange(1000)] = user
        return user

    def answer(self, draft: Draft, plant: bool) -> str:
        """The intro and code blocks; if `plant`, each kind of noise at NOISE_RATE."""
        blocks = list(draft.blocks)
        if plant and blocks and self.rng.random() < NOISE_RATE:
            self.noise.syntax_error += 1
            blocks[0] = break_syntax(blocks[0])
        if plant and blocks and self.rng.random() < NOISE_RATE:
            self.noise.secret += 1
            blocks[0] = self.leak_token(blocks[0])
        text = "\n\n".join([draft.intro, *(f"```python\n{b}```" for b in blocks)])
        if plant and self.rng.random() < NOISE_RATE:
            self.noise.attribution += 1
            text += self.rng.choice(ATTRIBUTIONS)
        return text

    def leak_token(self, code: str) -> str:
        token = "hf_" + "".join(self.rng.choices(string.ascii_letters + string.digits, k=34))
        return f'HF_TOKEN = "{token}"  # TODO: move to the Space secrets\n\n{code}'

    def broken_json(self, text: str, record: dict) -> str:
        if self.rng.random() < 0.5:
            return text[: self.rng.randrange(20, len(text) - 20)]  # a write cut short
        return repr(record)  # a Python dict, single quotes


def syllables(number: int) -> str:
    """A pronounceable name for a number, without digits (a digit in an identifier can make
    an assignment look like a secret): 0 -> "ba", 70 -> "baba"."""
    name = ""
    while True:
        number, rest = divmod(number, len(SYLLABLES))
        name = SYLLABLES[rest] + name
        if number == 0:
            return name
        number -= 1


def break_syntax(code: str) -> str:
    """Drop the colon of the first one-line def/class; else leave a bracket open."""
    broken = DEF_LINE.sub(r"\1", code, count=1)
    try:
        ast.parse(broken)
    except SyntaxError:
        return broken
    return code + "result = (\n"


def write_split(path: Path, count: int, factory: RecordFactory, total: int) -> None:
    """Stream `count` records to `path`; a progress line every tenth of `total`."""
    step = max(1, total // 10)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for _ in range(count):
            index = factory.records + 1
            handle.write(factory.line(index, f"bench-v1-{index:06d}"))
            if index % step == 0 or index == total:
                print(f"  {index:,}/{total:,} records, {factory.chars / 2**20:.0f} MB", flush=True)


# --- the throwaway repository ----------------------------------------------------------


def copy_specs(repo: Path) -> None:
    target = repo / ADAPTER
    target.mkdir(parents=True)
    for name in COPIED_SPECS:
        text = (SOURCE_ADAPTER / name).read_text(encoding="utf-8")
        (target / name).write_text(rewrite_spec(text), encoding="utf-8")
    adapter = (target / "adapter.yaml").read_text(encoding="utf-8")
    if not re.search(r"^name: bench\n(?:.*\n)*version: 1$", adapter, re.MULTILINE):
        raise SystemExit(f"{SOURCE_ADAPTER}/adapter.yaml changed shape: cannot rename it")
    for directory in ("schemas", "policies"):
        shutil.copytree(ROOT / directory, repo / directory)


def rewrite_spec(text: str) -> str:
    text = re.sub(r"^name: ainative$", "name: bench", text, flags=re.MULTILINE)
    text = re.sub(r"^version: 2$", "version: 1", text, flags=re.MULTILINE)
    return drop_lineage_parent(text)


def drop_lineage_parent(text: str) -> str:
    kept: list[str] = []
    in_lineage = False
    for line in text.splitlines(keepends=True):
        if line and not line[0].isspace():
            in_lineage = line.rstrip() == "lineage:"
        elif in_lineage and line.lstrip().startswith("parent:"):
            continue
        kept.append(line)
    if kept and kept[-1].rstrip() == "lineage:":  # parent was its only key
        kept.pop()
    return "".join(kept)


def write_manifest(repo: Path) -> list[str]:
    """dataset.yaml from ainative-v2's: same categories, new name/version/paths, unlocked."""
    from ruamel.yaml import YAML  # not at module level: the baseline process stays lean

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    tree = yaml.load((SOURCE_ADAPTER / "dataset.yaml").read_text(encoding="utf-8"))
    tree["name"] = "bench"
    tree["version"] = "v1"
    tree["hub_repo"] = "ainative/bench-code-assistant-data"
    for split in ("train", "eval"):
        tree["files"][split] = {"path": f"{DATA_DIR}/{split}.jsonl"}
    with (repo / ADAPTER / "dataset.yaml").open("w", encoding="utf-8") as handle:
        yaml.dump(tree, handle)
    return list(tree["categories"])


def generate_data(repo: Path, categories: list[str], examples: int, seed: int) -> Noise:
    templates = load_templates(SOURCE_DATA)
    missing = [c for c in categories if c not in templates]
    if missing:
        raise SystemExit(f"no ainative v2 records to model categories {missing} on")
    factory = RecordFactory(
        rng=random.Random(seed),
        system=system_prompt_of(SOURCE_DATA),
        categories=categories,
        templates=templates,
        pools=sentence_pools(templates),
    )
    data = repo / DATA_DIR
    data.mkdir(parents=True)
    total = examples + eval_count(examples)
    write_split(data / "train.jsonl", examples, factory, total)
    write_split(data / "eval.jsonl", eval_count(examples), factory, total)
    return factory.noise


def eval_count(examples: int) -> int:
    return max(1, examples // 20)


def lock(repo: Path) -> None:
    command = [sys.executable, "-c", RUNNER_CLI, "dataset", "lock", ADAPTER, "--repo", str(repo)]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"runner dataset lock failed ({done.returncode}):\n{done.stderr}")


def data_files(repo: Path) -> list[Path]:
    return [repo / DATA_DIR / f"{split}.jsonl" for split in ("train", "eval")]


# --- measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    label: str
    wall_s: float
    peak_mb: float
    """ru_maxrss: the exact peak RSS of the largest process."""
    tree_mb: float | None
    """The largest sampled sum of PSS over the process tree; None where /proc is missing."""
    returncode: int
    stdout: Path
    stderr: Path

    @property
    def memory_mb(self) -> float:
        return max(self.peak_mb, self.tree_mb or 0.0)

    def failure(self, why: str) -> SystemExit:
        tail = self.stderr.read_text(encoding="utf-8", errors="replace")[-3000:]
        return SystemExit(f"{self.label}: {why} (exit code {self.returncode})\n{tail}")


def measure(label: str, command: list[str], cwd: Path) -> Measurement:
    """Run `command` under PROBE in a fresh process: see PROBE for why."""
    stdout, stderr, result = (cwd / f"{label}.{ext}" for ext in ("out", "err", "rusage"))
    probe = [sys.executable, "-I", "-S", "-c", PROBE, str(result), *command]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(probe, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        try:
            tree_kb = sample_tree(process)
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)  # the probe and the measured command
            process.wait()
            raise
    if process.returncode != 0:
        why = stderr.read_text(encoding="utf-8", errors="replace")
        raise SystemExit(f"{label}: the probe failed ({process.returncode}):\n{why}")
    wall, maxrss, returncode = result.read_text().split()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return Measurement(
        label=label,
        wall_s=float(wall),
        peak_mb=int(maxrss) * scale / 2**20,
        tree_mb=tree_kb / 1024 if tree_kb is not None else None,
        returncode=int(returncode),
        stdout=stdout,
        stderr=stderr,
    )


def sample_tree(process: subprocess.Popen[bytes]) -> int | None:
    """Until `process` ends: the largest sum of PSS (KiB) of its descendants, sampled."""
    if not Path("/proc/self/smaps_rollup").is_file():
        process.wait()
        return None
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(pss_kb(pid) for pid in descendants(process.pid)))
        time.sleep(SAMPLE_EVERY_S)
    return peak


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def pss_kb(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # ended meanwhile
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
    return int(match[1]) if match else 0


def runner_findings(result: Measurement) -> Counter[str]:
    """Findings per rule in the `--format json` report; exit codes 0, 1, 2 are fine."""
    if result.returncode not in (0, 1, 2):
        raise result.failure("unexpected exit code")
    try:
        findings = json.loads(result.stdout.read_text(encoding="utf-8"))["findings"]
        return Counter(str(finding["rule_id"]) for finding in findings)
    except (ValueError, KeyError, TypeError):
        raise result.failure("no JSON report with findings on stdout") from None


def baseline_problems(result: Measurement) -> int:
    if result.returncode != 0:
        raise result.failure("baseline failed")
    return json.loads(result.stdout.read_text(encoding="utf-8"))["problems"]


# --- the naive baseline ----------------------------------------------------------------


def baseline_validate(paths: list[Path]) -> dict[str, int]:
    """One pass, no cleverness: parse each line, search each message for each forbidden
    term, parse each Python block of each answer."""
    terms = [re.compile(term, re.IGNORECASE) for term in FORBIDDEN_TERMS]
    examples = problems = 0
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    examples += 1
                    problems += baseline_record(line, terms)
    return {"examples": examples, "problems": problems}


def baseline_record(line: str, terms: list[re.Pattern[str]]) -> int:
    try:
        messages = json.loads(line)["messages"]
        contents = [(m["role"], m["content"]) for m in messages]
    except (ValueError, KeyError, TypeError):
        return 1
    problems = 0
    for role, content in contents:
        problems += sum(1 for term in terms if term.search(content))
        if role == "assistant":
            problems += sum(1 for code in PYTHON_BLOCK.findall(content) if not parses(code))
    return problems


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


# --- report ----------------------------------------------------------------------------


def report(
    examples: int, size_mb: float, ours: Measurement, rules: Counter[str], base: Measurement
) -> None:
    problems = baseline_problems(base)
    rate_ours, rate_base = examples / ours.wall_s, examples / base.wall_s
    ratio = rate_ours / rate_base
    print(
        f"{'':16} {'examples':>9} {'MB':>7} {'wall s':>8} {'examples/s':>11}"
        f" {'peak MB':>8} {'tree MB':>8} {'findings':>9}"
    )
    rows = (
        ("runner validate", ours, rate_ours, rules.total()),
        ("baseline", base, rate_base, problems),
    )
    for label, result, rate, found in rows:
        tree = f"{result.tree_mb:8.1f}" if result.tree_mb is not None else f"{'n/a':>8}"
        print(
            f"{label:16} {examples:9,} {size_mb:7.1f} {result.wall_s:8.2f} {rate:11,.0f}"
            f" {result.peak_mb:8.1f} {tree} {found:9,}"
        )
    print("peak MB: ru_maxrss of the largest process; tree MB: sampled PSS sum of all of them")
    detail = ", ".join(f"{rule} {n:,}" for rule, n in rules.most_common())
    print(f"runner exit code {ours.returncode}; findings by rule: {detail or 'none'}")
    memory = ours.memory_mb
    print(
        f"throughput ratio runner/baseline: {ratio:.2f}x ({met(ratio >= TARGET_RATIO)});"
        f" runner memory {memory:.0f} MB ({met(memory < TARGET_PEAK_MB)}); {os.cpu_count()} CPUs"
    )
    print(f"target: >= {TARGET_RATIO}x baseline throughput, peak < {TARGET_PEAK_MB} MB")


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="train records")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    parser.add_argument(
        "--baseline-only", nargs="+", type=Path, metavar="FILE", help="run only the baseline"
    )
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    return args


def build_repo(repo: Path, examples: int, seed: int) -> None:
    copy_specs(repo)
    categories = write_manifest(repo)
    print(f"generating {examples:,} train + {eval_count(examples):,} eval records", flush=True)
    start = time.perf_counter()
    noise = generate_data(repo, categories, examples, seed)
    size_mb = sum(p.stat().st_size for p in data_files(repo)) / 2**20
    print(f"generated {size_mb:.1f} MB in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"planted noise: {noise.describe()}", flush=True)
    lock(repo)
    print(f"locked {ADAPTER}/dataset.yaml", flush=True)


def run_benchmark(repo: Path, examples: int) -> None:
    files = data_files(repo)
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    validate = [sys.executable, "-c", RUNNER_CLI, "validate", "--repo", str(repo), ADAPTER]
    print("measuring runner validate", flush=True)
    ours = measure("runner", [*validate, "--format", "json"], repo)
    rules = runner_findings(ours)
    print("measuring baseline", flush=True)
    baseline = [sys.executable, str(Path(__file__).resolve()), "--baseline-only", *map(str, files)]
    base = measure("baseline", baseline, repo)
    report(examples + eval_count(examples), size_mb, ours, rules, base)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.baseline_only:
        print(json.dumps(baseline_validate(args.baseline_only)))
        return
    if importlib.util.find_spec("runner") is None:
        raise SystemExit("runner is not importable: run with the venv's python (make bench)")
    repo = Path(tempfile.mkdtemp(prefix="validate-bench-"))
    try:
        build_repo(repo, args.examples, args.seed)
        run_benchmark(repo, args.examples)
    finally:
        if args.keep:
            print(f"kept {repo}")
        else:
            shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
