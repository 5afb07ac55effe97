"""Where things live in the repository: adapter directories, datasets, schemas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runner.errors import InputError
from runner.findings import quote

ADAPTER_DIR_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*[a-z0-9]|[a-z0-9])-v(?P<version>[0-9]+)$")


def split_adapter_dirname(dirname: str) -> tuple[str, int] | None:
    """`ainative-v2` -> ("ainative", 2); None when the name is not `<name>-v<N>`."""
    match = ADAPTER_DIR_RE.match(dirname)
    if match is None:
        return None
    return match["name"], int(match["version"])


@dataclass(frozen=True)
class Workspace:
    """A checkout of the adapters repository."""

    root: Path

    @classmethod
    def discover(cls, start: Path | None = None) -> Workspace:
        """The nearest directory at or above `start` that holds `adapters/`."""
        here = (start or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / "adapters").is_dir():
                return cls(candidate)
        raise InputError(
            f"no adapters/ directory at or above {here}; run the runner from a checkout of "
            "the adapters repository or pass --repo PATH"
        )

    @classmethod
    def at(cls, root: Path) -> Workspace:
        """The repository at `root`, which must hold `adapters/`."""
        if not (root / "adapters").is_dir():
            raise InputError(f"{root} has no adapters/ directory; pass the repository root")
        return cls(root.resolve())

    @property
    def adapters_dir(self) -> Path:
        return self.root / "adapters"

    @property
    def schemas_dir(self) -> Path:
        return self.root / "schemas"

    def rel(self, path: Path) -> str:
        """A path as findings show it: relative to the repository root, with forward slashes."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def adapter_dir(self, ref: str | Path) -> Path:
        """Accepts `ainative-v2`, `adapters/ainative-v2` or any path to the directory,
        `.` and `../ainative-v1` from inside an adapter's folder included."""
        text = str(ref).rstrip("/\\") or "/"
        for candidate in self._adapter_candidates(text):
            if candidate.is_symlink():
                raise InputError(
                    f"{text} is a symbolic link; an adapter directory must be a real folder "
                    "inside the repository"
                )
            if candidate.is_dir():
                return self._inside_adapters(candidate.resolve(), text)
        raise InputError(f"no adapter directory {quote(text)}; {self._known()}")

    def _adapter_candidates(self, text: str) -> tuple[Path, ...]:
        path = Path(text)
        if path.is_absolute() or text.replace("\\", "/").split("/")[0] in {".", ".."}:
            return (path,)  # written relative to where the user stands, or absolute
        # The repository's own directories win over a same-named path under the CWD.
        return (self.root / text, self.adapters_dir / text, path)

    def _inside_adapters(self, directory: Path, text: str) -> Path:
        if directory.parent != self.adapters_dir.resolve():
            root = directory == self.root.resolve()
            where = "the repository root" if root else self.rel(directory)
            raise InputError(
                f"{text} is not an adapter directory ({where}); name one as "
                f"adapters/<name>-v<N>, or as `.` inside its folder; {self._known()}"
            )
        return directory

    def _known(self) -> str:
        return "known adapters: " + (", ".join(d.name for d in self.list_adapter_dirs()) or "none")

    def adapter_versions(self) -> dict[str, dict[int, Path]]:
        """Adapter name -> version -> its `adapters/<name>-v<N>/` directory in the checkout."""
        found: dict[str, dict[int, Path]] = {}
        for directory in self.list_adapter_dirs():
            parsed = split_adapter_dirname(directory.name)
            if parsed is not None:
                found.setdefault(parsed[0], {})[parsed[1]] = directory
        return found

    def list_adapter_dirs(self) -> list[Path]:
        if not self.adapters_dir.is_dir():
            return []
        # A symlinked directory is listed so that loading it reports the link, never skipped.
        return sorted(d for d in self.adapters_dir.iterdir() if d.is_dir())
