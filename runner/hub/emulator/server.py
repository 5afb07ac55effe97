"""The emulator as a server: uvicorn in a background thread for tests (`EmulatorServer`), or
blocking in the foreground for `runner hub serve` (`serve`). Bound to 127.0.0.1 only."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner.errors import InputError
from runner.hub.emulator import (
    access,
    routes_control,
    routes_discussions,
    routes_files,
    routes_jobs,
    routes_legacy_ids,
    routes_repos,
    routes_spaces,
    routes_unsupported,
)
from runner.hub.emulator.accounts import Accounts, AccountsSpec
from runner.hub.emulator.context import Context
from runner.hub.emulator.errors import (
    HubError,
    HubJSONResponse,
    error_response,
    http_error_handler,
    hub_error_handler,
    invalid_request,
    request_id_for,
)
from runner.hub.emulator.faults import FaultInjector, FaultMiddleware, FaultMode, RequestLog
from runner.hub.emulator.jobs import JobManager, ScriptedOutcome
from runner.hub.emulator.limits import BodyLimitMiddleware
from runner.hub.emulator.space_settings import default_settings
from runner.hub.emulator.spaces import Outcome, SpaceManager
from runner.hub.emulator.storage import REPO_TYPES, Operation, Store, check_path

HOST = "127.0.0.1"


def build_context(data_dir: Path) -> Context:
    data_dir = Path(data_dir)
    store = Store(data_dir)
    return Context(
        store=store,
        accounts=Accounts(data_dir),
        spaces=SpaceManager(store, data_dir / "spaces"),
        faults=FaultInjector(),
        log=RequestLog(),
        jobs=JobManager(data_dir / "jobs"),
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    # The Hub answers a malformed body with 400 and an `error` message, not FastAPI's 422.
    assert isinstance(exc, RequestValidationError)
    return error_response(invalid_request(exc))


class RequestIdMiddleware:
    """An `X-Request-Id` on every answer, errors included, as the Hub sends: huggingface_hub
    puts it in every error message, and it is what a user quotes to support."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", []))
        trace = sent.get(b"x-amzn-trace-id", b"").decode("latin-1")
        given = sent.get(b"x-request-id", b"").decode("latin-1")
        request_id = request_id_for(given, trace).encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", request_id)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def build_app(ctx: Context) -> ASGIApp:
    app = FastAPI(
        title="Hugging Face Hub emulator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=HubJSONResponse,
    )
    app.state.ctx = ctx
    app.add_exception_handler(HubError, hub_error_handler)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    # The catch-all download routes (`/{namespace}/{name}/resolve/...`) come last, then the
    # routes of repo ids without a namespace, which a two-part id must never reach. Features
    # the emulator lacks come before the repo routes that would otherwise catch their paths.
    for module in (
        routes_control,
        routes_unsupported,
        routes_jobs,
        routes_repos,
        access,
        routes_spaces,
        routes_discussions,
        routes_files,
        routes_legacy_ids,
    ):
        app.include_router(module.router)
    # Faults act first (on the raw connection), then every answer gets its request id, then
    # bodies are bounded, then routes run. The id goes inside the faults: a reset reaches
    # uvicorn's transport through the `send` it was given, which no wrapper may replace.
    return FaultMiddleware(RequestIdMiddleware(BodyLimitMiddleware(app)), ctx.faults, ctx.log)


def _bind(port: int) -> socket.socket:
    """Bind before uvicorn starts, so that port 0 gives a known port up front."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, a response written in two parts waits on
    # the client's delayed ACK (Nagle), about 40 ms per request on a kept-alive connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise InputError(
            f"Cannot listen on {HOST}:{port} ({exc.strerror}); choose another port, or 0 for "
            "any free one"
        ) from exc
    return sock


def _server(app: ASGIApp, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        http="h11",  # the fault middleware reaches h11's per-request transport to reset it
        ws="none",
        lifespan="off",
        proxy_headers=False,
        log_level="warning",
        access_log=False,
        date_header=False,  # the fault middleware sends an exact one
        timeout_graceful_shutdown=1,  # don't wait on connections a fault is holding
    )
    return uvicorn.Server(config)


class EmulatorServer:
    """A local Hub that the real `huggingface_hub` client talks to through `HF_ENDPOINT`.

    with EmulatorServer(tmp_path / "hub") as hub:
        env = {"HF_ENDPOINT": hub.endpoint, ...}
    """

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self._ctx: Context | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("The emulator is not running: use `with EmulatorServer(...)`")
        return self._ctx

    def start(self) -> EmulatorServer:
        ctx = build_context(self.data_dir)
        self._socket = _bind(self.port)
        self.port = int(self._socket.getsockname()[1])
        ctx.spaces.endpoint = ctx.jobs.endpoint = self.endpoint
        self._ctx = ctx
        self._server = _server(build_app(ctx), self.port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The Hub emulator did not start on {self.endpoint}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.spaces.stop_all()
            self._ctx.jobs.stop_all()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._ctx = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test controls ----------------------------------------------------------------------

    def fail(
        self,
        method: str | None = None,
        path: str = ".*",
        *,
        status: int = 500,
        times: int | None = 1,
        retry_after: int | None = None,
        mode: FaultMode = "status",
        delay: float = 30.0,
    ) -> dict[str, Any]:
        """Make the next `times` requests matching `method` (None: any) and the regex `path`
        (searched in the URL path) fail: with `status` (and `Retry-After` if given), or with
        `mode="reset"` (connection closed, no response) or `mode="timeout"` (held `delay`
        seconds, then closed). `times=None` fails every matching request until cleared."""
        return self.ctx.faults.add(
            method=method,
            path=path,
            mode=mode,
            status=status,
            times=times,
            retry_after=retry_after,
            delay=delay,
        ).to_json()

    def clear_faults(self) -> None:
        self.ctx.faults.clear()

    def add_accounts(self, accounts: dict[str, Any]) -> None:
        """Register users and tokens: `{"users": [{"name", "orgs": {org: role}}], "tokens":
        [{"token", "user", "role": read|write|fineGrained, "scopes": [{"entity",
        "permissions"}]}]}` (the body of `POST /_emulator/accounts`)."""
        self.ctx.accounts.add(AccountsSpec.model_validate(accounts))

    def ask_access(self, repo_id: str, user: str, *, repo_type: str = "model") -> str:
        """`user` accepts a gated repo's terms (on the Hub, a click on its page): the request's
        status, "accepted" at once when the repo is gated "auto", else "pending"."""
        repo = self.ctx.store.get(repo_type, repo_id)
        if repo is None:
            raise InputError(f"No {repo_type} repo {repo_id!r} in the emulator")
        return access.ask_access(self.ctx, repo, user)

    def script_space(
        self,
        repo_id: str,
        outcome: Outcome,
        *,
        stage: str = "BUILDING",
        times: int | None = None,
    ) -> None:
        """Decide how the Space's next starts end, instead of running its app: BUILD_ERROR,
        RUNTIME_ERROR, or `hang` in `stage` (BUILDING or APP_STARTING). `times=None`: every
        start until the emulator stops."""
        self.ctx.spaces.script(repo_id, outcome, stage, times)

    def script_jobs(
        self,
        outcome: ScriptedOutcome,
        *,
        namespace: str = "",
        label: str | None = None,
        times: int | None = 1,
        lines: int = 1,
    ) -> None:
        """How the next `times` jobs of `namespace` (or with the `key=value` label) go:
        "scheduling" (never start), "error" (ERROR at start) or "drop_logs" (their first log
        stream closes after `lines` lines while the job goes on). `times=None`: every one."""
        self.ctx.jobs.script(namespace, outcome, label=label, times=times, lines=lines)

    def job_launches(self) -> list[dict[str, Any]]:
        """Every job created so far: id, namespace, labels, flavor, createdAt."""
        return self.ctx.jobs.launches()

    def requests(self) -> list[dict[str, Any]]:
        """Every request so far: method, path, query, status, fault, and headers with any
        Authorization value redacted."""
        return self.ctx.log.entries()

    def clear_requests(self) -> None:
        self.ctx.log.clear()

    def runtime(self, repo_id: str) -> dict[str, Any]:
        repo = self.ctx.store.get("space", repo_id)
        if repo is None:
            raise KeyError(f"No Space {repo_id}")
        return self.ctx.spaces.runtime(repo)

    def seed(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        repo_type: str = "model",
        private: bool = False,
        message: str = "Seed from the Hub emulator",
        tag: str | None = None,
        commit_id: str | None = None,
    ) -> str:
        """Put files into a repo (created if missing) without going through HTTP or the
        namespace check: for base models and data that belong to others on the real Hub.
        `commit_id` mirrors a public repo at the commit id it has there. Returns the new
        commit id."""
        if repo_type not in REPO_TYPES:
            raise ValueError(f"repo_type must be one of {REPO_TYPES}")
        store = self.ctx.store
        repo = store.get(repo_type, repo_id)
        if repo is None:
            space = default_settings("docker") if repo_type == "space" else None
            repo = store.create(repo_type, repo_id, private=private, space=space)
        operations: list[Operation] = [
            (
                "add",
                check_path(path),
                store.blobs.put(data if isinstance(data, bytes) else data.read_bytes()),
            )
            for path, data in files.items()
        ]
        commit = store.commit(
            repo, "main", operations, title=message, author="system", commit_id=commit_id
        )
        if tag is not None:
            store.create_tag(repo, tag, commit.id)
        if repo.type == "space":  # built as the README says, like a pushed Space
            self.ctx.spaces.on_commit(repo)
        return commit.id


def serve(data_dir: Path, port: int) -> None:
    """Run the emulator in the foreground until interrupted (Ctrl-C), then stop every Space."""
    ctx = build_context(Path(data_dir))
    sock = _bind(port)
    endpoint = f"http://{HOST}:{sock.getsockname()[1]}"
    ctx.spaces.endpoint = ctx.jobs.endpoint = endpoint
    server = _server(build_app(ctx), int(sock.getsockname()[1]))
    sys.stderr.write(f"Hub emulator on {endpoint} (data: {data_dir}); HF_ENDPOINT={endpoint}\n")
    # uvicorn shuts down cleanly on SIGINT/SIGTERM, then re-raises the signal to the handler
    # that was there before; for SIGTERM that is the default one, which would kill this
    # process before the Space processes (in their own sessions) are stopped.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # the way serve() is meant to end
    finally:
        ctx.spaces.stop_all()
        ctx.jobs.stop_all()
        sock.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
