"""Apps for emulated docker Spaces in tests: the emulator runs them as processes."""

# Serves HTTP on $PORT (the README's app_port) in the background and waits until the
# emulator's start-up probe reached it, as a real Space app is reached once it listens; what
# follows it is the app's work.
AFTER_THE_PROBE = """\
import http.server, os, threading, time
from huggingface_hub import HfApi

probed = threading.Event()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        probed.set()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
probed.wait(30)
"""
