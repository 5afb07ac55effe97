"""Near-duplicate detection: the MinHash estimate tracks the true Jaccard similarity of
prompts, so different questions that share an opening are not flagged."""

from __future__ import annotations

import json
import random

import numpy as np

from runner.data.dedup import near_duplicate_pairs, normalise, prompt_keys, prompt_of
from tests.conftest import REPO_ROOT


def grams(text: str) -> set[str]:
    words = normalise(prompt_of(text))
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def real_prompts() -> list[str]:
    prompts = []
    for name in ("kwanzaa/v0/train.jsonl", "kwanzaa/v0/eval.jsonl", "ainative/v2/train.jsonl"):
        with (REPO_ROOT / "datasets" / name).open() as handle:
            prompts += [json.loads(line)["messages"][1]["content"] for line in handle]
    return prompts


def test_minhash_estimates_track_true_jaccard_on_real_prompts():
    prompts = real_prompts()
    signatures = np.vstack([prompt_keys(p)[1] for p in prompts])
    pick = random.Random(0)
    errors = []
    for _ in range(2000):
        i, j = pick.randrange(len(prompts)), pick.randrange(len(prompts))
        a, b = grams(prompts[i]), grams(prompts[j])
        errors.append(np.mean(signatures[i] == signatures[j]) - len(a & b) / len(a | b))
    assert abs(float(np.mean(errors))) < 0.01
    assert max(abs(e) for e in errors) < 0.2


def test_questions_sharing_an_opening_are_not_near_duplicates():
    prompts = [
        "### Instruction:\nIsn't Kwanzaa just a made-up holiday with no real roots?",
        "### Instruction:\nIsn't Kwanzaa just a knockoff of Hanukkah because of the candles?",
    ]
    signatures = np.vstack([prompt_keys(p)[1] for p in prompts])
    assert near_duplicate_pairs(signatures, 0.9) == []


def test_a_prompt_with_a_word_added_is_a_near_duplicate_of_the_earlier_one():
    base = (
        "Write a pytest fixture for the AINative client that uses monkeypatch to set the "
        "API key and checks that the timeout is passed through"
    )
    signatures = np.vstack(
        [prompt_keys(p)[1] for p in (base, "Unrelated: list ZeroDB", base + " please")]
    )
    [(row, earlier, similarity)] = near_duplicate_pairs(signatures, 0.9)
    assert (row, earlier) == (2, 0)
    assert similarity >= 0.9


def test_retrieved_context_does_not_count_towards_similarity():
    context = "### Retrieved Context:\n[kw-prin-01] " + "The seven principles guide each day. " * 8
    first = context + "\n\n### Instruction:\nWhat does Umoja mean?"
    second = context + "\n\n### Instruction:\nWhen is the Karamu feast held?"
    assert prompt_keys(first)[0] != prompt_keys(second)[0]
    signatures = np.vstack([prompt_keys(first)[1], prompt_keys(second)[1]])
    assert near_duplicate_pairs(signatures, 0.9) == []
