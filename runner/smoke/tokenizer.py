"""The base model's tokenizer for `runner smoke`: only its tokenizer files, at the pinned
revision, from the local cache or the Hub; when the Hub lacks the base, a message that says
what is missing where and every way to provide it, or (when allowed) a stand-in's."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from runner.errors import InputError
from runner.hub.client import DEFAULT_ENDPOINT, HubClient, NotFoundError, Refs, RepoRef, cached_file
from runner.hub.seed import BUILDERS, SMOLLM2_REPO_ID, SMOLLM2_REVISION

LOG = logging.getLogger(__name__)

# At least one of these makes a tokenizer; the others refine it when the repo has them.
VOCAB_FILES = ("tokenizer.json", "tokenizer.model")
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
NEEDED_FILES = (
    f"{' or '.join(VOCAB_FILES)}, with {', '.join(OPTIONAL_FILES)} where the repo has them "
    "(the chat template and special tokens live there); never config.json or the weights"
)
# With `--stand-in-tokenizer`, a base whose tokenizer cannot be fetched is smoked with this
# one: a real instruct tokenizer and chat template that the emulator seeds offline.
STAND_IN = f"{SMOLLM2_REPO_ID}@{SMOLLM2_REVISION}"
REAL_HUB = DEFAULT_ENDPOINT


class BaseModelUnavailable(InputError):
    """The base model's repo or revision is not on the Hub at `HF_ENDPOINT`: an environment
    matter (what that Hub holds) that the spec may or may not be behind."""


def fetch_base_tokenizer(
    client: HubClient, repo_id: str, revision: str, *, dest: Path | None = None
) -> Path:
    """A folder (`dest`, else a new temp folder) with the tokenizer files of
    `repo_id@revision`: from the local Hugging Face cache when it has them, else from the Hub.
    Never the weights. BaseModelUnavailable when the Hub has no such repo or revision."""
    names = (*VOCAB_FILES, *OPTIONAL_FILES)
    found = {name: Path(path) for name in names if (path := cached_file(repo_id, name, revision))}
    if len(found) < len(names):
        # One look at the revision first: "not on this Hub" is a different error (and fix)
        # from "this revision ships no tokenizer", and five 404s would hide which.
        _require_revision(client, repo_id, revision)
        for name in names:
            path = found.get(name) or _tokenizer_file(client, repo_id, name, revision)
            if path is not None:
                found[name] = path
    if not any(name in found for name in VOCAB_FILES):
        raise InputError(
            f"base model {repo_id}@{revision}: no tokenizer ({' or '.join(VOCAB_FILES)}) in the "
            f"local cache or on the Hub at {client.endpoint}; check base_model.id and "
            "base_model.revision in adapter.yaml: a smoke renders the chats with the base "
            "model's own tokenizer and chat template"
        )
    folder = dest or Path(tempfile.mkdtemp(prefix="runner-smoke-tokenizer-"))
    folder.mkdir(parents=True, exist_ok=True)
    for filename, path in found.items():
        shutil.copyfile(path, folder / filename)  # the cache holds symlinks into blobs/
    return folder


def _tokenizer_file(client: HubClient, repo_id: str, filename: str, revision: str) -> Path | None:
    try:
        return client.download(RepoRef(repo_id), filename, revision)
    except NotFoundError:
        return None  # most repos lack some of the files; only "none at all" is an error


def _require_revision(client: HubClient, repo_id: str, revision: str) -> None:
    repo = RepoRef(repo_id)
    try:
        client.head(repo, revision)
        return
    except NotFoundError:
        pass
    try:
        refs: Refs | None = client.refs(repo)
    except NotFoundError:
        refs = None
    raise BaseModelUnavailable(_unavailable_message(client.endpoint, repo_id, revision, refs))


def _unavailable_message(endpoint: str, repo_id: str, revision: str, refs: Refs | None) -> str:
    """What is missing where, what a smoke needs of it, and every way to provide it."""
    real_hub = endpoint.rstrip("/") == REAL_HUB
    if refs is None:
        missing = f"the Hub at {endpoint} has no repo {repo_id} (or it is private or gated "
        missing += "and HF_TOKEN is unset or may not read it)"
    else:
        heads = ", ".join(f"{name} at {sha}" for name, sha in sorted(refs.branches.items()))
        missing = f"the Hub at {endpoint} has {repo_id} ({heads or 'no branches'}) but not "
        missing += f"revision {revision}"
    lines = [
        f"base model {repo_id}@{revision}: {missing}.",
        f"`runner smoke` needs only its tokenizer files at that revision: {NEEDED_FILES}.",
        _is_the_spec_wrong(real_hub),
        "To provide them:",
        *(f"  - {way}" for way in _ways_to_provide(repo_id, revision, real_hub)),
    ]
    return "\n".join(lines)


def _is_the_spec_wrong(real_hub: bool) -> str:
    check = "check base_model.id and base_model.revision in adapter.yaml"
    if real_hub:
        return f"The spec may name a repo or revision that does not exist: {check}."
    return (
        "That is what this Hub holds, not necessarily a mistake in the spec: if the real Hub "
        f"lacks this repo or revision too, the spec is wrong ({check}); offline, the runner "
        "cannot tell which."
    )


def _ways_to_provide(repo_id: str, revision: str, real_hub: bool) -> list[str]:
    stand_in = (
        "or smoke with a stand-in: `runner smoke ADAPTER --stand-in-tokenizer` uses "
        f"{STAND_IN}'s tokenizer and template, and says that the base's own were not checked"
    )
    if real_hub:
        return [
            "a private or gated base: set HF_TOKEN to a token that may read it (accept a "
            "gated model's terms on its page first)",
            stand_in,
        ]
    if repo_id in BUILDERS:
        seed = f"seed it into the emulator: `runner hub seed --model {repo_id}`"
    else:
        seed = (
            f"seed a local copy into the emulator: `runner hub seed --from-folder FOLDER "
            f"--repo-id {repo_id} --revision {revision}`, where FOLDER holds the files (from "
            f"`hf download {repo_id} --revision {revision} --local-dir FOLDER` on a "
            "connected machine)"
        )
    return [
        f"{seed}; stop `runner hub serve` first and serve again after",
        f"or use the real Hub: unset HF_ENDPOINT (or set it to {REAL_HUB}) and set HF_TOKEN",
        stand_in,
    ]


def smoke_tokenizer(
    client: HubClient, repo_id: str, revision: str, dest: Path, stand_in_allowed: bool
) -> tuple[Path, str | None]:
    """The base model's tokenizer folder, else (when allowed) the stand-in's; the second
    value names the stand-in when it was used."""
    try:
        return fetch_base_tokenizer(client, repo_id, revision, dest=dest), None
    except BaseModelUnavailable:
        if not stand_in_allowed:
            raise
    LOG.info("%s@%s is not on %s: %s stands in", repo_id, revision, client.endpoint, STAND_IN)
    try:
        return fetch_base_tokenizer(client, SMOLLM2_REPO_ID, SMOLLM2_REVISION, dest=dest), STAND_IN
    except BaseModelUnavailable:
        raise BaseModelUnavailable(
            f"base model {repo_id}@{revision} is not on the Hub at {client.endpoint}, nor is "
            f"the stand-in tokenizer {STAND_IN}: seed it with `runner hub seed --model "
            f"{SMOLLM2_REPO_ID}` (stop `runner hub serve` first, or start it with --seed), or "
            "run without --stand-in-tokenizer for the ways to provide the base's own"
        ) from None
