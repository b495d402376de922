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
  every on-demand crop URL handed out still answers with a file after the restart.

    scripts/crash-test.py [--rounds 20] [--binary target/debug/darkroom]

`make crash-test` runs 20 rounds; `make test` runs 3. Loopback only, bounded in rounds
and time; it ends only the processes it started.
"""

import argparse
import hashlib
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
import urllib.error
import urllib.request
from pathlib import Path

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


def request(base, method, path, key=None, body=None, content_type=None, timeout=15):
    """(status, bytes); connection failures (the kill) raise OSError."""
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


def upload(base, key, name, data, folder):
    boundary = "crashtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\n{folder}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{Path(name).name}\"\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request(base, "POST", "/api/v1/media", key, body,
                   f"multipart/form-data; boundary={boundary}")


def send_json(base, method, path, key, value):
    return request(base, method, path, key, json.dumps(value).encode(), "application/json")


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
        status, body = send_json(self.base, "POST", "/api/v1/media/folders", self.key, {"path": path})
        with self.ledger.lock:
            self.ledger.folders_in_flight.discard(path)
            if status in (200, 201):
                self.ledger.folders.add(path)
            else:
                self.ledger.failures.append(f"create folder {path}: {status}")


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
        for thing in [i] + i.get("variants", []) + i.get("crops", []):
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


def reference_bytes(base, key):
    """What the server stores for each file (metadata stripped): the expected originals."""
    expected = {}
    for name in FILES:
        status, body = upload(base, key, name, (FIXTURES / name).read_bytes(), "/")
        assert status == 201, (name, status, body)
        item = json.loads(body)["data"][0]
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
    print(f"crash test: {args.rounds} rounds, {args.workers} workers, seed {args.seed}, in {work}")
    server = Server(args.binary, data_dir, log_path)
    expected = reference_bytes(server.base, key)
    ledger, totals = Ledger(), {"uploads": 0}
    try:
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
            print(f"round {round_no}: killed; {len(ledger.items)} acknowledged items, "
                  f"{len(ledger.deleted)} deletes, {len(ledger.folders)} folders held, "
                  f"{ledger.moves} focal moves, {ledger.flips} visibility changes, "
                  f"{ledger.crops_served} crops served; "
                  f"{count} items listed; {'OK' if not problems else 'FAILED'}", flush=True)
            if problems:
                for p in problems[:30]:
                    print(f"  {p}")
                print(f"server log: {log_path}")
                return 1
    finally:
        server.stop()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
