"""A local HTTP listener for hook tests: records every request and answers 204 (or the status
given with --status). GET /_requests returns what was recorded as JSON. Prints "PORT <n>".
Each record has the body's size and SHA-256, and for a multipart form its parts (parsed by
Python's email package: name, filename, type, size, sha256, and the text of fields)."""
import email.parser
import email.policy
import hashlib
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
        raw = self.rfile.read(length) if length else b""
        entry = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                 "body": raw.decode("utf-8", "replace"), "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        content_type = self.headers.get("Content-Type") or ""
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
            parts = []
            for part in message.iter_parts():
                data = part.get_payload(decode=True) or b""
                parts.append({"name": part.get_param("name", header="content-disposition"), "filename": part.get_filename(),
                              "type": part.get_content_type(), "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                              "text": data.decode("utf-8", "replace") if part.get_filename() is None else None})
            entry["parts"] = parts
        with lock:
            recorded.append(entry)

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

    def do_PUT(self):
        self.record()
        self.answer(STATUS)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
