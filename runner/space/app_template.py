"""Space entry point, rendered as app.py: health and status on $PORT, the training run
started once at boot, and the Space paused at the end so no GPU idles.

Standard library and huggingface_hub only: it runs inside the Space image, not the runner.
"""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATE = {"stage": "starting", "returncode": None, "started_at": time.time()}
HUB_TIMEOUT_S = 60.0  # of silence (connecting, or between bytes): a moving transfer never ends


def bound_hub_requests() -> None:
    """Give every huggingface_hub request of this app a timeout. It sends them with none, so
    a Hub that stopped answering would keep this Space, and its GPU bill, running forever."""
    import huggingface_hub

    default = huggingface_hub.get_session()
    client_class, follow = type(default), default.follow_redirects
    hooks = {**default.event_hooks, "request": [*default.event_hooks["request"], fill_timeouts]}
    huggingface_hub.set_client_factory(
        lambda: client_class(event_hooks=hooks, follow_redirects=follow, timeout=None)
    )


def fill_timeouts(request: Any) -> None:
    # huggingface_hub passes `timeout=None` on most calls, which overrides a client's default.
    asked = request.extensions.get("timeout") or {}
    request.extensions["timeout"] = {
        kind: HUB_TIMEOUT_S if asked.get(kind) is None else asked[kind]
        for kind in ("connect", "read", "write", "pool")
    }


def run_training() -> None:
    STATE["stage"] = "training"
    code = subprocess.call([sys.executable, "train.py"], env=os.environ)
    STATE.update(stage="finished" if code == 0 else "failed", returncode=code)
    pause_space()


def pause_space() -> None:
    from huggingface_hub import HfApi

    space = os.environ.get("SPACE_ID")
    if space:
        HfApi(token=os.environ.get("HF_TOKEN")).pause_space(space)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body, status = b"ok", 200
        elif self.path == "/status":
            body, status = json.dumps(STATE).encode(), 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    bound_hub_requests()
    threading.Thread(target=run_training, daemon=True).start()
    port = int(os.environ.get("PORT", "7860"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
