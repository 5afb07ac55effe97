"""citation_grounded_chat: answer_json validity, citations against the retrieved and gold
chunk ids, refusal correctness as balanced accuracy, and a groundedness proxy.

What every content metric reads is the *strict* answer: the whole output (surrounding
whitespace aside) parsed as one JSON object, schema-valid or not. Anything else counts as
no answer at all: zero citations, neither an answer nor a refusal. Clients parse the
output whole, so JSON wrapped in prose or a fence serves nobody; `json_lenient_valid_rate`
is there to tell "right content, wrong wrapper" apart from wrong content.

Decided definitions, so that breaking the format never raises a rate:
- An output *answers* when its strict answer has non-blank `answer` text and `refused` is
  the boolean false; it *refuses* when it has non-blank `answer` text (the one sentence
  saying why) and `refused` is the boolean true. Anything else takes no side: an empty
  object `{}`, a wrapper such as `{"response": {...}}` (clients read the top-level keys),
  an object without answer text. Taking no side fails both refusal sides, scores 0 on
  groundedness and cites nothing.
- A field of the wrong type reads as absent: `"refused": "true"` is no refusal (nor an
  answer), `"citations": "kw-1"` cites nothing.
- Only an answer cites: a refusal's citations are not read, so a refusal that names the
  gold chunk on an answerable item scores 0 on coverage, precision and recall.
- The gold label decides: a decline on an item marked answerable (a red-team request
  phrased offensively whose facts can be given plainly) is a wrong refusal."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from runner.data.citation_task import (
    _CHUNK_ID,
    _INSTRUCTION,
    ANSWERED,
    REFUSAL_CORRECTNESS,
    REFUSAL_SIDES,
    REFUSED,
    TASK,
    answer_validator,
    first_answer_error,
)
from runner.data.jsonl import JsonLimitError, parse_json, parse_json_prefix
from runner.errors import InputError
from runner.evaluate.metrics import (
    POLICY_METRICS,
    BalancedMean,
    ItemScores,
    Metric,
    ScoringContext,
    TaskScorer,
    policy_hits,
)
from runner.evaluate.rows import OutputRow
from runner.findings import quote

METRICS = (
    Metric("json_valid_rate", "the whole output is one answer_json object (strict)"),
    Metric("json_lenient_valid_rate", "the first JSON object anywhere in the output validates"),
    Metric(
        "citation_coverage_rate",
        "answerable items with gold citations: cites something, and only retrieved chunks",
    ),
    Metric(
        "citation_precision", "macro: mean over items with gold citations of |cited∩gold|/|cited|"
    ),
    Metric("citation_recall", "macro: mean over items with gold citations of |cited∩gold|/|gold|"),
    Metric(
        REFUSAL_CORRECTNESS,
        "balanced accuracy: mean of the answer rate on answerable items and the refusal rate "
        "on unanswerable ones",
        BalancedMean(REFUSAL_SIDES),
    ),
    Metric(ANSWERED, "answerable items answered (one JSON object, not refused)"),
    Metric(REFUSED, "unanswerable items refused"),
    Metric(
        "retrieval_groundedness_rate",
        "share of answer sentences whose content words and numbers are in the cited chunks",
    ),
    *POLICY_METRICS,
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the scorer reads from one output."""

    strict_valid: bool
    lenient_valid: bool
    parsed: dict[str, Any] | None
    """The strict parse; None unless the whole output is one JSON object."""
    problem: str
    """Why the output is not strictly valid; empty when it is."""
    lenient: dict[str, Any] | None = None
    """The first JSON object anywhere in the output."""

    @property
    def refused(self) -> bool:
        return self._side is True

    @property
    def answered(self) -> bool:
        return self._side is False

    @property
    def _side(self) -> object:
        """`refused` as written, read only beside answer text: without it there is no side."""
        return self.parsed.get("refused") if self.parsed is not None and self.text else None

    @property
    def no_side(self) -> str:
        """Why the output neither answers nor refuses; empty when it does one of them."""
        if self.answered or self.refused:
            return ""
        if self.parsed is None:
            return "no answer_json"
        if not self.text:
            return "no answer text"
        return "`refused` is not true or false"

    @property
    def citations(self) -> list[str]:
        """Cited ids of an answer, first mention kept; anything else cites nothing."""
        cited = self.parsed.get("citations") if self.parsed is not None else None
        if not self.answered or not isinstance(cited, list):
            return []
        return list(dict.fromkeys(c for c in cited if isinstance(c, str)))

    @property
    def decoded(self) -> tuple[str, ...]:
        """The answer string of the strict or the lenient parse, for the policy scan."""
        found = self.parsed if self.parsed is not None else self.lenient
        answer = found.get("answer") if found is not None else None
        return (answer,) if isinstance(answer, str) else ()

    @property
    def text(self) -> str:
        """The strict answer's non-blank `answer` text; empty otherwise."""
        answer = self.parsed.get("answer") if self.parsed is not None else None
        return answer if isinstance(answer, str) and answer.strip() else ""


def read_answer(output: str, validator: Draft202012Validator) -> Answer:
    parsed, problem = _strict(output)
    if parsed is not None:
        problem = first_answer_error(validator, parsed) or ""
    strict_valid = parsed is not None and not problem
    lenient = parsed if parsed is not None else first_json_object(output)
    lenient_valid = lenient is not None and first_answer_error(validator, lenient) is None
    return Answer(strict_valid, lenient_valid, parsed, problem, lenient)


def _strict(output: str) -> tuple[dict[str, Any] | None, str]:
    try:
        parsed = parse_json(output.strip())
    except json.JSONDecodeError as err:
        return None, f"not one JSON object: {err.msg} at column {err.colno}"
    except JsonLimitError as err:  # a model can emit brackets nested without end
        return None, f"not one JSON object: {err}"
    if not isinstance(parsed, dict):
        return None, f"a JSON {type(parsed).__name__}, not an object"
    return parsed, ""


MAX_JSON_STARTS = 1000
"""Braces tried by `first_json_object`: a try may read far before it fails (an object nested
a thousand deep), so an output made of such starts would cost the square of its length."""


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first `{...}` in `text` that decodes as a JSON object (inside a fence, after
    prose), among its first MAX_JSON_STARTS braces; None when there is none."""
    start = text.find("{")
    for _ in range(MAX_JSON_STARTS):
        if start == -1:
            break
        try:
            value = parse_json_prefix(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def user_message(record: dict[str, Any]) -> str:
    return next((m["content"] for m in record["messages"] if m.get("role") == "user"), "")


def retrieved_chunks(user_content: str) -> dict[str, str]:
    """Chunk id → chunk text, from the `### Retrieved Context:` part of a user message: the
    ids `citation_task.retrieved_ids` finds, each with the text up to the next one."""
    context = user_content.partition(_INSTRUCTION)[0]
    marks = list(_CHUNK_ID.finditer(context))
    ends = [mark.start() for mark in marks[1:]] + [len(context)]
    return {
        mark.group(1): context[mark.end() : end].strip()
        for mark, end in zip(marks, ends, strict=True)
    }


def score_item(row: OutputRow, record: dict[str, Any], context: ScoringContext) -> ItemScores:
    answer = read_answer(row.output, answer_validator(_schema(context)))
    chunks = retrieved_chunks(user_message(record))
    values: dict[str, float | None] = {
        "json_valid_rate": float(answer.strict_valid),
        "json_lenient_valid_rate": float(answer.lenient_valid),
    }
    reasons: dict[str, str] = {}
    if not answer.strict_valid:
        reasons["json_valid_rate"] = answer.problem
    if not answer.lenient_valid:
        reasons["json_lenient_valid_rate"] = "no JSON object in the output validates"
    answerable, gold = gold_labels(record)
    _citations(answer, answerable, gold, set(chunks), values, reasons)
    _refusal(answer, answerable, values, reasons)
    _groundedness(answer, chunks, values, reasons)
    hits, hit_reasons = policy_hits(row, context, answer.decoded)
    values.update(hits)
    reasons.update(hit_reasons)
    return ItemScores(row.item_id, str(record["category"]), values, reasons)


def gold_labels(record: dict[str, Any]) -> tuple[bool, set[str]]:
    """(answerable, gold citation ids) of an eval record; the data checks require both."""
    answerable, gold = record.get("answerable"), record.get("gold_citations")
    if not isinstance(answerable, bool) or not isinstance(gold, list):
        raise InputError(
            f"eval record {quote(str(record.get('id')))}: {TASK} scoring needs `answerable` "
            "(true or false) and `gold_citations` (a list of chunk ids)"
        )
    return answerable, {str(g) for g in gold}


def _citations(
    answer: Answer,
    answerable: bool,
    gold: set[str],
    retrieved: set[str],
    values: dict[str, float | None],
    reasons: dict[str, str],
) -> None:
    """Coverage, precision and recall apply to answerable items with gold citations."""
    if not (answerable and gold):
        values.update(citation_coverage_rate=None, citation_precision=None, citation_recall=None)
        return
    cited = answer.citations
    stray = [c for c in cited if c not in retrieved]
    hits = len(gold.intersection(cited))
    values["citation_coverage_rate"] = float(bool(cited) and not stray)
    # An answer that cites nothing has precision 0, not "undefined": staying silent must
    # not look precise.
    values["citation_precision"] = hits / len(cited) if cited else 0.0
    values["citation_recall"] = hits / len(gold)
    if not cited:
        reason = _why_nothing_cited(answer)
        reasons.update(citation_coverage_rate=reason, citation_precision=reason)
    elif stray:
        reasons["citation_coverage_rate"] = f"cites {', '.join(map(quote, stray))}, not retrieved"
    if hits < len(cited):
        wrong = [c for c in cited if c not in gold]
        reasons["citation_precision"] = f"cites {', '.join(map(quote, wrong))}, not gold"
    if hits < len(gold):
        missed = sorted(gold.difference(cited))
        reasons["citation_recall"] = f"misses gold {', '.join(map(quote, missed))}"


def _why_nothing_cited(answer: Answer) -> str:
    if answer.answered:
        return "cites nothing"
    if answer.refused:
        return "refused: a refusal's citations are not read"
    return f"{answer.no_side}: no citations read"


def _refusal(
    answer: Answer, answerable: bool, values: dict[str, float | None], reasons: dict[str, str]
) -> None:
    """One side per item; the balanced aggregate weighs both sides the same."""
    correct = answer.answered if answerable else answer.refused
    values[ANSWERED] = float(correct) if answerable else None
    values[REFUSED] = None if answerable else float(correct)
    values["refusal_correctness_rate"] = float(correct)
    if correct:
        return
    if answer.no_side:
        reason = f"{answer.no_side}: neither answered nor refused"
    elif answerable:
        reason = "refused an answerable question"
    else:
        reason = "answered an unanswerable question"
    reasons.update(
        {"refusal_correctness_rate": reason, ANSWERED if answerable else REFUSED: reason}
    )


def _groundedness(
    answer: Answer,
    chunks: dict[str, str],
    values: dict[str, float | None],
    reasons: dict[str, str],
) -> None:
    """Not applicable to a refusal (there is no claim to ground, and whether refusing was
    right is refusal correctness's question) nor to an answer without a checkable sentence;
    an output that takes no side scores 0, so that breaking the format on hard items cannot
    lift the rate."""
    if answer.refused:
        values["retrieval_groundedness_rate"] = None
        return
    if answer.no_side:
        values["retrieval_groundedness_rate"] = 0.0
        reasons["retrieval_groundedness_rate"] = f"{answer.no_side}: nothing to ground"
        return
    cited_text = "\n".join(chunks[c] for c in answer.citations if c in chunks)
    share, ungrounded = grounded_share(answer.text, cited_text, citable=chunks)
    values["retrieval_groundedness_rate"] = share
    if ungrounded:
        reasons["retrieval_groundedness_rate"] = (
            f"not in the cited chunks: {quote(ungrounded[:80])}"
        )


def _schema(context: ScoringContext) -> dict[str, Any]:
    if context.answer_schema is None:
        raise InputError(f"{TASK} needs the answer_schema of the dataset manifest to score JSON")
    return context.answer_schema


def _require_schema(context: ScoringContext) -> None:
    _schema(context)


SCORER = TaskScorer(METRICS, score_item, prepare=_require_schema)


# -- groundedness proxy -------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*\s+")  # closing quotes stay
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # U.S, e.g, a.m, J: dotted letters
# Abbreviations a sentence rarely ends on, lowercased, without their period.
_ABBREVIATION_LIST = "dr mr mrs ms prof st mt jr sr no nos vs etc fig cf ca approx"
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# Function words only: what is left of a sentence is what it claims.
_STOPWORD_LIST = """
    a an and are as at be been but by can could did do does for from had has have he her
    his how i if in into is it its may might more most no not of on or our she should so
    than that the their them then there these they this those to was we were what when
    where which who whom why will with would you your also only very such each any all
    many much some often yes
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())


def grounded_share(
    answer: str, cited_text: str, *, citable: Collection[str] = ()
) -> tuple[float | None, str]:
    """Share of the answer's checkable sentences that are grounded in `cited_text`, and the
    first ungrounded sentence ("" when none). A sentence is grounded when more than half of
    its content words (lowercased, stopwords and bare numbers removed) occur in the cited
    text and every number in it occurs there verbatim. The `citable` chunk ids written in
    the answer (`[kw-symb-02]`) are citations, not claims: their words and numbers are not
    checked. Sentences with neither content words nor numbers are not counted; None when
    no sentence is checkable."""
    words = set(_WORD.findall(cited_text.lower()))
    numbers = set(_NUMBER.findall(cited_text))
    grounded = checked = 0
    first_ungrounded = ""
    for sentence in sentences(answer):
        claim = _without_ids(sentence, citable)
        content = [w for w in _WORD.findall(claim.lower()) if w not in _STOPWORDS]
        content = [w for w in content if not w.isdigit()]
        claimed = _NUMBER.findall(claim)
        if not content and not claimed:
            continue
        checked += 1
        share = sum(w in words for w in content) / len(content) if content else 1.0
        if share > 0.5 and all(n in numbers for n in claimed):
            grounded += 1
        elif not first_ungrounded:
            first_ungrounded = sentence
    return (grounded / checked if checked else None), first_ungrounded


def sentences(text: str) -> list[str]:
    """`text` split after `.`, `!` or `?` and the space that follows; not after an
    abbreviation (`U.S.`, `e.g.`, `Dr.`, `No. 5`) nor before a lowercase letter or a digit,
    which start no sentence."""
    found: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        following = text[end.end() : end.end() + 1]
        if following.islower() or following.isdigit():
            continue
        if end.group().startswith(".") and _abbreviation(_last_word(text, start, end.start())):
            continue
        found.append(text[start : end.end()].strip())
        start = end.end()
    found.append(text[start:].strip())
    return [sentence for sentence in found if sentence]


def _last_word(text: str, start: int, stop: int) -> str:
    """The word of `text[start:stop]` that ends at `stop`, read backwards to the space before
    it (not by splitting the sentence so far, which a run of abbreviations would make
    quadratic)."""
    begin = stop
    while begin > start and not text[begin - 1].isspace():
        begin -= 1
    return text[begin:stop]


def _abbreviation(word: str) -> bool:
    return bool(_INITIALS.fullmatch(word)) or word.lower() in _ABBREVIATIONS


def _without_ids(sentence: str, ids: Collection[str]) -> str:
    """`sentence` with each whole mention of one of `ids` taken out."""
    if not ids:
        return sentence
    alternatives = "|".join(map(re.escape, sorted(ids, key=len, reverse=True)))
    return re.sub(rf"(?<![\w-])(?:{alternatives})(?![\w-])", " ", sentence)
