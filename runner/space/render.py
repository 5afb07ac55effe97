"""The files of a training Space for one run: exactly .gitattributes, README.md,
Dockerfile, app.py and train.py. The run config reaches the Space as a variable, so the
files (and the image built from them) are the same for every run of a runner version.

What runs in the Space is the engine's (`SpaceApp`: its app, its image, a line for the
README); train.py always ships, used or not, so that every Space holds the same five files
and one policy checks them all.

Every rendered README.md carries the tag `adapter-gitops-trainer` in its front matter: the
mark that a Space is the runner's, which a sync may wipe and configure (see sync.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner.runs.run_id import TRAIN_SCRIPT
from runner.space import image

HERE = Path(__file__).parent

GITATTRIBUTES = """\
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
"""


RUNNER_TAG = "adapter-gitops-trainer"
# Where the Hub reads a card's metadata: a `---` block at the very start of README.md.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class SpaceApp:
    """What an engine runs in the Space."""

    template: str
    """The app.py template, a file beside this module."""
    dockerfile: str
    about: str = ""
    """A line the README adds on how the Space trains; empty for none."""


def render_space(adapter: str, app: SpaceApp) -> dict[str, str]:
    return {
        ".gitattributes": GITATTRIBUTES,
        "README.md": _readme(adapter, app.about),
        "Dockerfile": app.dockerfile,
        "app.py": (HERE / app.template).read_text(encoding="utf-8"),
        "train.py": TRAIN_SCRIPT.read_text(encoding="utf-8"),
    }


def _readme(adapter: str, about: str) -> str:
    return (
        "---\n"
        f"title: trainer for {adapter}\n"
        "sdk: docker\n"
        f"app_port: {image.APP_PORT}\n"
        "pinned: false\n"
        f"tags:\n- {RUNNER_TAG}\n"
        "---\n\n"
        f"Training Space for `adapters/{adapter}`, rendered by the adapters repository's runner.\n"
        f"{about}"
        "Do not edit it by hand: every sync restores exactly these five files.\n"
    )


def made_by_runner(readme: str) -> bool:
    """Whether a Space's README.md carries the runner's tag in its front matter."""
    match = _FRONT_MATTER.match(readme)
    if match is None:
        return False
    try:
        metadata = yaml.safe_load(match.group(1))
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        return False  # someone else's README, however it is broken, is not ours
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return isinstance(tags, list) and RUNNER_TAG in tags


def dockerfile(base_image: str, *installs: str) -> str:
    """An image FROM `base_image` with one `pip install` layer per entry of `installs`."""
    # Models and data are downloaded when the run starts, never baked into the image.
    return (
        f"FROM {base_image}\n"
        "ENV PYTHONUNBUFFERED=1 HF_HUB_DISABLE_TELEMETRY=1 HF_HOME=/tmp/hf\n"
        + "".join(f"RUN {image.PIP_INSTALL} {packages}\n" for packages in installs)
        + "WORKDIR /app\n"
        "COPY app.py train.py /app/\n"
        f"EXPOSE {image.APP_PORT}\n"
        'CMD ["python", "app.py"]\n'
    )
