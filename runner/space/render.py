"""The files of a training Space for one run: exactly .gitattributes, README.md,
Dockerfile, app.py and train.py. The run config reaches the Space as a variable, so the
files (and the image built from them) are the same for every run of a runner version."""

from __future__ import annotations

from pathlib import Path

from runner.space import image

HERE = Path(__file__).parent
TRAIN_SCRIPT = HERE.parent / "train" / "train.py"

GITATTRIBUTES = """\
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
"""


def render_space(adapter: str) -> dict[str, str]:
    return {
        ".gitattributes": GITATTRIBUTES,
        "README.md": _readme(adapter),
        "Dockerfile": _dockerfile(),
        "app.py": (HERE / "app_template.py").read_text(encoding="utf-8"),
        "train.py": TRAIN_SCRIPT.read_text(encoding="utf-8"),
    }


def _readme(adapter: str) -> str:
    return (
        "---\n"
        f"title: trainer for {adapter}\n"
        "sdk: docker\n"
        f"app_port: {image.APP_PORT}\n"
        "pinned: false\n"
        "---\n\n"
        f"Training Space for `adapters/{adapter}`, rendered by the adapters repository's runner.\n"
        "Do not edit it by hand: every sync restores exactly these five files.\n"
    )


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
