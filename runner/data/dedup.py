"""Duplicate prompts within a split and leakage from train into eval: exact after
normalisation, and near-duplicates by MinHash LSH over word 3-grams.

Workers compute compact keys (an 8-byte digest and a MinHash signature per record); the
parent keeps only those (about 600 bytes a record) and finds near pairs by LSH banding over
the whole signature matrix at once."""

from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np

NUM_PERM = 64
_WORD = re.compile(r"\w+")
_INSTRUCTION = "### Instruction:"


def prompt_of(user_content: str) -> str:
    """The part of a user message that asks: the instruction, not the retrieved context."""
    head, marker, tail = user_content.rpartition(_INSTRUCTION)
    return tail if marker else head + tail


def normalise(text: str) -> list[str]:
    """Words, case-folded: punctuation and whitespace differences do not make a new prompt."""
    return _WORD.findall(text.casefold())


_PRIME = (1 << 61) - 1
_RANDOM = np.random.default_rng(1)
# Affine hashes (a*x + b) mod p, one per permutation. a and b span the whole field: with
# small ones, a*x never wraps and every permutation would pick the smallest crc32.
_A = _RANDOM.integers(1, _PRIME, size=NUM_PERM, dtype=np.uint64)
_B = _RANDOM.integers(0, _PRIME, size=NUM_PERM, dtype=np.uint64)


def minhash(words: list[str]) -> np.ndarray:
    """MinHash signature of the word 3-grams: NUM_PERM minima of affine hashes of crc32."""
    grams = [" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))]
    hashes = np.fromiter((zlib.crc32(g.encode()) for g in grams), np.uint64, len(grams))
    return ((hashes[:, None] * _A + _B) % _PRIME).min(axis=0)


def prompt_keys(user_content: str) -> tuple[bytes, np.ndarray]:
    words = normalise(prompt_of(user_content))
    exact = hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest()
    return exact, minhash(words)


RECALL_AT_THRESHOLD = 0.95


def lsh_shape(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) over NUM_PERM values: the most rows per band (fewest false
    candidates to verify) that still puts a pair exactly at the threshold in a shared band
    with probability RECALL_AT_THRESHOLD; more similar pairs are caught more surely."""
    for rows in (32, 16, 8, 4, 2, 1):
        bands = NUM_PERM // rows
        if 1 - (1 - threshold**rows) ** bands >= RECALL_AT_THRESHOLD:
            return bands, rows
    return NUM_PERM, 1


def near_duplicate_pairs(
    signatures: np.ndarray, threshold: float, skip: np.ndarray | None = None
) -> list[tuple[int, int, float]]:
    """(row, earlier similar row, estimated Jaccard) for each row whose prompt is at least
    `threshold` similar to an earlier row's. Rows flagged in `skip` (already reported as
    exact duplicates) are neither tested nor used as references."""
    rows = signatures.shape[0]
    done = np.zeros(rows, bool) if skip is None else skip.copy()
    usable = ~done
    found: dict[int, tuple[int, float]] = {}
    bands, width = lsh_shape(threshold)
    for band in range(bands):
        for group in _collisions(signatures[:, band * width : (band + 1) * width], usable):
            _verify(signatures, group, threshold, done, found)
    return [(row, other, similarity) for row, (other, similarity) in sorted(found.items())]


def _collisions(band: np.ndarray, usable: np.ndarray) -> list[np.ndarray]:
    """Groups of usable rows (ascending) that share every value of this band."""
    rows = np.flatnonzero(usable)
    keys = np.ascontiguousarray(band[rows])
    keys = keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[inverse] > 1)
    order = shared[np.argsort(inverse[shared], kind="stable")]
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return [rows[g] for g in np.split(order, bounds)] if order.size else []


def _verify(
    signatures: np.ndarray,
    group: np.ndarray,
    threshold: float,
    done: np.ndarray,
    found: dict[int, tuple[int, float]],
) -> None:
    members = signatures[group]
    for position in range(1, len(group)):
        row = int(group[position])
        if done[row]:
            continue
        similarity = (members[:position] == members[position]).mean(axis=1)
        hits = np.flatnonzero(similarity >= threshold)
        if hits.size:
            found[row] = (int(group[hits[0]]), float(similarity[hits[0]]))
            done[row] = True
