"""`runner rollback`: point a channel at another version by editing `channels/<name>.yaml` in
the working tree, comments and the other channels kept. Nothing else changes, neither the Hub
nor git: the PR that commits the edit is the rollback, and its merge moves the channel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from runner.errors import InputError
from runner.findings import quote
from runner.specs.channels import (
    CHANNELS_DIR,
    LATEST,
    SCHEMA_HEADER,
    ChannelsFile,
    ChannelsSpec,
    require_channels,
)
from runner.specs.yamlio import dump_yaml, round_trip_yaml
from runner.workspace import Workspace, split_adapter_dirname


@dataclass(frozen=True)
class ChannelEdit:
    """What `runner rollback` did to one channel."""

    adapter: str
    channel: str
    path: str
    before: str
    """The channel's target as written before: `2`, `latest`, or `` when it was not declared."""
    after: int
    created: bool
    """The channels file did not exist: it was written with the default channels."""

    @property
    def changed(self) -> bool:
        return self.before != str(self.after)


def adapter_name(workspace: Workspace, ref: str) -> str:
    """The adapter name `ref` means: a name (`kwanzaa-mini`) or one of its version directories
    (`kwanzaa-mini-v2`, `adapters/kwanzaa-mini-v2/`)."""
    versions = workspace.adapter_versions()
    text = Path(ref.rstrip("/\\") or ".").name
    if text in versions:
        return text
    parsed = split_adapter_dirname(text)
    if parsed is not None and parsed[1] in versions.get(parsed[0], {}):
        return parsed[0]
    raise InputError(
        f"no adapter {quote(ref)} in git; name an adapter (`kwanzaa-mini`) or one of its "
        f"versions (`kwanzaa-mini-v2`); adapters in git: {', '.join(sorted(versions)) or 'none'}"
    )


def set_channel(workspace: Workspace, ref: str, channel: str, to: int | None) -> ChannelEdit:
    """Point `channel` of the adapter `ref` names at version `to` (default: the newest version
    in git below the one it names now) in the working tree's channels file."""
    name = adapter_name(workspace, ref)
    _check_name(channel)
    versions = sorted(workspace.adapter_versions()[name])
    channels = require_channels(workspace, name)
    declared = channels.spec.channels
    before = channels.declared(channel) if channel in declared else ""
    target = to if to is not None else _version_below(channels, channel, versions)
    if target not in versions:
        raise InputError(
            f"adapters/{name}-v{target}/ is not in git (versions in git: {_shown(versions)}); "
            "a channel can only name a version in git: pass one of those to --to"
        )
    _check_spec({**declared, channel: target})
    edit = ChannelEdit(name, channel, channels.path, before, target, channels.doc is None)
    if edit.changed:
        _write(workspace, channels, channel, target)
    return edit


def _check_name(channel: str) -> None:
    _check_spec({channel: LATEST})


def _check_spec(channels: dict[str, int | str]) -> None:
    """What the edited file will hold is a valid ChannelsSpec, or the spec's own words why not."""
    try:
        ChannelsSpec.model_validate({"channels": channels})
    except ValidationError as error:
        raise InputError("; ".join(e["msg"] for e in error.errors())) from None


def _version_below(channels: ChannelsFile, channel: str, versions: list[int]) -> int:
    """The newest version in git below the one the channel names now (for `latest`, the
    newest version in git)."""
    if channel not in channels.spec.channels:
        raise InputError(
            f"channel `{channel}` is not declared in {channels.path}, so there is no version to "
            "roll back from; pass --to N to point it at version N"
        )
    declared = channels.spec.channels[channel]
    current = versions[-1] if declared == LATEST else int(declared)
    below = [v for v in versions if v < current]
    if not below:
        raise InputError(
            f"no version of {channels.adapter} in git below v{current}, which `{channel}` "
            f"names now (versions in git: {_shown(versions)}); nothing to roll back to: pass "
            "--to N to name the version"
        )
    return below[-1]


def _write(workspace: Workspace, channels: ChannelsFile, channel: str, target: int) -> None:
    folder = workspace.root / CHANNELS_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InputError(
            f"{CHANNELS_DIR}/ is not a folder of the repository (a link or a file); replace "
            "it with a folder, then run `runner rollback` again"
        )
    if channels.doc is None:  # no file yet: the default channels, under the schema line
        text = SCHEMA_HEADER + "\n" + dump_yaml({"channels": dict(channels.spec.channels)})
    else:
        text = channels.doc.text  # read bounded by load_channels
    tree = round_trip_yaml().load(text)
    tree["channels"][channel] = target
    folder.mkdir(exist_ok=True)
    (workspace.root / channels.path).write_text(dump_yaml(tree), encoding="utf-8")


def _shown(versions: list[int]) -> str:
    return ", ".join(f"v{v}" for v in versions) or "none"
