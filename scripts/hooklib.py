"""Shared by scripts/crash-test.py and scripts/webhook-check.py: a webhook receiver on
loopback and the HTTP client both use against the real binary.

- `read_body(handler)`: a request's body as sent (Content-Length or chunked), None if it
  was cut short;
- `Receiver`: a webhook endpoint on 127.0.0.1:0 (HTTP/1.1) that records every delivery
  (headers with lowercase names, the raw body, the path) and answers with a set status;
- `request(...)` and `send_json(...)`: (status, raw bytes) over urllib; connection
  failures raise OSError.

Standard library only; loopback only. Import it with the scripts directory on sys.path.
"""

import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def read_body(handler):
    """A request's body as sent (Content-Length or chunked); None if it was cut short."""
    try:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunk = handler.rfile.read(size)
                if len(chunk) < size:
                    return None
                chunks.append(chunk)
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length", 0))
        body = handler.rfile.read(length)
        return body if len(body) == length else None
    except (OSError, ValueError):
        return None


class _Server(ThreadingHTTPServer):
    """A connection the sender's death cut (the crash rounds' kill -9) is no error."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def raw_delivery(headers, body, path):
    """The default record of a delivery: (headers dict, body bytes, path)."""
    return headers, body, path


class Receiver:
    """A webhook endpoint on 127.0.0.1:0 (HTTP/1.1) at `self.url` (path /hook).

    Every POST whose body arrived whole is recorded, duplicates included: `parse(headers,
    body, path)` (headers with lowercase names, the raw body) makes the entry appended to
    the list `deliveries()` returns; by default the tuple (headers, body, path). It then
    answers `status`, with `Content-Length: 0` unless the status is 204 (no content). A
    body cut short (the sender died while sending) is not recorded: the connection closes.
    """

    def __init__(self, status=204, parse=raw_delivery):
        self.lock = threading.Lock()
        self.got = []
        self.status = status
        self.parse = parse
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = read_body(self)
                if body is None:  # cut short: the sender died while sending
                    self.close_connection = True
                    return
                receiver.record({k.lower(): v for k, v in self.headers.items()}, body, self.path)
                self.send_response(receiver.status)
                if receiver.status != 204:
                    self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = _Server(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def record(self, headers, body, path):
        entry = self.parse(headers, body, path)
        with self.lock:
            self.got.append(entry)

    def deliveries(self):
        """The entries recorded so far, in order of arrival (a copy of the list)."""
        with self.lock:
            return list(self.got)

    def stop(self):
        self.http.shutdown()
        self.http.server_close()


def request(base, method, path, key=None, body=None, content_type=None, timeout=15):
    """(status, bytes); connection failures (a killed server) raise OSError."""
    req = urllib.request.Request(base + path, data=body, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def send_json(base, method, path, key, value):
    """`request` with `value` as a JSON body: (status, bytes)."""
    return request(base, method, path, key, json.dumps(value).encode(), "application/json")
