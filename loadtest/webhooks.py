#!/usr/bin/env python3
"""Webhooks' cost to uploads, and their delivery lag, side by side in one run.

Each round runs two fresh release servers (target/release/darkroom, empty temp data dir
under target/perf, loopback only), one after the other, alternated A B A B:

  * none:    no webhook;
  * webhook: one webhook subscribed to ["*"], delivering to a receiver this script runs
             on 127.0.0.1 (a ThreadingHTTPServer answering 204 at once; it records each
             delivery's arrival time, webhook-id, and the body's type and timestamp).

Both servers start with DARKROOM_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true (needed for a
loopback receiver; without a webhook it changes nothing), and both get an admin key from
the CLI before `serve` (used to make the webhook), so the webhook is their only difference.

Load on each: `target/release/loadtest upload-docs -c 64 --duration WH_SECONDS --warmup 2`
(100 KB PDFs; as ab.py; the disk is settled before each run, as perf.loadtest does).
Recorded per case: uploads ok/s, p99, statuses, the server's peak RSS (reset before the
load; read at its end, and again after the webhook's backlog drained).

After the webhook case's load, the script waits (at most 120 s) until the webhook's
`pending` (GET /api/v1/webhooks) is 0, then records: events delivered (against 2 per
stored item: media.created and media.ready), duplicates (a webhook-id seen twice),
dropped, the drain time (load end to the last arrival, and to pending = 0), and the
delivery lag = arrival time - the payload's `timestamp` (the change's commit), p50 / p99
/ max, for the events committed inside the measured window ("during load") and for all.
The receiver's own CPU time (this process's, less the none case's) is reported too.

Prints a Markdown table and a summary (median ok/s ratio webhook/none; goal >= 0.9x; lag
over all rounds); writes the raw numbers to target/perf/webhooks.json.

    python3 loadtest/webhooks.py                       # 3 rounds, 10 s measured
    WH_ROUNDS=5 WH_SECONDS=20 python3 loadtest/webhooks.py
    WH_RATE=500 python3 loadtest/webhooks.py           # 500 uploads/s: the lag of a sender
                                                       # that keeps up
    WH_RECEIVER=nginx python3 loadtest/webhooks.py     # the receiver is nginx: no lag,
                                                       # but a tenth of the receiver's CPU

Needs the release build (`cargo build --release --workspace --bins`); it builds nothing.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import re
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402

ROUNDS = int(os.environ.get("WH_ROUNDS", "3"))
SECONDS = float(os.environ.get("WH_SECONDS", "10"))
# WH_RATE: an open-loop rate (uploads/s) instead of 64 clients as fast as they go: the lag
# of a sender that keeps up, rather than of a backlog.
RATE = os.environ.get("WH_RATE")
WARMUP = 2
CLIENTS = 64
DRAIN_LIMIT = 120.0
ENV = {"DARKROOM_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}


# ---------------------------------------------------------------------------- receiver

class Receiver:
    """Records each delivery: (arrival time.time(), path, webhook-id, raw body, service s).
    Bodies are parsed after the run, so that the handler does as little as it can."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deliveries = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the sender pools its connections

            def do_POST(self):
                entered = time.perf_counter()
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                arrived = time.time()
                self.send_response_only(204)
                self.end_headers()
                served = time.perf_counter() - entered
                with receiver.lock:
                    receiver.deliveries.append(
                        (arrived, self.path, self.headers.get("webhook-id"), body, served))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def taken(self, path):
        with self.lock:
            return [d for d in self.deliveries if d[1] == path]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class NginxReceiver:
    """The same receiver as nginx (`return 204`, WH_RECEIVER=nginx): about a tenth of the
    Python one's CPU per delivery, so that the webhook case's cost is Darkroom's own. It
    logs the arrival time and webhook-id only (it never reads the body), so no lag."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wh-nginx-", dir=perf.SCRATCH))
        self.port = perf.free_port()
        self.log = self.dir / "access.log"
        (self.dir / "nginx.conf").write_text(f"""
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    log_format hook '$msec $request_uri $http_webhook_id';
    access_log {self.log} hook buffer=64k flush=100ms;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{ return 204; }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                                      "-g", "daemon off;"])
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def taken(self, path):
        time.sleep(0.3)  # the log's buffer is flushed every 100 ms
        rows = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == path:
                rows.append((float(parts[0]), path, parts[2], b"", 0.0))
        return rows

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------- server

class HookServer(perf.Server):
    """perf.Server plus an admin key, made with the CLI before `serve` starts (redb is
    single-process: the CLI cannot write keys while the server runs)."""

    def __init__(self, name, env=None):
        perf.SCRATCH.mkdir(parents=True, exist_ok=True)
        data = Path(tempfile.mkdtemp(prefix=f"wh-{name}-", dir=perf.SCRATCH))
        config = data / "config.toml"
        config.write_text(f'data_dir = "{data}"\n')
        self.admin = perf.sh([perf.BIN / "darkroom", "--config", config, "keys", "create",
                              "--scope", "admin", "--name", "wh-bench"],
                             stderr=subprocess.DEVNULL).strip()
        # data_dir= makes perf.Server keep the dir at stop; it is ours to remove.
        try:
            super().__init__(name, data_dir=data, env=env)
        except BaseException:  # perf.wait_http exits when /readyz never answers
            if getattr(self, "proc", None):
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(data, ignore_errors=True)
            raise
        self.keep = False

    def api(self, method, path, body=None, key=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {key or self.admin}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def metrics(self, prefix="darkroom_webhook_"):
        try:
            req = urllib.request.Request(self.url + "/metrics",
                                         headers={"Authorization": f"Bearer {self.admin}"})
            text = urllib.request.urlopen(req, timeout=10).read().decode()
        except OSError as e:
            return {"error": str(e)}
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(prefix) and not line.startswith("#")
                and "_bucket" not in line}


# ---------------------------------------------------------------------------- load

def upload_docs(name, server):
    """perf.loadtest's steps (settle, peak reset, steal, JSON), but with the harness's
    stderr read here so that the measured window is known on the wall clock: it starts
    `--warmup` after the harness prints "<scenario> against <url>: <plan>"."""
    perf.settle()
    out = perf.SCRATCH / f"{name}.json"
    flags = ["-c", CLIENTS, "--duration", SECONDS, "--warmup", WARMUP]
    if RATE:
        flags += ["--rate", RATE]
    cmd = [perf.BIN / "loadtest", "upload-docs", "--url", server.url, "--json", out, *map(str, flags)]
    print(f"\n== {name}: {' '.join(map(str, cmd[1:]))}", file=sys.stderr)
    server.reset_peak()
    env = {**os.environ, "LOADTEST_API_KEY": server.key}
    steal0, total0 = perf.cpu_times()
    cpu0 = time.process_time()
    launched = time.time()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    started = []

    def relay():
        for raw in iter(proc.stderr.readline, b""):
            if not started and b" against " in raw:
                started.append(time.time())
            sys.stderr.write(raw.decode(errors="replace"))
            sys.stderr.flush()

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    rc = proc.wait()
    ended = time.time()
    reader.join(5)
    cpu1 = time.process_time()
    steal1, total1 = perf.cpu_times()
    if rc != 0:
        raise RuntimeError(f"loadtest exited {rc} ({name})")
    result = json.loads(out.read_text())
    start = started[0] if started else launched
    result["steal_pct"] = 100.0 * (steal1 - steal0) / max(1, total1 - total0)
    result["peak_rss_mb"] = server.peak_rss_mb()
    result["command"] = "loadtest upload-docs " + " ".join(map(str, flags))
    result["window"] = {"launched": launched, "measure_from": start + WARMUP,
                        "measure_to": start + WARMUP + SECONDS, "ended": ended,
                        "start_seen": bool(started)}
    # This process's CPU seconds during the load: the stderr relay, plus the receiver's
    # work in the webhook case.
    result["script_cpu_s"] = cpu1 - cpu0
    return result


def stored_items(server):
    return server.api("GET", "/api/v1/media?limit=1", key=server.key)["total"]


def listed_ids(server, limit=200000):
    """Every item's id, walked page by page with the cursor (a check on `total`)."""
    ids, cursor = set(), None
    for _ in range(limit // 100 + 1):
        q = "/api/v1/media?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        page = server.api("GET", q, key=server.key)
        ids.update(i["id"] for i in page["data"])
        cursor = page.get("nextCursor")
        if not cursor:
            break
    return ids


def drops_logged(server):
    """The dropped counts the server logged for each trim of the outbox."""
    text = (server.dir / "server.log").read_text(errors="replace")
    return [int(m) for m in re.findall(r"dropped[=:\s\"]+(\d+)", text)]


# ---------------------------------------------------------------------------- figures

def parse_ts(text):
    """RFC 3339 UTC with or without a fraction (humantime: `...T19:30:00.123456Z`)."""
    text = text.rstrip("Z")
    whole, _, frac = text.partition(".")
    base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a list; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def lag_stats(lags_ms):
    return {"n": len(lags_ms), "p50": pct(lags_ms, 50), "p99": pct(lags_ms, 99),
            "max": max(lags_ms) if lags_ms else None}


def analyse(deliveries, window):
    rows, raw, types, seen, dups, bad, per_item = [], [], {}, set(), 0, 0, {}
    for arrived, _path, wid, body, served in deliveries:
        try:
            event = json.loads(body)
            ts = parse_ts(event["timestamp"])
            kind = event["type"]
            subject = (event.get("data") or {}).get("id") or (event.get("data") or {}).get("path")
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        if wid in seen:
            dups += 1
        seen.add(wid)
        types[kind] = types.get(kind, 0) + 1
        rows.append((arrived, ts, (arrived - ts) * 1000.0, served))
        raw.append([round(arrived, 6), round(ts, 6), kind, wid, subject])
        per_item.setdefault(subject, []).append(kind)
    during = [lag for _a, ts, lag, _s in rows if window["measure_from"] <= ts <= window["measure_to"]]
    overall = [lag for _a, _ts, lag, _s in rows]
    served = [s * 1000.0 for *_x, s in rows]
    last = max((a for a, *_x in rows), default=None)
    return {
        "delivered": len(deliveries), "unique": len(seen), "duplicates": dups,
        "unparsed": bad, "by_type": types,
        "lag_during_ms": lag_stats(during), "lag_overall_ms": lag_stats(overall),
        "last_arrival": last,
        "drain_s": max(0.0, last - window["ended"]) if last else None,
        "receiver_service_ms": {"mean": statistics.fmean(served) if served else None,
                                "p99": pct(served, 99), "max": max(served, default=None)},
        "_lags": overall, "_lags_during": during,
        # Per item: what arrived of its media.created and media.ready (drops show here).
        "items_seen": len(per_item),
        "items_both": sum(1 for k in per_item.values() if sorted(k) == ["media.created", "media.ready"]),
        "items_created_only": sum(1 for k in per_item.values() if k == ["media.created"]),
        "items_ready_only": sum(1 for k in per_item.values() if k == ["media.ready"]),
        "items_other": sum(1 for k in per_item.values()
                           if sorted(k) not in (["media.created", "media.ready"], ["media.created"], ["media.ready"])),
        # Every delivery: [arrival, payload timestamp, type, webhook-id, item id] (Unix seconds).
        "deliveries": raw,
    }


# ---------------------------------------------------------------------------- run

def case_none(rnd):
    s = HookServer(f"{rnd}-none", env=ENV)
    try:
        res = upload_docs(f"wh-{rnd}-none-upload-docs", s)
        res["items"] = stored_items(s)
        return res
    finally:
        s.stop()


def case_webhook(rnd, receiver):
    path = f"/hook/{rnd}"
    s = HookServer(f"{rnd}-webhook", env=ENV)
    try:
        hook = s.api("POST", "/api/v1/webhooks", {"url": receiver.url(path), "events": ["*"],
                                                  "description": "loadtest/webhooks.py"})["data"]
        res = upload_docs(f"wh-{rnd}-webhook-upload-docs", s)
        cpu0 = time.process_time()
        # Drain: bounded wait until the outbox is empty.
        deadline = res["window"]["ended"] + DRAIN_LIMIT
        state, polls = None, []
        while True:
            state = next(h for h in s.api("GET", "/api/v1/webhooks")["data"] if h["id"] == hook["id"])
            polls.append((time.time(), state["pending"]))
            if state["pending"] == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        empty_at = time.time() if state["pending"] == 0 else None
        # This process's CPU seconds while the backlog drained: the receiver, the polls.
        res["script_cpu_drain_s"] = time.process_time() - cpu0
        time.sleep(0.5)  # nothing is in flight once pending is 0; a margin regardless
        res["hook"] = {"id": hook["id"], "pending_end": state["pending"], "dropped": state["dropped"],
                       "enabled": state["enabled"], "disabled_reason": state["disabledReason"],
                       "pending_at_load_end": polls[0][1],
                       "pending_zero_after_s": (empty_at - res["window"]["ended"]) if empty_at else None}
        res["peak_rss_after_drain_mb"] = s.peak_rss_mb()
        res["items"] = stored_items(s)
        res["metrics"] = s.metrics()
        res["events"] = analyse(receiver.taken(path), res["window"])
        res["events"]["expected"] = 2 * res["items"]
        ids = listed_ids(s)
        res["items_listed"] = len(ids)
        delivered_ids = {d[4] for d in res["events"]["deliveries"]}
        res["events"]["delivered_items_not_listed"] = len(delivered_ids - ids)
        res["trims_logged"] = drops_logged(s)
        return res
    finally:
        s.stop()


def f1(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def statuses(res):
    st = res["summary"].get("statuses", {})
    errs = res["summary"].get("errors", {})
    odd = {k: v for k, v in st.items() if not str(k).startswith("2")}
    odd.update(errs)
    return ", ".join(f"{k}: {v}" for k, v in odd.items()) or "none"


def report(runs, info):
    lines = [
        "## Webhooks: upload-docs with one webhook vs none (`loadtest/webhooks.py`)",
        "",
        f"- Command: `{info['command']}`",
        f"- Machine: {info['machine']} (`nproc` {info['nproc']}); server, harness and receiver share it",
        f"- Date: {info['date']}, commit {info['commit']}",
        f"- Load: `{runs[0]['none']['command']}` on a fresh empty server per case; rounds alternate "
        "none, webhook. Lag = receipt - payload `timestamp` (commit); \"during\" = events committed "
        "inside the measured window. Latencies in ms.",
        "",
        "| round | case | uploads ok/s | p99 ms | peak RSS MB | non-2xx / errors | events delivered / expected "
        "| dups | dropped | lag p50 (during) | lag p99 (during) | lag p50 (all) | lag p99 (all) | lag max | drain s | steal % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for case in ("none", "webhook"):
            res = r[case]
            s = res["summary"]
            ev = res.get("events")
            if ev:
                d, a = ev["lag_during_ms"], ev["lag_overall_ms"]
                extra = (f"{ev['delivered']} / {ev['expected']} | {ev['duplicates']} | {res['hook']['dropped']} | "
                         f"{f1(d['p50'])} | {f1(d['p99'])} | {f1(a['p50'])} | {f1(a['p99'])} | {f1(a['max'])} | "
                         f"{f1(ev['drain_s'])}")
            else:
                extra = "- | - | - | - | - | - | - | - | -"
            lines.append(f"| {r['round']} | {case} | {s['ok_per_s']:.1f} | {s['latency_ms']['p99']:.1f} | "
                         f"{f1(res['peak_rss_mb'])} | {statuses(res)} | {extra} | {res['steal_pct']:.1f} |")
    sm = info["summary"]
    lines += [
        "",
        f"- ok/s ratio webhook/none per round: {', '.join(f1(x, 3) for x in sm['ratios'])}; "
        f"**median {f1(sm['median_ratio'], 3)}×** (goal ≥ 0.9×); ratio of medians "
        f"{f1(sm['median_webhook_ok_s'])} / {f1(sm['median_none_ok_s'])} = {f1(sm['ratio_of_medians'], 3)}×",
        f"- delivery lag over all rounds, during load: p50 {f1(sm['lag_during']['p50'])} ms, "
        f"p99 {f1(sm['lag_during']['p99'])} ms, max {f1(sm['lag_during']['max'])} ms "
        f"({sm['lag_during']['n']} events); all events: p50 {f1(sm['lag_all']['p50'])} ms, "
        f"p99 {f1(sm['lag_all']['p99'])} ms, max {f1(sm['lag_all']['max'])} ms ({sm['lag_all']['n']} events)",
        f"- drain after the load (last arrival - harness exit): {', '.join(f1(x) for x in sm['drain_s'])} s; "
        f"pending = 0 seen after {', '.join(f1(x) for x in sm['pending_zero_s'])} s",
        f"- peak RSS MB, none: {', '.join(f1(x) for x in sm['rss_none'])}; webhook: "
        f"{', '.join(f1(x) for x in sm['rss_webhook'])} (after drain: {', '.join(f1(x) for x in sm['rss_webhook_drained'])})",
        f"- duplicates: {sm['duplicates']}; dropped: {sm['dropped']}; "
        f"receiver CPU during the load (this process, less the none case's): "
        f"{', '.join(f1(x, 2) for x in sm['receiver_cpu_s'])} s of {SECONDS + WARMUP:.0f} s, while draining "
        f"{', '.join(f1(x, 2) for x in sm['receiver_cpu_drain_s'])} s; per delivery "
        f"{', '.join(f1(x, 3) for x in sm['receiver_cpu_per_delivery_ms'])} ms CPU; "
        f"receiver service time per delivery mean {f1(sm['service_mean_ms'], 3)} ms, p99 {f1(sm['service_p99_ms'], 3)} ms",
    ]
    return "\n".join(lines) + "\n"


def summarise(runs):
    ratios = [r["webhook"]["summary"]["ok_per_s"] / r["none"]["summary"]["ok_per_s"] for r in runs]
    none_ok = [r["none"]["summary"]["ok_per_s"] for r in runs]
    hook_ok = [r["webhook"]["summary"]["ok_per_s"] for r in runs]
    lags = [x for r in runs for x in r["webhook"]["events"]["_lags"]]
    during = [x for r in runs for x in r["webhook"]["events"]["_lags_during"]]
    served = [r["webhook"]["events"]["receiver_service_ms"] for r in runs]
    return {
        "ratios": ratios, "median_ratio": statistics.median(ratios),
        "median_none_ok_s": statistics.median(none_ok), "median_webhook_ok_s": statistics.median(hook_ok),
        "ratio_of_medians": statistics.median(hook_ok) / statistics.median(none_ok),
        "lag_all": lag_stats(lags), "lag_during": lag_stats(during),
        "drain_s": [r["webhook"]["events"]["drain_s"] for r in runs],
        "pending_zero_s": [r["webhook"]["hook"]["pending_zero_after_s"] for r in runs],
        "rss_none": [r["none"]["peak_rss_mb"] for r in runs],
        "rss_webhook": [r["webhook"]["peak_rss_mb"] for r in runs],
        "rss_webhook_drained": [r["webhook"]["peak_rss_after_drain_mb"] for r in runs],
        "duplicates": sum(r["webhook"]["events"]["duplicates"] for r in runs),
        "dropped": sum(r["webhook"]["hook"]["dropped"] for r in runs),
        "receiver_cpu_s": [r["webhook"]["script_cpu_s"] - r["none"]["script_cpu_s"] for r in runs],
        "receiver_cpu_drain_s": [r["webhook"]["script_cpu_drain_s"] for r in runs],
        "receiver_cpu_per_delivery_ms": [
            1000.0 * (r["webhook"]["script_cpu_s"] - r["none"]["script_cpu_s"] + r["webhook"]["script_cpu_drain_s"])
            / max(1, r["webhook"]["events"]["delivered"]) for r in runs],
        "service_mean_ms": statistics.fmean(m) if (m := [s["mean"] for s in served if s["mean"] is not None]) else None,
        "service_p99_ms": max((s["p99"] for s in served if s["p99"] is not None), default=None),
    }


def main():
    for binary in ("darkroom", "loadtest"):
        if not (perf.BIN / binary).exists():
            sys.exit(f"{perf.BIN / binary} is missing: build release first (this script builds nothing)")
    perf.SCRATCH.mkdir(parents=True, exist_ok=True)
    info = {
        "command": " ".join(f"{k}={os.environ[k]}" for k in ("WH_RECEIVER", "WH_RATE", "WH_ROUNDS", "WH_SECONDS") if k in os.environ)
                   + (" " if any(k in os.environ for k in ("WH_RECEIVER", "WH_RATE", "WH_ROUNDS", "WH_SECONDS")) else "")
                   + "python3 loadtest/webhooks.py",
        "machine": perf.machine(), "nproc": os.cpu_count(),
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
        "commit": perf.revision(),
        "binaries": {b: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((perf.BIN / b).stat().st_mtime))
                     for b in ("darkroom", "loadtest")},
    }
    receiver = NginxReceiver() if os.environ.get("WH_RECEIVER") == "nginx" else Receiver()
    info["receiver"] = type(receiver).__name__
    runs = []
    try:
        for rnd in range(1, ROUNDS + 1):
            none = case_none(rnd)
            hook = case_webhook(rnd, receiver)
            runs.append({"round": rnd, "none": none, "webhook": hook})
            ev = hook["events"]
            print(f"round {rnd}: none {none['summary']['ok_per_s']:.1f} ok/s, webhook "
                  f"{hook['summary']['ok_per_s']:.1f} ok/s; {ev['delivered']}/{ev['expected']} events, "
                  f"lag p50 {f1(ev['lag_overall_ms']['p50'])} p99 {f1(ev['lag_overall_ms']['p99'])} ms",
                  file=sys.stderr)
    finally:
        receiver.stop()
        if runs:
            info["summary"] = summarise(runs)
            raw = {"info": info, "runs": [
                {"round": r["round"], "none": r["none"],
                 "webhook": {**r["webhook"], "events": {k: v for k, v in r["webhook"]["events"].items()
                                                         if not k.startswith("_")}}}
                for r in runs]}
            out = perf.SCRATCH / "webhooks.json"
            out.write_text(json.dumps(raw, indent=1, default=str))
            if len(runs) < ROUNDS:
                print(f"only {len(runs)} of {ROUNDS} rounds ran", file=sys.stderr)
            print(report(runs, info))
            print(f"raw numbers: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
