#!/usr/bin/env python3
"""Crash rounds: the real binary is killed (SIGKILL) at a random moment while workers
upload images and documents, PATCH, DELETE and create and remove folders; after each
restart every acknowledged effect must hold:

- every upload answered 201 is there, its original byte for byte what was stored;
- every PATCH answered 200 held (or the one in flight at the kill landed instead);
- every DELETE acknowledged held: the item and its files are gone;
- every folder created (or removed) with an acknowledgement is there (or not);
- no orphan or temp file is left once the server serves again, and every image job
  ends (ready or failed); no file outlives its item (every stored file is one an item
  names: its original, variants, preset crops, or an on-demand crop of a living item);
- focal-point moves with crop presets configured (each move remakes the presets under
  new keys), and on-demand crops made under a cache budget small enough to evict them:
  every on-demand crop URL handed out still answers with a file after the restart;
- webhooks: a receiver on loopback (for the whole run, across restarts) subscribed to every
  event gets, after each restart, the event of every acknowledged change (media.created,
  media.updated for each alt, focal point and visibility change, media.deleted,
  folder.created and folder.deleted) and media.created plus media.ready or media.failed
  for every item that exists; no event for a change that did not commit (a media.created
  for an item that is not there and was not acknowledged, a media.deleted for one still
  there, a PATCH in flight that did not land, a folder event contradicting the folders);
  an item's first deliveries start with media.created and end with media.deleted; a
  webhook-id seen again (re-sent after a restart) carries the same event; every delivery's
  signature verifies (Standard Webhooks, HMAC-SHA256).

    scripts/crash-test.py [--rounds 20] [--binary target/debug/darkroom]

`make crash-test` runs 20 rounds; `make test` runs 3. Loopback only, bounded in rounds
and time; it ends only the processes it started.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hooklib  # noqa: E402  (scripts/hooklib.py: receiver, read_body, request)
from hooklib import request, send_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
FILES = [
    "jpeg/hopper_128x128.jpg",
    "jpeg/grace_hopper_512x600.jpg",
    "png/chessboard_200x200_rgb16.png",
    "gif/toucan_200x150_static_transparent.gif",
    "webp/flower_480x360_lossy_exif.webp",
    "pdf/ltnews18_1page.pdf",
    "svg/debian_logo_128.svg",
]
FOLDERS = ["/", "/crash", "/crash/a", "/crash/b"]
DEADLINE = 60  # seconds for a restart or for the jobs to finish
CROP_CACHE_BYTES = 20000  # small, so on-demand crops are evicted


class Server:
    """`darkroom serve` on 127.0.0.1:0 over a data dir; its log goes to a file."""

    def __init__(self, binary, data_dir, log_path):
        env = dict(os.environ, DARKROOM_DATA_DIR=str(data_dir), DARKROOM_LISTEN="127.0.0.1:0",
                   RUST_LOG="info", DARKROOM_PROCESSING__MAX_BACKLOG="100000",
                   DARKROOM_SERVER__DRAIN_SECS="0",
                   DARKROOM_WEBHOOKS__ALLOW_PRIVATE_TARGETS="true",  # the receiver is on loopback
                   # Presets remade by focal moves; on-demand crops evicted from a small cache.
                   DARKROOM_DELIVERY__PRESETS='{ card = "120x63", square = "50x50" }',
                   DARKROOM_DELIVERY__CROP_CACHE_BYTES=str(CROP_CACHE_BYTES))
        env.pop("RUST_LOG_STYLE", None)
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        started = time.time()
        self.base = None
        for line in self.proc.stderr:
            self.log.write(line)
            if "addr=" in line:
                addr = line.split("addr=")[1].split()[0].strip('"')
                self.base = f"http://{addr}"
                break
            if time.time() - started > DEADLINE:
                break
        if self.base is None:
            self.proc.kill()
            raise SystemExit(f"the server did not start; see {log_path}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill()


def upload(base, key, name, data, folder):
    boundary = "crashtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\n{folder}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{Path(name).name}\"\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request(base, "POST", "/api/v1/media", key, body,
                   f"multipart/form-data; boundary={boundary}")


class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    def __init__(self):
        self.lock = threading.Lock()
        # id -> {"file", "url", "alt", "alt_in_flight", "deleting", "visibility",
        #        "visibility_in_flight"}
        self.items = {}
        self.deleted = {}      # id -> url (delete acknowledged)
        self.folders = set()   # created with an acknowledgement, not removed since
        self.removed = set()   # removed with an acknowledgement
        self.folders_in_flight = set()
        self.crops = {}        # on-demand crop URL -> item id (made and served once)
        self.moves = 0         # focal moves acknowledged
        self.flips = 0         # visibility changes acknowledged
        self.crops_served = 0  # on-demand crop requests answered with a file
        self.failures = []
        # For the webhook checks: acknowledged changes per item, and what did not commit.
        self.acked_uploads = set()  # every id answered 201 (deleted since or not)
        self.acked_patches = {}     # id -> {"alt": n, "focal": n, "visibility": n} answered 200
        self.lost_alts = set()      # alts whose PATCH was in flight at a kill and did not land
        self.folders_asked = set()  # every folder path a worker asked to create
        self.folders_made = set()   # answered 201 (created, not "already existed")

    def acked_patch(self, item_id, what):
        """Under the lock."""
        counts = self.acked_patches.setdefault(item_id, {"alt": 0, "focal": 0, "visibility": 0})
        counts[what] += 1

    def fail(self, what):
        with self.lock:
            self.failures.append(what)


class Worker(threading.Thread):
    def __init__(self, n, base, key, ledger, stop, rng):
        super().__init__(daemon=True)
        self.n, self.base, self.key, self.ledger, self.stop, self.rng = n, base, key, ledger, stop, rng
        self.mine = []  # ids this worker uploaded (only it patches or deletes them)
        self.made = 0

    def run(self):
        try:
            while not self.stop.is_set():
                op = self.rng.choices(["upload", "patch", "delete", "folder", "focal", "crop", "flip"],
                                      [5, 2, 2, 1, 1, 1, 1])[0]
                if op != "upload" and not self.mine and op != "folder":
                    op = "upload"
                getattr(self, op)()
        except OSError:
            pass  # the server died under us: that is the point

    def upload(self):
        name = self.rng.choice(FILES)
        status, body = upload(self.base, self.key, name, (FIXTURES / name).read_bytes(),
                              self.rng.choice(FOLDERS))
        if status == 201:
            for item in json.loads(body)["data"]:
                with self.ledger.lock:
                    self.ledger.items[item["id"]] = {"file": name, "url": item["url"], "alt": None,
                                                     "alt_in_flight": None, "deleting": False,
                                                     "visibility": "public",
                                                     "visibility_in_flight": None}
                    self.ledger.acked_uploads.add(item["id"])
                self.mine.append(item["id"])
        elif status != 503:
            self.ledger.fail(f"upload {name}: {status} {body[:200]!r}")

    def patch(self):
        item_id = self.rng.choice(self.mine)
        alt = f"alt-{self.n}-{self.rng.randrange(1 << 30)}"
        with self.ledger.lock:
            self.ledger.items[item_id]["alt_in_flight"] = alt
        status, body = send_json(self.base, "PATCH", f"/api/v1/media/{item_id}", self.key, {"alt": alt})
        with self.ledger.lock:
            entry = self.ledger.items[item_id]
            entry["alt_in_flight"] = None
            if status == 200:
                entry["alt"] = alt
                self.ledger.acked_patch(item_id, "alt")
            else:
                self.ledger.failures.append(f"patch {item_id}: {status} {body[:200]!r}")

    def focal(self):
        item_id = self.rng.choice(self.mine)
        point = {"focalX": self.rng.randrange(101), "focalY": self.rng.randrange(101)}
        status, body = send_json(self.base, "PATCH", f"/api/v1/media/{item_id}", self.key, point)
        if status != 200:
            self.ledger.fail(f"focal {item_id}: {status} {body[:200]!r}")
        else:
            with self.ledger.lock:
                self.ledger.moves += 1
                self.ledger.acked_patch(item_id, "focal")

    def flip(self):
        """A visibility change: the files move to the other place under new keys."""
        item_id = self.rng.choice(self.mine)
        with self.ledger.lock:
            entry = self.ledger.items[item_id]
            to = "private" if entry["visibility"] == "public" else "public"
            entry["visibility_in_flight"] = to
        status, body = send_json(self.base, "PATCH", f"/api/v1/media/{item_id}", self.key,
                                 {"visibility": to})
        with self.ledger.lock:
            entry["visibility_in_flight"] = None
            if status == 200:
                entry["visibility"] = to
                entry["url"] = json.loads(body)["data"]["url"]
                self.ledger.flips += 1
                self.ledger.acked_patch(item_id, "visibility")
                # Crop URLs handed out before are not this item's any more.
                for url in [u for u, i in self.ledger.crops.items() if i == item_id]:
                    self.ledger.crops.pop(url)
            elif status != 409:  # 409: its variants are being made, or a race: unchanged
                self.ledger.failures.append(f"flip {item_id}: {status} {body[:200]!r}")

    def crop(self):
        item_id = self.rng.choice(self.mine)
        size = {"width": self.rng.choice([40, 64, 100]), "height": self.rng.choice([40, 64, 100])}
        status, body = send_json(self.base, "POST", f"/api/v1/media/{item_id}/crops", self.key, size)
        if status == 404:
            return  # not a raster image
        if status != 200:
            return self.ledger.fail(f"sign crop {item_id}: {status} {body[:200]!r}")
        url = json.loads(body)["url"]
        status, _ = request(self.base, "GET", url)
        if status == 200:
            with self.ledger.lock:
                self.ledger.crops[url] = item_id
                self.ledger.crops_served += 1
        elif status not in (404, 503):  # failed image, or the pool was busy
            self.ledger.fail(f"crop {url}: {status}")

    def delete(self):
        item_id = self.mine.pop(self.rng.randrange(len(self.mine)))
        with self.ledger.lock:
            self.ledger.items[item_id]["deleting"] = True
        status, body = request(self.base, "DELETE", f"/api/v1/media/{item_id}", self.key)
        with self.ledger.lock:
            if status in (200, 204):
                self.ledger.deleted[item_id] = self.ledger.items.pop(item_id)["url"]
            else:
                self.ledger.failures.append(f"delete {item_id}: {status} {body[:200]!r}")

    def folder(self):
        with self.ledger.lock:
            mine = sorted(f for f in self.ledger.folders if f.startswith(f"/w{self.n}-"))
        if mine and self.rng.random() < 0.4:
            path = self.rng.choice(mine)
            with self.ledger.lock:
                self.ledger.folders_in_flight.add(path)
            status, body = request(self.base, "DELETE", f"/api/v1/media/folders?path={path}", self.key)
            with self.ledger.lock:
                self.ledger.folders_in_flight.discard(path)
                if status in (200, 204):
                    self.ledger.folders.discard(path)
                    self.ledger.removed.add(path)
                else:
                    self.ledger.failures.append(f"remove folder {path}: {status}")
            return
        self.made += 1
        path = f"/w{self.n}-{self.made}-{self.rng.randrange(1 << 20)}"
        with self.ledger.lock:
            self.ledger.folders_in_flight.add(path)
            self.ledger.folders_asked.add(path)
        status, body = send_json(self.base, "POST", "/api/v1/media/folders", self.key, {"path": path})
        with self.ledger.lock:
            self.ledger.folders_in_flight.discard(path)
            if status in (200, 201):
                self.ledger.folders.add(path)
                if status == 201:
                    self.ledger.folders_made.add(path)
            else:
                self.ledger.failures.append(f"create folder {path}: {status}")


def parse_delivery(headers, body, path):
    """A delivery as the webhook checks read it (the receiver's record of it)."""
    try:
        event = json.loads(body)
        data = event.get("data") or {}
    except (ValueError, AttributeError):
        event, data = {}, {}
    return {"id": headers.get("webhook-id"), "type": event.get("type"),
            "subject": data.get("id") or data.get("path") or data.get("webhookId"),
            "changed": data.get("changed") or [], "alt": data.get("alt"),
            "at": time.time(), "headers": headers, "body": body}


def make_receiver():
    """The webhook's endpoint (hooklib.Receiver): loopback, alive for the whole run (across
    server restarts). Answers 200 (Content-Length: 0) and records every delivery,
    duplicates included, as parse_delivery makes it:
    {"id", "type", "subject", "changed", "alt", "at", "headers", "body"}."""
    return hooklib.Receiver(status=200, parse=parse_delivery)


def signature_ok(secret, headers, body):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, "id.timestamp.body")), key = the
    base64 after whsec_."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split())


def make_webhook(base, admin_key, receiver):
    status, body = send_json(base, "POST", "/api/v1/webhooks", admin_key,
                             {"url": receiver.url, "events": ["*"], "description": "crash test"})
    if status != 201:
        raise SystemExit(f"creating the webhook: {status} {body[:300]!r}")
    return json.loads(body)["data"]


def webhook_listed(base, admin_key, hook_id):
    """The webhook as listed (no secret), or None."""
    status, body = request(base, "GET", "/api/v1/webhooks", admin_key)
    if status != 200:
        return None
    return next((h for h in json.loads(body)["data"] if h["id"] == hook_id), None)


def webhook_problems(got, secret, ledger, living, folders):
    """What the deliveries so far lack or contradict. `living`: id -> item, `folders`: the
    folders listed, both after the restart (no worker runs)."""
    problems = []
    first = {}  # webhook-id -> its first delivery
    for n, d in enumerate(got):
        if "verified" not in d:  # the same dict on every poll: verified once
            d["verified"] = signature_ok(secret, d["headers"], d["body"])
        if not d["verified"]:
            problems.append(f"delivery {d['id']} ({d['type']}): the signature does not verify: "
                            f"{d['headers'].get('webhook-signature')!r}")
        if d["type"] is None:
            problems.append(f"delivery {d['id']}: not an event: {d['body'][:200]!r}")
        seen = first.setdefault(d["id"], dict(d, n=n))
        if (seen["type"], seen["subject"]) != (d["type"], d["subject"]):
            problems.append(f"webhook-id {d['id']} re-sent as another event: "
                            f"{seen['type']} {seen['subject']} then {d['type']} {d['subject']}")
    events = sorted(first.values(), key=lambda d: d["n"])
    of = {}  # (subject, type) -> [events in order of first arrival]
    order = {}  # subject -> types in order of first arrival
    for e in events:
        of.setdefault((e["subject"], e["type"]), []).append(e)
        order.setdefault(e["subject"], []).append(e["type"])
    has = lambda subject, kind: bool(of.get((subject, kind)))

    # Every acknowledged (or committed) change has its event.
    for item_id in sorted(ledger.acked_uploads | set(living)):
        if not has(item_id, "media.created"):
            what = "acknowledged upload" if item_id in ledger.acked_uploads else "item"
            problems.append(f"{what} {item_id}: no media.created")
    for item_id, item in sorted(living.items()):
        status = item.get("status")
        kind = "media.failed" if status == "failed" else "media.ready"
        if status != "processing" and not has(item_id, kind):
            problems.append(f"item {item_id} ({item.get('mimeType')}, {status}): no {kind}")
    for item_id, counts in sorted(ledger.acked_patches.items()):
        updates = of.get((item_id, "media.updated"), [])
        for what, fields in (("alt", {"alt"}), ("focal", {"focalX", "focalY"}),
                             ("visibility", {"visibility"})):
            got_n = sum(1 for e in updates if fields & set(e["changed"]))
            if got_n < counts[what]:
                problems.append(f"{item_id}: {counts[what]} acknowledged {what} PATCHes, "
                                f"{got_n} media.updated with {sorted(fields)} in changed")
    for item_id in sorted(ledger.deleted):
        if not has(item_id, "media.deleted"):
            problems.append(f"acknowledged delete {item_id}: no media.deleted")
    for path in sorted(ledger.folders_made):
        if not has(path, "folder.created"):
            problems.append(f"acknowledged folder {path} (201): no folder.created")
    for path in sorted(ledger.removed):
        if not has(path, "folder.deleted"):
            problems.append(f"acknowledged folder removal {path}: no folder.deleted")

    # No event for a change that did not commit.
    for e in events:
        kind, subject = e["type"], e["subject"]
        if kind and kind.startswith("media."):
            if subject not in ledger.acked_uploads and subject not in living:
                problems.append(f"{kind} {e['id']} for {subject}: never acknowledged and not there")
            if kind == "media.deleted" and subject in living:
                problems.append(f"media.deleted {e['id']} for {subject}, which is still there")
            if e["alt"] is not None and e["alt"] in ledger.lost_alts:
                problems.append(f"{kind} {e['id']} for {subject} shows alt {e['alt']!r}, "
                                f"whose PATCH did not commit")
        elif kind in ("folder.created", "folder.deleted") and subject not in FOLDERS:
            if subject not in ledger.folders_asked:
                problems.append(f"{kind} {e['id']} for {subject}, a folder no one asked for")
            elif kind == "folder.created" and subject not in folders \
                    and not has(subject, "folder.deleted"):
                problems.append(f"folder.created {e['id']} for {subject}, which is not there "
                                f"(and no folder.deleted)")
            elif kind == "folder.deleted" and subject in folders:
                problems.append(f"folder.deleted {e['id']} for {subject}, which is still there")

    # An item's events in commit order: created first, deleted last.
    for subject, kinds in order.items():
        if "media.created" in kinds and kinds[0] != "media.created":
            problems.append(f"{subject}: events arrived as {kinds}, media.created not first")
        if "media.deleted" in kinds and kinds[-1] != "media.deleted":
            problems.append(f"{subject}: events arrived as {kinds}, media.deleted not last")
    return problems


def check_webhook(base, key, admin_key, hook, receiver, ledger, mark):
    """After a restart: wait (bounded) until every expected event arrived; the problems,
    and a line on this round's deliveries."""
    problems = []
    listed = webhook_listed(base, admin_key, hook["id"])
    if listed is None:
        problems.append(f"the webhook {hook['id']} is not listed after the restart")
    elif not listed.get("enabled"):
        problems.append(f"the webhook is disabled: {listed.get('disabledReason')!r}")
    living = {i["id"]: i for i in all_items(base, key)}
    status, body = request(base, "GET", "/api/v1/media/folders", key)
    folders = set(json.loads(body)["folders"])
    started = time.time()
    while True:
        got = receiver.deliveries()
        found = webhook_problems(got, hook["secret"], ledger, living, folders)
        if not found or time.time() - started > DEADLINE:
            break
        time.sleep(0.5)
    waited = time.time() - started
    listed = webhook_listed(base, admin_key, hook["id"]) or {}
    if found:
        problems += found
        problems.append(f"(after {waited:.0f}s; the webhook: pending {listed.get('pending')}, "
                        f"dropped {listed.get('dropped')})")
    ids_before = {d["id"] for d in got[:mark]}
    dups, this_round = 0, got[mark:]
    for d in this_round:
        if d["id"] in ids_before:
            dups += 1
        ids_before.add(d["id"])
    line = (f"webhooks: {len(this_round)} deliveries this round, {dups} of them re-sent; "
            f"{len({d['id'] for d in got})} events in all; pending {listed.get('pending')}, "
            f"dropped {listed.get('dropped')}; settled in {waited:.1f}s")
    return problems, line, len(got)


def all_items(base, key):
    items, offset = [], 0
    while True:
        status, body = request(base, "GET", f"/api/v1/media?limit=100&offset={offset}", key)
        assert status == 200, status
        page = json.loads(body)["data"]
        items += page
        if len(page) < 100:
            return items
        offset += 100


def stem(key):
    name = key.rsplit("/", 1)[-1]
    cut = min([i for i in (name.find("-"), name.find(".")) if i >= 0] or [len(name)])
    return key[: len(key) - len(name) + cut]


def check(base, key, data_dir, ledger, expected):
    """Every acknowledged effect held; returns the problems found."""
    problems = list(ledger.failures)
    ledger.failures.clear()
    for item_id, entry in list(ledger.items.items()):
        status, body = request(base, "GET", f"/api/v1/media/{item_id}", key)
        if status == 404 and entry["deleting"]:
            with ledger.lock:  # the delete in flight at the kill landed
                ledger.deleted[item_id] = ledger.items.pop(item_id)["url"]
            continue
        if status != 200:
            problems.append(f"acknowledged upload {item_id} ({entry['file']}) answers {status}")
            continue
        entry["deleting"] = False
        item = json.loads(body)["data"]
        allowed = {entry["alt"], entry["alt_in_flight"]}
        if item["alt"] not in allowed:
            problems.append(f"{item_id}: alt {item['alt']!r}, acknowledged {entry['alt']!r}")
        if entry["alt_in_flight"] is not None and item["alt"] != entry["alt_in_flight"]:
            ledger.lost_alts.add(entry["alt_in_flight"])  # it did not commit: no event may show it
        entry["alt"], entry["alt_in_flight"] = item["alt"], None
        seen = item.get("visibility", "public")
        if seen not in {entry["visibility"], entry["visibility_in_flight"]}:
            problems.append(f"{item_id}: {seen}, acknowledged {entry['visibility']}")
        if seen != entry["visibility"]:  # the change in flight at the kill landed
            for url in [u for u, i in ledger.crops.items() if i == item_id]:
                ledger.crops.pop(url)
        entry["visibility"], entry["visibility_in_flight"] = seen, None
        entry["url"] = item["url"]  # a private item's is a fresh signed link
        status, stored = request(base, "GET", entry["url"])
        if status != 200 or hashlib.sha256(stored).digest() != expected[entry["file"]]:
            problems.append(f"{item_id}: original of {entry['file']} is not what was stored ({status})")
    for item_id, url in ledger.deleted.items():
        if request(base, "GET", f"/api/v1/media/{item_id}", key)[0] != 404:
            problems.append(f"deleted {item_id} came back")
        if request(base, "GET", url)[0] != 404:
            problems.append(f"deleted {item_id}: its file {url} is still served")
    status, body = request(base, "GET", "/api/v1/media/folders", key)
    folders = set(json.loads(body)["folders"])
    for path in ledger.folders - ledger.folders_in_flight - folders:
        problems.append(f"acknowledged folder {path} is missing")
    for path in (ledger.removed & folders) - ledger.folders_in_flight:
        problems.append(f"removed folder {path} is back")
    ledger.folders = {f for f in ledger.folders | ledger.folders_in_flight if f in folders}
    ledger.folders_in_flight.clear()

    started = time.time()
    while True:
        items = all_items(base, key)
        busy = [i["id"] for i in items if i.get("status") == "processing"]
        if not busy:
            break
        if time.time() - started > DEADLINE:
            problems.append(f"jobs not finished after {DEADLINE}s: {busy[:5]}")
            break
        time.sleep(0.2)
    # On-demand crops handed out: each still answers with a file (cached, or made again).
    living = {i["id"] for i in items}
    for url, item_id in list(ledger.crops.items()):
        if item_id not in living:
            ledger.crops.pop(url)
            continue
        status, _ = request(base, "GET", url)
        if status not in (200, 503):
            problems.append(f"crop {url} of a living item answers {status}")
    # Give the delete queue its drain (every 10 s), then no file may outlive its item.
    time.sleep(11)
    items = all_items(base, key)
    named = set()
    # A file's key from its URL: `YYYY/MM/...` (public), `private/YYYY/MM/...` (signed).
    key_of = lambda url: url.split("/uploads/", 1)[1].split("?", 1)[0]
    for i in items:
        poster = i.get("poster") or {}  # a video's or PDF's: the poster and its variants
        pictures = [poster] if poster else []
        for thing in [i] + i.get("variants", []) + i.get("crops", []) + pictures + poster.get("variants", []):
            named.add(key_of(thing["url"]))
    stems = {stem(key_of(i["url"])) for i in items}
    uploads, cached = data_dir / "uploads", 0
    stored = [(f, str(f.relative_to(uploads))) for f in uploads.rglob("*")]
    stored += [(f, str(f.relative_to(data_dir))) for f in (data_dir / "private").rglob("*")]
    for f, rel in stored:
        if not f.is_file():
            continue
        on_demand = "-c" in rel.rsplit("/", 1)[-1]
        if on_demand:
            cached += f.stat().st_size
        if rel not in named and not (on_demand and stem(rel) in stems):
            problems.append(f"file {rel} belongs to no item")
    if cached > CROP_CACHE_BYTES:
        problems.append(f"on-demand crops take {cached} bytes, past the {CROP_CACHE_BYTES} budget")
    temp = list((data_dir / "tmp").iterdir())
    if temp:
        problems.append(f"temp files left: {[t.name for t in temp]}")
    return problems, len(items)


def reference_bytes(base, key, ledger):
    """What the server stores for each file (metadata stripped): the expected originals."""
    expected = {}
    for name in FILES:
        status, body = upload(base, key, name, (FIXTURES / name).read_bytes(), "/")
        assert status == 201, (name, status, body)
        item = json.loads(body)["data"][0]
        ledger.acked_uploads.add(item["id"])
        status, stored = request(base, "GET", item["url"])
        expected[name] = hashlib.sha256(stored).digest()
    return expected


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("CRASH_ROUNDS", 20)))
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--binary", default=str(ROOT / "target" / "debug" / "darkroom"))
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="darkroom-crash-"))
    data_dir, log_path = work / "data", work / "server.log"
    out = subprocess.run([args.binary, "keys", "create", "--scope", "write", "--name", "crash"],
                         env=dict(os.environ, DARKROOM_DATA_DIR=str(data_dir)),
                         capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    out = subprocess.run([args.binary, "keys", "create", "--scope", "admin", "--name", "crash-admin"],
                         env=dict(os.environ, DARKROOM_DATA_DIR=str(data_dir)),
                         capture_output=True, text=True, check=True)
    admin_key = out.stdout.strip()
    print(f"crash test: {args.rounds} rounds, {args.workers} workers, seed {args.seed}, in {work}")
    receiver = make_receiver()
    server = Server(args.binary, data_dir, log_path)
    ledger = Ledger()
    try:
        # One webhook for every event, made once: it lives in the catalog across restarts.
        hook = make_webhook(server.base, admin_key, receiver)
        mark = 0  # deliveries reported so far
        expected = reference_bytes(server.base, key, ledger)
        for round_no in range(1, args.rounds + 1):
            stop = threading.Event()
            workers = [Worker(n, server.base, key, ledger, stop, random.Random(rng.random()))
                       for n in range(args.workers)]
            for w in workers:
                w.start()
            time.sleep(rng.uniform(0.3, 2.5))
            server.kill()
            stop.set()
            for w in workers:
                w.join(timeout=30)
            server = Server(args.binary, data_dir, log_path)
            problems, count = check(server.base, key, data_dir, ledger, expected)
            found, hooks_line, mark_next = check_webhook(server.base, key, admin_key, hook,
                                                         receiver, ledger, mark)
            problems += found
            mark = mark_next
            print(f"round {round_no}: killed; {len(ledger.items)} acknowledged items, "
                  f"{len(ledger.deleted)} deletes, {len(ledger.folders)} folders held, "
                  f"{ledger.moves} focal moves, {ledger.flips} visibility changes, "
                  f"{ledger.crops_served} crops served; "
                  f"{count} items listed; {'OK' if not problems else 'FAILED'}", flush=True)
            print(f"  {hooks_line}", flush=True)
            if problems:
                for p in problems[:30]:
                    print(f"  {p}")
                print(f"server log: {log_path}")
                return 1
    finally:
        server.stop()
        receiver.stop()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
