"""`pip` inside an emulated job. The emulator runs a job in its own Python, whose packages
stand for the image's, so `pip install` installs nothing: each requirement is answered from
what that Python has, and one it lacks fails the way pip fails for a package it cannot find,
so a job whose image would lack a package fails here too."""

from __future__ import annotations

import importlib.metadata
import re
import sys

# Options of `pip install` that take a value (the value is not a requirement).
_VALUED = {"-i", "--index-url", "--extra-index-url", "-c", "--constraint", "-f", "--find-links"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def requirements(args: list[str]) -> list[str]:
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUED
        else:
            found.append(arg)
    return found


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install":
        print(f"Hub emulator: this image's pip only installs (asked: pip {' '.join(argv)})")
        return 1
    for requirement in requirements(argv[1:]):
        match = _NAME.match(requirement)
        name = match.group(0) if match else requirement
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            print(
                f"ERROR: No matching distribution found for {requirement} "
                "(the Hub emulator runs jobs in its own Python, which lacks it)"
            )
            return 1
        print(f"Requirement already satisfied: {requirement} (here {name} {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
