"""A local HTTP listener for hook tests: records every request and answers 204 (or the status
given with --status). GET /_requests returns what was recorded as JSON. Prints "PORT <n>"."""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import os


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lifeline  # noqa: E402,F401  (exits with the test process)


STATUS = int(sys.argv[sys.argv.index("--status") + 1]) if "--status" in sys.argv else 204
recorded = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        with lock:
            recorded.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_requests":
            with lock:
                body = json.dumps(recorded).encode()
            return self.answer(200, body)
        self.record()
        self.answer(200, b'{"hello":"hook"}')

    def do_POST(self):
        self.record()
        self.answer(STATUS)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
