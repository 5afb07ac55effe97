"""The `space` backend: the training Space we own runs the engine's app; the runner renders
it (policy-checked), syncs it, configures it, starts it and watches it to its end."""

from __future__ import annotations

from runner.backends.base import Ended, EventSink, Launch
from runner.engines import engine_for
from runner.errors import RunnerError
from runner.hub.client import HubClient
from runner.policy.loading import Policies
from runner.runs.config import dumps
from runner.runs.progress import parse_progress
from runner.space.sync import (
    SPACE_TOKEN_SECRET,
    Limits,
    SpaceRun,
    Watch,
    checked_render,
    describe_failure,
    space_id_for,
    start_space,
    sync_space,
    watch_space,
)
from runner.specs.bundle import AdapterBundle
from runner.train.train import RunConfig


class SpaceBackend:
    name = "space"
    on_this_machine = False

    def written_repos(self, bundle: AdapterBundle) -> list[tuple[str, str]]:
        return [("Space", space_id_for(bundle))]

    def check(self, bundle: AdapterBundle) -> None:
        pass  # any spec the schema accepts trains here

    def launch(self, run: Launch) -> Ended:
        space = run_in_space(
            run.bundle, run.policies, run.client, run.config, run.limits, run.on_event
        )
        # A finished Space's run log is gone from the Hub: its tail, as the watch read it.
        detail = describe_failure(space)
        return Ended(None if space.finished else detail, detail)


SPACE = SpaceBackend()


def space_variables(bundle: AdapterBundle, config: RunConfig, space_id: str) -> dict[str, str]:
    """The run config, and what the engine adds to it."""
    engine = engine_for(bundle)
    return {"RUN_CONFIG": dumps(config), **engine.space_variables(bundle, config, space_id)}


def run_in_space(
    bundle: AdapterBundle,
    policies: Policies,
    client: HubClient,
    config: RunConfig,
    limits: Limits,
    on_event: EventSink,
) -> SpaceRun:
    """Render (policy-checked), sync, configure, start and watch the training Space."""
    space_id = space_id_for(bundle)
    app = engine_for(bundle).space_app
    files = checked_render(bundle, policies, space_id, app)
    token = client.environment().get("HF_TOKEN")
    if not token:
        raise RunnerError(
            "the Space needs a token to push its results: set HF_TOKEN to a token with write "
            f"access to {bundle.adapter.publish.repo_id.split('/')[0]}"
        )
    removed = sync_space(
        client,
        space_id,
        files,
        secrets={SPACE_TOKEN_SECRET: token},
        variables=space_variables(bundle, config, space_id),
    )
    on_event({"stage": "synced", "space": space_id, "removed": removed})
    start_space(client, space_id, bundle.adapter.training.hardware)
    watch = Watch(
        limits=limits,
        on_stage=lambda stage: on_event({"stage": f"space {stage}"}),
        on_log=lambda line: on_event(parse_progress(line) or {"log": line}),
    )
    return watch_space(client, space_id, watch)
