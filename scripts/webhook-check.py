#!/usr/bin/env python3
"""Webhook signatures checked with a reference implementation: the `standardwebhooks`
package from PyPI (not our code) verifies every delivery of a scripted sequence.

The real binary runs on 127.0.0.1:0 over a temp data dir (private targets allowed); a
receiver on loopback records each delivery (headers, raw body) and answers 204. One
webhook for every event; then a ping, an upload (JPEG), its variants, a PATCH of its alt,
a folder created and deleted, and the item deleted. Checked: every delivery verifies;
the same body with one byte changed does not; each expected event arrived once with its
payload, an item's events in order; the deliveries log lists each attempt with 204; once
the webhook is deleted nothing more arrives. Server and receiver are stopped by PID at
the end, pass or fail.

    scripts/webhook-check.py [target/debug/darkroom]

Run by scripts/contract-checks.sh with target/pytools's Python (it installs the package);
run with another Python, it re-runs itself with that one.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hooklib  # noqa: E402  (scripts/hooklib.py: receiver, read_body, request)

ROOT = Path(__file__).resolve().parent.parent
try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    venv = ROOT / "target" / "pytools" / "bin" / "python"
    if venv.exists() and not os.environ.get("WEBHOOK_CHECK_REEXEC"):
        os.environ["WEBHOOK_CHECK_REEXEC"] = "1"
        os.execv(str(venv), [str(venv), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit("webhook check: the standardwebhooks package is missing "
             "(scripts/contract-checks.sh installs it into target/pytools)")

PHOTO = ROOT / "tests" / "fixtures" / "jpeg" / "grace_hopper_512x600.jpg"
DEADLINE = 30  # seconds: for the server to start, the image to be ready, the events to arrive
FOLDER = "/webhook-check"
EXPECTED = ["webhook.ping", "media.created", "media.ready", "media.updated",
            "folder.created", "folder.deleted", "media.deleted"]


class Failed(Exception):
    pass


def ensure(condition, what):
    if not condition:
        raise Failed(what)


class Server:
    """`darkroom serve` on 127.0.0.1:0, private webhook targets allowed; log to a file."""

    def __init__(self, binary, data_dir, log_path):
        env = dict(os.environ, DARKROOM_DATA_DIR=str(data_dir), DARKROOM_LISTEN="127.0.0.1:0",
                   RUST_LOG="info", DARKROOM_SERVER__DRAIN_SECS="0",
                   DARKROOM_WEBHOOKS__ALLOW_PRIVATE_TARGETS="true")
        env.pop("RUST_LOG_STYLE", None)
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        started, self.base = time.time(), None
        for line in self.proc.stderr:
            self.log.write(line)
            if "addr=" in line:
                self.base = "http://" + line.split("addr=")[1].split()[0].strip('"')
                break
            if time.time() - started > DEADLINE:
                break
        if self.base is None:
            self.stop()
            raise Failed(f"the server did not start; see {log_path}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)
            self.log.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()


def parsed(answer):
    """(status, raw bytes) from hooklib -> (status, parsed JSON or the raw bytes)."""
    status, raw = answer
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def request(base, method, path, key=None, body=None, content_type=None):
    """(status, parsed JSON or raw bytes)."""
    return parsed(hooklib.request(base, method, path, key, body, content_type))


def send_json(base, method, path, key, value):
    return parsed(hooklib.send_json(base, method, path, key, value))


def upload(base, key, path):
    boundary = "webhookcheckboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{path.name}\"\r\n\r\n").encode() + path.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    return request(base, "POST", "/api/v1/media", key, body,
                   f"multipart/form-data; boundary={boundary}")


def wait_for(what, predicate, seconds=DEADLINE):
    started = time.time()
    while True:
        value = predicate()
        if value:
            return value
        if time.time() - started > seconds:
            raise Failed(f"{what} within {seconds}s")
        time.sleep(0.1)


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def subject(event):
    data = event.get("data") or {}
    return data.get("id") or data.get("path") or data.get("webhookId")


def run(base, key, receiver):
    """The scripted sequence and every check; returns the summary."""
    # The endpoint: created with its secret (shown once), listed without it.
    status, body = send_json(base, "POST", "/api/v1/webhooks", key,
                             {"url": receiver.url, "events": ["*"], "description": "webhook-check"})
    ensure(status == 201, f"create webhook: {status} {body!r}")
    hook = body["data"]
    ensure(hook["id"].startswith("wh_") and hook["secret"].startswith("whsec_"),
           f"webhook id/secret: {hook!r}")
    ensure(hook["enabled"] is True and hook["events"] == ["*"] and hook["url"] == receiver.url,
           f"webhook as created: {hook!r}")
    webhook = Webhook(hook["secret"])
    status, body = request(base, "GET", "/api/v1/webhooks", key)
    listed = [h for h in body["data"] if h["id"] == hook["id"]] if status == 200 else []
    ensure(len(listed) == 1 and "secret" not in listed[0], f"webhook list: {status} {body!r}")

    # The sequence.
    status, body = request(base, "POST", f"/api/v1/webhooks/{hook['id']}/test", key)
    ensure(status == 202 and body["data"]["eventId"], f"test ping: {status} {body!r}")
    ping_id = body["data"]["eventId"]
    status, body = upload(base, key, PHOTO)
    ensure(status == 201 and len(body["data"]) == 1, f"upload: {status} {body!r}")
    item_id = body["data"][0]["id"]

    def ready():
        status, body = request(base, "GET", f"/api/v1/media/{item_id}", key)
        ensure(status == 200, f"GET item: {status}")
        ensure(body["data"].get("status") != "failed", f"the image failed: {body!r}")
        return body["data"] if body["data"].get("status") == "ready" else None
    wait_for("the image was not ready", ready)
    status, body = send_json(base, "PATCH", f"/api/v1/media/{item_id}", key, {"alt": "webhook check"})
    ensure(status == 200, f"PATCH alt: {status} {body!r}")
    status, body = send_json(base, "POST", "/api/v1/media/folders", key, {"path": FOLDER})
    ensure(status == 201, f"create folder: {status} {body!r}")
    status, body = request(base, "DELETE", f"/api/v1/media/folders?path={FOLDER}", key)
    ensure(status == 200, f"delete folder: {status} {body!r}")
    status, body = request(base, "GET", f"/api/v1/media/{item_id}", key)
    ensure(status == 200, f"GET item: {status}")
    last_view = body["data"]
    status, body = request(base, "DELETE", f"/api/v1/media/{item_id}", key)
    ensure(status in (200, 204), f"delete item: {status} {body!r}")

    def arrived():
        types = [json.loads(b).get("type") for _, b, _ in receiver.deliveries()]
        return all(t in types for t in EXPECTED)
    try:
        wait_for("not every expected event arrived", arrived)
    except Failed as e:
        types = [json.loads(b).get("type") for _, b, _ in receiver.deliveries()]
        raise Failed(f"{e}: missing {[t for t in EXPECTED if t not in types]}, got {types}")
    time.sleep(1)  # a late duplicate or an extra event would show up now
    got = receiver.deliveries()

    # Every delivery verifies with the reference implementation; a changed byte does not.
    events = []
    for headers, body, path in got:
        ensure(path == "/hook", f"delivered to {path}")
        try:
            event = webhook.verify(body, headers)
        except WebhookVerificationError as e:
            raise Failed(f"delivery {headers.get('webhook-id')} does not verify ({e}): "
                         f"headers {headers!r}, body {body[:300]!r}")
        ensure(headers.get("content-type", "").startswith("application/json"),
               f"content type {headers.get('content-type')!r}")
        ensure(set(event) == {"type", "timestamp", "data"}, f"payload keys {sorted(event)}")
        parse_time(event["timestamp"])
        ensure(abs(int(headers["webhook-timestamp"]) - time.time()) < 300,
               f"webhook-timestamp {headers['webhook-timestamp']}")
        events.append((headers["webhook-id"], event))
    headers, body, _ = got[0]
    for at in (0, len(body) // 2, len(body) - 1):
        tampered = bytearray(body)
        tampered[at] ^= 0x01
        try:
            webhook.verify(bytes(tampered), headers)
        except WebhookVerificationError:
            continue
        raise Failed(f"a body with byte {at} changed still verifies")
    try:
        Webhook("whsec_" + "QUJD" * 8).verify(body, headers)
        raise Failed("a delivery verifies under another secret")
    except WebhookVerificationError:
        pass

    # Each expected event once, with its payload; the item's and the folder's in order.
    ids = [i for i, _ in events]
    ensure(len(set(ids)) == len(ids), f"a webhook-id arrived twice: {ids}")
    types = [e["type"] for _, e in events]
    ensure(sorted(types) == sorted(EXPECTED), f"events {types}, expected each of {EXPECTED} once")
    by_type = {e["type"]: (i, e["data"]) for i, e in events}
    ping_hid, ping = by_type["webhook.ping"]
    ensure(ping == {"webhookId": hook["id"]}, f"ping data {ping!r}")
    ensure(ping_hid == ping_id, f"ping webhook-id {ping_hid}, the test answered {ping_id}")
    created = by_type["media.created"][1]
    ensure(created["id"] == item_id and created["url"] == last_view["url"],
           f"media.created data {created!r}")
    ensure(set(created) <= set(last_view) | {"variants", "thumbhash", "dominantColor"},
           f"media.created keys {sorted(created)} vs the item view's {sorted(last_view)}")
    ready_data = by_type["media.ready"][1]
    ensure(ready_data["id"] == item_id and ready_data.get("status") == "ready"
           and ready_data.get("variants") and ready_data.get("thumbhash"),
           f"media.ready data {ready_data!r}")
    ensure(ready_data["variants"] == last_view["variants"],
           f"media.ready variants {ready_data['variants']!r} vs {last_view['variants']!r}")
    updated = by_type["media.updated"][1]
    ensure(updated["id"] == item_id and updated.get("changed") == ["alt"]
           and updated.get("alt") == "webhook check", f"media.updated data {updated!r}")
    deleted = by_type["media.deleted"][1]
    ensure(set(deleted) == set(last_view), f"media.deleted keys {sorted(deleted)}, "
           f"the item view's {sorted(last_view)}")
    differ = [k for k in last_view if deleted[k] != last_view[k]]
    ensure(not differ, f"media.deleted differs from the item as it was in {differ}: "
           f"{ {k: (deleted[k], last_view[k]) for k in differ} }")
    for kind in ("folder.created", "folder.deleted"):
        ensure(by_type[kind][1] == {"path": FOLDER}, f"{kind} data {by_type[kind][1]!r}")
    item_order = [e["type"] for _, e in events if subject(e) == item_id]
    ensure(item_order == ["media.created", "media.ready", "media.updated", "media.deleted"],
           f"the item's events arrived as {item_order}")
    folder_order = [e["type"] for _, e in events if subject(e) == FOLDER]
    ensure(folder_order == ["folder.created", "folder.deleted"],
           f"the folder's events arrived as {folder_order}")

    # The deliveries log: every attempt, newest first, with the 204.
    def logged():
        status, body = request(base, "GET", f"/api/v1/webhooks/{hook['id']}/deliveries", key)
        ensure(status == 200, f"deliveries: {status} {body!r}")
        done = {d["eventId"] for d in body["data"] if d["status"] == 204}
        return body["data"] if set(ids) <= done else None
    try:
        log = wait_for("the deliveries log", logged, 10)
    except Failed:
        status, body = request(base, "GET", f"/api/v1/webhooks/{hook['id']}/deliveries", key)
        raise Failed(f"the deliveries log lacks a 204 for some of {ids}: {body!r}")
    for d in log:
        ensure({"at", "eventId", "type", "attempt", "status", "latencyMs", "error"} <= set(d),
               f"delivery entry {d!r}")
        ensure(d["status"] == 204 and d["error"] is None and d["attempt"] == 1
               and isinstance(d["latencyMs"], (int, float)), f"delivery entry {d!r}")
        ensure(dict(events).get(d["eventId"], {}).get("type") == d["type"], f"delivery entry {d!r}")
    times = [parse_time(d["at"]) for d in log]
    ensure(times == sorted(times, reverse=True), f"deliveries not newest first: {log!r}")

    # Deleted: gone from the list, and nothing more is delivered.
    status, body = request(base, "DELETE", f"/api/v1/webhooks/{hook['id']}", key)
    ensure(status == 200 and body == {"success": True}, f"delete webhook: {status} {body!r}")
    status, body = request(base, "GET", "/api/v1/webhooks", key)
    ensure(status == 200 and all(h["id"] != hook["id"] for h in body["data"]),
           f"webhook list after delete: {status} {body!r}")
    status, _ = send_json(base, "POST", "/api/v1/media/folders", key, {"path": FOLDER + "-after"})
    ensure(status == 201, f"create folder: {status}")
    time.sleep(3)
    late = receiver.deliveries()[len(got):]
    ensure(not late, f"delivered after the webhook was deleted: {[b[:200] for _, b, _ in late]}")
    return f"{len(got)} deliveries verified with standardwebhooks, {len(log)} attempts logged"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "debug" / "darkroom")
    work = Path(tempfile.mkdtemp(prefix="darkroom-webhook-check-"))
    data_dir, log_path = work / "data", work / "server.log"
    server = receiver = None
    ok = False
    try:
        out = subprocess.run([binary, "keys", "create", "--scope", "admin", "--name", "webhook-check"],
                             env=dict(os.environ, DARKROOM_DATA_DIR=str(data_dir)),
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"keys create: {out.stderr.strip()}")
        key = out.stdout.strip()
        receiver = hooklib.Receiver(status=204)  # records (headers, body, path)
        server = Server(binary, data_dir, log_path)
        summary = run(server.base, key, receiver)
        ok = True
        print(f"webhook check: passed ({summary})")
    except Failed as e:
        print(f"webhook check: FAILED: {e}")
    except Exception as e:  # an answer not shaped as documented
        print(f"webhook check: FAILED: {type(e).__name__}: {e}")
    finally:
        if server:
            server.stop()
        if receiver:
            receiver.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"webhook check: server log kept in {log_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
