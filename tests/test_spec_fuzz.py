"""Whatever lands in a spec file (text, bytes, or YAML of the right shape with wrong
contents), loading gives findings or a valid spec, never a traceback, and every finding
points at a line of that file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.specs import SPEC_FILES, load_spec_file
from runner.specs.yamlio import dump_yaml

SPEC_FILE_STRATEGY = st.sampled_from(SPEC_FILES)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(content: bytes, spec_file):
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / spec_file.filename
        file.write_bytes(content)
        return load_spec_file(file, spec_file, spec_file.filename)


def assert_reported(content: bytes, spec_file) -> None:
    _, spec, findings = load(content, spec_file)
    errors = [f for f in findings if f.severity == "error"]
    assert (spec is None) == bool(errors)
    line_count = content.count(b"\n") + 1
    for finding in findings:
        assert finding.path == spec_file.filename
        assert finding.message
        assert finding.line is None or 1 <= finding.line <= line_count + 1


@FUZZ
@given(text=st.text(), spec_file=SPEC_FILE_STRATEGY)
def test_arbitrary_text_gives_findings_not_a_traceback(text, spec_file):
    assert_reported(text.encode("utf-8", "surrogatepass"), spec_file)


@FUZZ
@given(content=st.binary(), spec_file=SPEC_FILE_STRATEGY)
def test_arbitrary_bytes_give_findings_not_a_traceback(content, spec_file):
    assert_reported(content, spec_file)


YAML_SNIPPETS = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "- ",
        ": ",
        "&a ",
        "*a",
        "!!binary ",
        "? ",
        "|\n",
        "'",
        '"',
        "\t",
        "#",
        "\n  ",
        "%YAML 1.2\n",
        "---\n",
        "...\n",
        "<<: *a",
        "!tag ",
        "0x1F",
        "2024-01-01",
        "~",
        "\ufeff",
    ]
)


@FUZZ
@given(
    pieces=st.lists(st.one_of(YAML_SNIPPETS, st.text(max_size=8)), max_size=30),
    spec_file=SPEC_FILE_STRATEGY,
)
def test_yaml_shaped_garbage_gives_findings_not_a_traceback(pieces, spec_file):
    assert_reported("".join(pieces).encode("utf-8", "surrogatepass"), spec_file)


def _field_names() -> list[str]:
    names: set[str] = set()
    for spec_file in SPEC_FILES:
        stack = [spec_file.model]
        while stack:
            model = stack.pop()
            for name, field in model.model_fields.items():
                names.add(name)
                annotation = field.annotation
                for inner in (*getattr(annotation, "__args__", ()), annotation):
                    if isinstance(inner, type) and hasattr(inner, "model_fields"):
                        stack.append(inner)
    return sorted(names)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["qlora", "nf4", "q_proj", "citation_grounded_chat"]),
)
KEYS = st.one_of(st.sampled_from(_field_names()), st.text(min_size=1, max_size=8))
DOCUMENTS = st.dictionaries(
    KEYS,
    st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
        max_leaves=12,
    ),
    max_size=10,
)


@FUZZ
@given(document=DOCUMENTS, spec_file=SPEC_FILE_STRATEGY)
def test_well_formed_yaml_with_wrong_contents_points_at_lines(document, spec_file):
    assert_reported(dump_yaml(document).encode(), spec_file)
