"""The files of a training Space for one run: exactly .gitattributes, README.md,
Dockerfile, app.py and train.py. The run config reaches the Space as a variable, so the
files (and the image built from them) are the same for every run of a runner version.

Engine `trl` runs train.py. Engine `autotrain` runs AutoTrain Advanced from its own pinned
image, started by a different app.py; train.py still ships (unused) so that every Space
holds the same five files and one policy checks both.

Every rendered README.md carries the tag `adapter-gitops-trainer` in its front matter: the
mark that a Space is the runner's, which a sync may wipe and configure (see sync.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml

from runner.space import image

HERE = Path(__file__).parent
TRAIN_SCRIPT = HERE.parent / "train" / "train.py"

GITATTRIBUTES = """\
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
"""


RUNNER_TAG = "adapter-gitops-trainer"
# Where the Hub reads a card's metadata: a `---` block at the very start of README.md.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)

Engine = Literal["trl", "autotrain"]
APP_TEMPLATES: dict[Engine, str] = {
    "trl": "app_template.py",
    "autotrain": "autotrain_app_template.py",
}


def render_space(adapter: str, engine: Engine = "trl") -> dict[str, str]:
    dockerfile = _autotrain_dockerfile() if engine == "autotrain" else _dockerfile()
    return {
        ".gitattributes": GITATTRIBUTES,
        "README.md": _readme(adapter, engine),
        "Dockerfile": dockerfile,
        "app.py": (HERE / APP_TEMPLATES[engine]).read_text(encoding="utf-8"),
        "train.py": TRAIN_SCRIPT.read_text(encoding="utf-8"),
    }


def _readme(adapter: str, engine: Engine) -> str:
    runs = ""
    if engine == "autotrain":
        runs = f"It trains with AutoTrain Advanced {image.AUTOTRAIN_VERSION} (`llm-sft`).\n"
    return (
        "---\n"
        f"title: trainer for {adapter}\n"
        "sdk: docker\n"
        f"app_port: {image.APP_PORT}\n"
        "pinned: false\n"
        f"tags:\n- {RUNNER_TAG}\n"
        "---\n\n"
        f"Training Space for `adapters/{adapter}`, rendered by the adapters repository's runner.\n"
        f"{runs}"
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


def _dockerfile() -> str:
    # Models and data are downloaded when the run starts, never baked into the image.
    return (
        f"FROM {image.BASE_IMAGE}\n"
        "ENV PYTHONUNBUFFERED=1 HF_HUB_DISABLE_TELEMETRY=1 HF_HOME=/tmp/hf\n"
        f"RUN pip install --no-cache-dir {image.TORCH} --index-url {image.TORCH_INDEX}\n"
        f"RUN pip install --no-cache-dir {' '.join(image.PACKAGES)}\n"
        "WORKDIR /app\n"
        "COPY app.py train.py /app/\n"
        f"EXPOSE {image.APP_PORT}\n"
        'CMD ["python", "app.py"]\n'
    )


def _autotrain_dockerfile() -> str:
    # AutoTrain brings its own pinned stack (transformers, trl, peft, bitsandbytes,
    # huggingface_hub); installing ours next to it would break one or the other.
    return (
        f"FROM {image.AUTOTRAIN_BASE_IMAGE}\n"
        "ENV PYTHONUNBUFFERED=1 HF_HUB_DISABLE_TELEMETRY=1 HF_HOME=/tmp/hf\n"
        f"RUN pip install --no-cache-dir {image.AUTOTRAIN_PACKAGE}\n"
        "WORKDIR /app\n"
        "COPY app.py train.py /app/\n"
        f"EXPOSE {image.APP_PORT}\n"
        'CMD ["python", "app.py"]\n'
    )
