"""Turn pydantic validation errors into findings a person can act on: the place in the file,
the key, what was wrong and what is allowed."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from runner.findings import Finding, quote
from runner.specs.yamlio import YamlDoc

_EXPECTED_TYPE = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "none_required": "null",
}

_BOUND_WORDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def validation_findings(
    error: ValidationError, doc: YamlDoc, model: type[BaseModel], schema_hint: str
) -> list[Finding]:
    return [_finding(detail, doc, model, schema_hint) for detail in error.errors()]


def _finding(
    detail: ErrorDetails, doc: YamlDoc, model: type[BaseModel], schema_hint: str
) -> Finding:
    kind = detail["type"]
    loc: list[str | int] = list(detail["loc"])
    ctx = detail.get("ctx") or {}
    if ctx.get("at"):
        loc.extend(str(ctx["at"]).split("."))
    # pydantic marks a bad dict key with a trailing "[key]"; a user's key may be spelled so too
    at_key = kind != "extra_forbidden" and len(loc) >= 2 and loc[-1] == "[key]"
    if at_key:
        loc.pop()
    key = dotted(loc)
    got = describe(detail["input"])

    if kind == "extra_forbidden":
        allowed = field_names_at(model, loc[:-1])
        guesses = suggested_keys(model, loc[:-1], str(loc[-1]))
        suggestion = f"; did you mean {' or '.join(guesses)}?" if guesses else ""
        message = f"{key}: unknown key{suggestion}"
        hint = f"allowed keys here: {', '.join(allowed)}" if allowed else ""
        return doc.finding(loc, "spec.unknown-key", message, hint=hint, at_key=True)
    if kind == "missing":
        return doc.finding(
            loc,
            "spec.missing-key",
            f"{key}: missing required key",
            hint=f"add `{loc[-1]}:` ({schema_hint} lists every key)",
        )
    if kind in _EXPECTED_TYPE:
        message = f"{key}: expected {_EXPECTED_TYPE[kind]}, got {got}"
        return doc.finding(loc, "spec.type", message, at_key=at_key)
    if kind in ("literal_error", "enum"):
        allowed = literal_values_at(model, loc) or [str(ctx.get("expected", ""))]
        message = f"{key}: expected one of {', '.join(allowed)}; got {got}"
        return doc.finding(loc, "spec.value", message, at_key=at_key)
    if kind in _BOUND_WORDS:
        ctx_key, words = _BOUND_WORDS[kind]
        message = f"{key}: must be {words} {ctx.get(ctx_key)}, got {got}"
        # The field's own documentation says why the bound is there.
        hint = _one_line(field_doc_at(model, loc))
        return doc.finding(loc, "spec.value", message, hint=hint, at_key=at_key)
    if kind == "too_short":
        what = "must not be empty" if isinstance(detail["input"], str) else "needs at least"
        size = "" if isinstance(detail["input"], str) else f" {ctx.get('min_length')} item(s)"
        return doc.finding(loc, "spec.value", f"{key}: {what}{size}", at_key=at_key)
    # Our own rules (spec_error) carry a finished message; the kind names the rule.
    rule_id = "spec." + kind.replace("_", "-")
    return doc.finding(loc, rule_id, f"{key}: {detail['msg']}", at_key=at_key)


def suggested_keys(model: type[BaseModel], where: Sequence[str | int], key: str) -> list[str]:
    """What an unknown `key` at `where` most likely meant, tied guesses together: a key here
    it abbreviates (`lr`), one it shares its words with (`epochs`, `lora_r`), the same key at
    another level (`hardware` for `training.hardware`), or a near spelling (`lerning_rate`)."""
    here = field_names_at(model, where)
    for guesses in (_initials_of(key, here), _sharing_words(key, here)):
        if guesses:
            return guesses
    return _elsewhere(model, key) or difflib.get_close_matches(key, here, 1, 0.6)


def _initials_of(key: str, names: list[str]) -> list[str]:
    if "_" in key or len(key) < 2:
        return []
    return [n for n in names if "_" in n and "".join(w[:1] for w in n.split("_")) == key]


def _sharing_words(key: str, names: list[str]) -> list[str]:
    """Names whose words all appear in the key's, or the other way round; fewest left over."""
    words = set(key.lower().split("_"))
    extra = {
        name: len(words ^ set(name.split("_")))
        for name in names
        if words <= set(name.split("_")) or set(name.split("_")) <= words
    }
    fewest = min(extra.values(), default=0)
    return [name for name, left in extra.items() if left == fewest][:2]


def _elsewhere(model: type[BaseModel], key: str) -> list[str]:
    """Dotted places in the model where `key` is a field (a mapping of user-named entries
    shows as `<name>`, a list as `[]`)."""
    found: list[str] = []
    queue: list[tuple[Any, str, int]] = [(model, "", 0)]
    while queue:
        annotation, prefix, depth = queue.pop(0)
        target = _unwrap(annotation)
        origin = get_origin(target)
        if origin is list and depth < _MAX_DEPTH:
            queue.append((get_args(target)[0], f"{prefix}[]", depth + 1))
        elif origin is dict and depth < _MAX_DEPTH:
            queue.append((get_args(target)[1], f"{prefix}.<name>", depth + 1))
        elif isinstance(target, type) and issubclass(target, BaseModel) and depth < _MAX_DEPTH:
            for name, field in target.model_fields.items():
                path = f"{prefix}.{name}".lstrip(".")
                if name == key:
                    found.append(path)
                queue.append((field.annotation, path, depth + 1))
    return found[:2]


_MAX_DEPTH = 8  # far deeper than any spec; a guard, not a limit anyone meets


def dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def describe(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional so the walk sees the container or model underneath."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _walk(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[Any, FieldInfo | None]:
    """The type annotation governing the value at `loc` (None when it cannot be followed),
    and the innermost model field on the way there."""
    current: Any = model
    field: FieldInfo | None = None
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None, None
            current = field.annotation
        elif origin is list:
            current = get_args(current)[0]
        elif origin is dict:
            current = get_args(current)[1]
        else:
            return None, field
    return _unwrap(current), field


def annotation_at(model: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The type annotation governing the value at `loc`, or None when it cannot be followed."""
    return _walk(model, loc)[0]


def field_doc_at(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    """The documentation of the field that holds the value at `loc` (a value inside a
    mapping or list belongs to the field of that mapping or list)."""
    field = _walk(model, loc)[1]
    return (field.description or "") if field is not None else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def field_names_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    target = annotation_at(model, loc)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return list(target.model_fields)
    return []


def literal_values_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    target = annotation_at(model, loc)
    if get_origin(target) is Literal:
        return [str(v) for v in get_args(target)]
    return []
