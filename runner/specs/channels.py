"""Release channels in git: `channels/<adapter name>.yaml` maps each channel (a movable
pointer such as `stable` or `canary`) to a promoted version of that adapter, or to `latest`,
the newest promoted version still in git. Reconcile makes each channel a branch of the
publish repo holding exactly that version's files; a rollback is a PR that edits this file.

Without the file an adapter has one channel, `stable: latest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from runner.errors import SpecError
from runner.findings import Finding, Severity, has_errors
from runner.specs.base import SpecModel, spec_error
from runner.specs.load import load_model_file
from runner.specs.yamlio import YamlDoc
from runner.workspace import Workspace

CHANNELS_DIR = "channels"
SCHEMA_FILENAME = "channels.schema.json"
SCHEMA_HEADER = f"# yaml-language-server: $schema=../schemas/{SCHEMA_FILENAME}"
LATEST = "latest"
DEFAULT_CHANNEL = "stable"

_CHANNEL = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]|[a-z]")
_VERSION_TAG = re.compile(r"v\d+")
# Branches a channel may not be: the publish repo's own, or a version's tag name.
_RESERVED = frozenset({"main", "head", "refs", "latest"})


def _channel_name(name: str) -> str:
    if not _CHANNEL.fullmatch(name):
        raise spec_error(
            "channel_name",
            f"channel {name!r}: use lowercase letters, digits and '-' (at most 32, starting "
            "with a letter), such as `stable` or `canary`",
        )
    if name in _RESERVED or _VERSION_TAG.fullmatch(name):
        raise spec_error(
            "channel_name",
            f"channel {name!r} is reserved (the publish repo's `main`, or a version tag's "
            "name); pick another, such as `stable` or `canary`",
        )
    return name


ChannelName = Annotated[str, AfterValidator(_channel_name)]
Target = Annotated[int, Field(ge=1)] | Literal["latest"]


class ChannelsSpec(SpecModel):
    """The release channels of one adapter: `channels/<adapter name>.yaml`."""

    channels: dict[ChannelName, Target] = Field(min_length=1, max_length=16)
    """Channel -> version: a promoted version of this adapter (e.g. `stable: 2`), or `latest`
    (the newest promoted version still in git). Each channel is a branch of the publish repo
    that holds exactly that version's files: load it with `revision="<channel>"`."""


DEFAULT_CHANNELS = ChannelsSpec(channels={DEFAULT_CHANNEL: LATEST})


@dataclass(frozen=True)
class ChannelsFile:
    """One adapter's channels as git declares them; `doc` is None for the default (no file),
    else the parsed file, whose lines findings point at."""

    adapter: str
    spec: ChannelsSpec
    path: str
    doc: YamlDoc | None = None

    def line_of(self, channel: str) -> int | None:
        if self.doc is None:
            return None
        return self.doc.position(("channels", channel), at_key=True)[0]

    def declared(self, channel: str) -> str:
        """The channel's target as written: `2` or `latest`."""
        return str(self.spec.channels[channel])


def channels_path(adapter: str) -> str:
    return f"{CHANNELS_DIR}/{adapter}.yaml"


def load_channels(workspace: Workspace, adapter: str) -> tuple[ChannelsFile | None, list[Finding]]:
    """The adapter's channels (the default without a file); None with the findings when the
    file is there but unusable."""
    path = channels_path(adapter)
    file = workspace.root / path
    if not file.exists() and not file.is_symlink():
        return ChannelsFile(adapter, DEFAULT_CHANNELS, path), []
    hint = f"schemas/{SCHEMA_FILENAME}"
    doc, spec, findings = load_model_file(file, ChannelsSpec, path, schema_hint=hint)
    if doc is None or spec is None or has_errors(findings):
        return None, findings
    return ChannelsFile(adapter, spec, path, doc), findings


def require_channels(workspace: Workspace, adapter: str) -> ChannelsFile:
    """The adapter's channels, or a SpecError listing every problem of its file."""
    channels, findings = load_channels(workspace, adapter)
    if channels is None:
        raise SpecError(
            f"{channels_path(adapter)} does not load: fix the release channels listed above "
            "and run again",
            findings,
        )
    return channels


def declared_adapters(workspace: Workspace) -> list[str]:
    """The adapter names that have a channels file."""
    folder = workspace.root / CHANNELS_DIR
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


def missing_version_findings(channels: ChannelsFile, versions: set[int]) -> list[Finding]:
    """Every channel that names a version with no `adapters/<name>-v<N>/` in git: never added,
    or withdrawn (its folder removed) while a channel still names it."""
    findings = []
    for channel, target in channels.spec.channels.items():
        if target == LATEST or target in versions:
            continue
        shown = ", ".join(f"v{v}" for v in sorted(versions)) or "none"
        findings.append(
            Finding(
                "channels.unknown-version",
                Severity.ERROR,
                channels.path,
                channels.line_of(channel),
                f"channel `{channel}` names v{target}, but adapters/{channels.adapter}-v{target}/ "
                f"is not in git (versions in git: {shown}); a channel can only name a promoted "
                "version, and a version a channel names cannot be withdrawn",
                f"point `{channel}` at a version in git (`runner rollback {channels.adapter} "
                f"--channel {channel} --to N`), or keep adapters/{channels.adapter}-v{target}/",
            )
        )
    return findings
