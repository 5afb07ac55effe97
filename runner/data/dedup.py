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


BANDS = 16
"""LSH bands over the 64 MinHash values (4 rows each): pairs at Jaccard 0.8 collide in some
band with probability ~1, pairs at 0.3 with ~0.12; every candidate is then verified."""


def near_duplicate_pairs(signatures: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(row, earliest similar earlier row, estimated Jaccard) for each row whose prompt is at
    least `threshold` similar to an earlier row's."""
    candidates: dict[int, set[int]] = {}
    for group in _band_collisions(signatures):
        for position, row in enumerate(group[1:], start=1):
            candidates.setdefault(int(row), set()).update(int(r) for r in group[:position])
    pairs = []
    for row in sorted(candidates):
        for other in sorted(candidates[row]):
            similarity = float(np.mean(signatures[row] == signatures[other]))
            if similarity >= threshold:
                pairs.append((row, other, similarity))
                break
    return pairs


def _band_collisions(signatures: np.ndarray) -> list[np.ndarray]:
    """Groups of rows (ascending) that share all values of at least one band."""
    width = NUM_PERM // BANDS
    groups: list[np.ndarray] = []
    for band in range(BANDS):
        keys = np.ascontiguousarray(signatures[:, band * width : (band + 1) * width])
        keys = keys.view(np.dtype((np.void, keys.dtype.itemsize * width))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = np.flatnonzero(counts[inverse] > 1)
        if shared.size == 0:
            continue
        order = shared[np.argsort(inverse[shared], kind="stable")]
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        groups += np.split(order, bounds)
    return groups
