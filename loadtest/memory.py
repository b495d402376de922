#!/usr/bin/env python3
"""`make perf`'s memory rows: the server's peak RSS under the loads that once took it far
past its budget, and while its pool decodes the worst images the checks allow. Each
binary in MEMORY_BINS ("label=path,label=path"; default: this tree's release build) runs
every scenario, one after the other, in one go, so that figures of a before and an after
build sit side by side:

  * 512 connections uploading 100 KB documents for 10 s (one address, no per-client cap);
  * a library grown through the API by 64 clients for 25 s, and the RSS 20 s after;
  * 64 clients each sending a 50 MB file;
  * the three worst images of examples/worst_inputs.rs (a 100 MP progressive JPEG, a
    100 MP 16-bit PNG, a 42 MP lossless WebP), uploaded together and processed.

The table goes into BENCHMARKS.md between the memory markers; raw results go to
target/perf/memory.json.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402

ROOT, BIN, SCRATCH = perf.ROOT, perf.BIN, perf.SCRATCH
WORST = SCRATCH / "worst"
BEGIN, END = "<!-- memory:begin -->", "<!-- memory:end -->"
CONFIG = "max_connections = 4096\n"  # appended to perf.Server's [server] section


def binaries():
    """(label, path, env) of each build to measure: MEMORY_BINS is "label=path" items,
    comma-separated; a path may end in "?NAME=VALUE&..." for environment variables (an
    allocator setting, say)."""
    spec = os.environ.get("MEMORY_BINS", f"this={BIN / 'darkroom'}")
    out = []
    for part in spec.split(","):
        label, rest = part.split("=", 1)
        path, _, query = rest.partition("?")
        env = dict(kv.split("=", 1) for kv in query.split("&") if kv)
        out.append((label, Path(path), env))
    return out


def upload_file(url, key, path):
    """POSTs one file as multipart; returns (status, body)."""
    boundary = "memory-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{path.name}\"\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head) + path.stat().st_size + len(tail)
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=600)
    conn.putrequest("POST", "/api/v1/media")
    conn.putheader("Authorization", f"Bearer {key}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    conn.send(head)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            conn.send(chunk)
    conn.send(tail)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def until_processed(server, ids, seconds=600):
    deadline = time.time() + seconds
    states = {}
    while time.time() < deadline:
        for i in ids:
            req = urllib.request.Request(f"{server.url}/api/v1/media/{i}",
                                         headers={"Authorization": f"Bearer {server.key}"})
            states[i] = json.load(urllib.request.urlopen(req))["data"]["status"]
        if all(s != "processing" for s in states.values()):
            return states
        time.sleep(0.5)
    return states


def item_count(server):
    req = urllib.request.Request(f"{server.url}/api/v1/media?limit=1",
                                 headers={"Authorization": f"Bearer {server.key}"})
    return json.load(urllib.request.urlopen(req))["total"]


def run(label, binary, env):
    r = {}

    def server(name):
        return perf.Server(f"mem-{label}-{name}", config_text=CONFIG, binary=binary, env=env)

    s = server("512")
    try:
        r["uploads_512"] = perf.loadtest(f"mem-{label}-512", s.url, "upload-docs", "-c", 512,
                                         "--duration", 10, "--warmup", 0, key=s.key, server=s)
        time.sleep(20)
        r["uploads_512"]["idle_rss_mb"] = s.rss_mb()
    finally:
        s.stop()
    s = server("library")
    try:
        r["library"] = perf.loadtest(f"mem-{label}-library", s.url, "upload-docs", "-c", 64,
                                     "--duration", 25, "--warmup", 0, key=s.key, server=s)
        r["library"]["end_rss_mb"] = s.rss_mb()
        time.sleep(20)
        r["library"]["idle_rss_mb"] = s.rss_mb()
        r["library"]["items"] = item_count(s)
        r["library"]["catalog_mb"] = (s.dir / "darkroom.redb").stat().st_size / 1e6
    finally:
        s.stop()
    s = server("large")
    try:
        r["large"] = perf.loadtest(f"mem-{label}-large", s.url, "upload-large", "-c", 64,
                                   "--requests", 64, "--warmup", 0, "--timeout", 600,
                                   key=s.key, server=s)
    finally:
        s.stop()
    s = server("decode")
    try:
        s.reset_peak()
        results = {}
        threads = [threading.Thread(target=lambda p=p: results.__setitem__(p.name, upload_file(s.url, s.key, p)))
                   for p in sorted(WORST.iterdir())]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = [body["data"][0]["id"] for status, body in results.values() if status == 201]
        refused = {name: body["error"]["code"] for name, (status, body) in results.items() if status != 201}
        states = until_processed(s, ids)
        r["decode"] = {"peak_rss_mb": s.peak_rss_mb(), "statuses": states, "refused": refused,
                       "files": {p.name: p.stat().st_size for p in WORST.iterdir()}}
    finally:
        s.stop()
    return r


def table(all_results):
    rows = ["| build | 512 × 100 KB uploads: peak / 20 s later (MB) | library: items, peak / end / idle (MB), catalog (MB) "
            "| 64 × 50 MB uploads: peak (MB) | worst decodes: peak (MB), outcome |",
            "|---|---|---|---|---|"]
    for label, r in all_results.items():
        u, lib, large, dec = r["uploads_512"], r["library"], r["large"], r["decode"]
        outcome = ", ".join(f"{k}" for k in dec["statuses"].values()) or "-"
        if dec["refused"]:
            outcome += "; refused " + ", ".join(f"{n}: {c}" for n, c in dec["refused"].items())
        rows.append(
            f"| {label} | {u['peak_rss_mb']:.0f} / {u['idle_rss_mb']:.0f} "
            f"({u['summary']['ok_per_s']:.0f} uploads/s) "
            f"| {lib['items']}, {lib['peak_rss_mb']:.0f} / {lib['end_rss_mb']:.0f} / {lib['idle_rss_mb']:.0f}, "
            f"{lib['catalog_mb']:.0f} | {large['peak_rss_mb']:.0f} | {dec['peak_rss_mb']:.0f}, {outcome} |")
    return "\n".join(rows)


def main():
    if os.environ.get("MEMORY_BUILD", "1") != "0":  # 0: measure the binaries as they are
        subprocess.run(["cargo", "build", "--release", "--workspace", "--bins",
                        "--example", "worst_inputs"], cwd=ROOT, check=True)
    if not (WORST / "lossless-42mp.webp").exists():
        subprocess.run([BIN / "examples" / "worst_inputs", WORST], check=True)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    all_results = {label: run(label, binary, env) for label, binary, env in binaries()}
    (SCRATCH / "memory.json").write_text(json.dumps(all_results, indent=2, default=str))
    commit = perf.sh(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"{BEGIN}\nMeasured {when} on {perf.machine()}, commit {commit}, with "
               f"`python3 loadtest/memory.py` (MEMORY_BINS={os.environ.get('MEMORY_BINS', 'this tree')}).\n\n"
               f"{table(all_results)}\n{END}")
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text()
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text += "\n## Memory under load\n\n" + section + "\n"
    bench.write_text(text)
    print(table(all_results))


if __name__ == "__main__":
    main()
