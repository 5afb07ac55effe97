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

STATE = {"stage": "starting", "returncode": None, "started_at": time.time()}


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
    threading.Thread(target=run_training, daemon=True).start()
    port = int(os.environ.get("PORT", "7860"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
