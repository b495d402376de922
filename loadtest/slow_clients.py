#!/usr/bin/env python3
"""Slow and silent clients next to normal traffic (`make slow-clients`).

Starts a release Darkroom on loopback with its defaults (except `max_connections`, sized
for the attack plus the normal clients), then for SLOW_SECONDS (default 30):

  * 500 silent connections: connect, send nothing, reconnect when closed;
  * 500 slow request heads: one header byte a second, reconnect when cut;
  * 200 trickling uploads: a 1 MB upload sent at 10 bytes a second, reconnect when cut;

the attackers spread over 127.0.1.1-127.0.1.8 (so the per-client cap alone does not
stop them), while 16 normal clients on 127.0.0.2 (keep-alive) fetch an item and its
public view and upload a small document in a loop. Prints the normal clients' latency
(p50/p99/max) and errors, how the attackers fared, and the server's peak RSS.
Loopback only; bounded in connections and time; ends only the server it started.
"""

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("SLOW_CLIENTS_BIN", ROOT / "target" / "release" / "darkroom"))
SECONDS = float(os.environ.get("SLOW_SECONDS", "30"))
SILENT, SLOW_HEADS, TRICKLES, NORMAL = 500, 500, 200, 16
ATTACKERS = [f"127.0.1.{i}" for i in range(1, 9)]
NORMAL_FROM = "127.0.0.2"
PDF = (ROOT / "tests" / "fixtures" / "pdf" / "ltnews18_1page.pdf").read_bytes()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir, port):
    config = data_dir / "config.toml"
    config.write_text(f'listen = "127.0.0.1:{port}"\ndata_dir = "{data_dir}"\n'
                      "[server]\nmax_connections = 4096\ndrain_secs = 0\n")
    args = [str(BINARY), "--config", str(config)]
    key = subprocess.run(args + ["keys", "create", "--scope", "write", "--name", "slow"],
                         check=True, capture_output=True, text=True).stdout.strip()
    log = open(data_dir / "server.log", "w")
    proc = subprocess.Popen(args + ["serve"], stdout=log, stderr=log)
    return proc, key


async def open_from(source, port):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


class Stats:
    def __init__(self):
        self.latencies, self.errors, self.statuses = [], [], {}
        self.attack = {"silent": [0, 0], "slow-head": [0, 0], "trickle": [0, 0]}  # opened, cut


async def hold(kind, source, port, stats, until, feed):
    """One attacker slot: connect, `feed` the connection until the server cuts it, again."""
    while time.time() < until:
        try:
            reader, writer = await open_from(source, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        stats.attack[kind][0] += 1
        try:
            await asyncio.wait_for(feed(reader, writer), timeout=until - time.time())
            stats.attack[kind][1] += 1  # the server answered or closed: cut off
        except (asyncio.TimeoutError, OSError):
            pass
        finally:
            writer.close()


async def silent(reader, writer):
    await reader.read(1)


async def slow_head(reader, writer):
    head = b"GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: " + b"a" * 1000
    for b in head:
        writer.write(bytes([b]))
        await writer.drain()
        got = await wait_read(reader, 1.0)
        if got is not None:
            return


async def trickle(key, reader, writer):
    writer.write(f"POST /api/v1/media HTTP/1.1\r\nHost: attacker\r\nAuthorization: Bearer {key}\r\n"
                 "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1048576\r\n\r\n"
                 "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.pdf\"\r\n\r\n%PDF-"
                 .encode())
    while True:
        writer.write(b"x" * 10)
        await writer.drain()
        if await wait_read(reader, 1.0) is not None:
            return


async def wait_read(reader, seconds):
    """Bytes (b"" at EOF) if the server said something within `seconds`, else None."""
    try:
        return await asyncio.wait_for(reader.read(4096), timeout=seconds)
    except asyncio.TimeoutError:
        return None


async def http(reader, writer, method, path, key, body=b"", content_type=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: normal\r\nAuthorization: Bearer {key}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    payload = await reader.readexactly(length)
    return int(status_line.split()[1]), payload


async def normal_client(n, port, key, item_id, stats, until):
    form = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"n.pdf\"\r\n\r\n"
            + PDF + b"\r\n--b--\r\n")
    reader, writer = await open_from(NORMAL_FROM, port)
    i = 0
    while time.time() < until:
        i += 1
        if i % 10 == n % 10:
            call = ("POST", "/api/v1/media", form, "multipart/form-data; boundary=b", 201)
        elif i % 2:
            call = ("GET", f"/api/v1/media/{item_id}", b"", None, 200)
        else:
            call = ("GET", f"/api/v1/public/media/{item_id}", b"", None, 200)
        method, path, body, ctype, want = call
        started = time.perf_counter()
        try:
            status, _ = await http(reader, writer, method, path, key, body, ctype)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            stats.errors.append(f"{method} {path}: {e!r}")
            writer.close()
            reader, writer = await open_from(NORMAL_FROM, port)
            continue
        stats.latencies.append(time.perf_counter() - started)
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if status != want:
            stats.errors.append(f"{method} {path}: {status}")
        await asyncio.sleep(0.01)
    writer.close()


async def sample_rss(pid, until, peak):
    while time.time() < until:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        await asyncio.sleep(0.25)


async def run(port, key, pid):
    stats, peak = Stats(), [0.0]
    reader, writer = await open_from(NORMAL_FROM, port)
    form = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"seed.pdf\"\r\n\r\n"
            + PDF + b"\r\n--b--\r\n")
    status, body = await http(reader, writer, "POST", "/api/v1/media", key, form,
                              "multipart/form-data; boundary=b")
    assert status == 201, (status, body)
    item_id = json.loads(body)["data"][0]["id"]
    writer.close()
    until = time.time() + SECONDS
    tasks = [sample_rss(pid, until, peak)]
    tasks += [hold("silent", ATTACKERS[i % 8], port, stats, until, silent) for i in range(SILENT)]
    tasks += [hold("slow-head", ATTACKERS[i % 8], port, stats, until, slow_head)
              for i in range(SLOW_HEADS)]
    tasks += [hold("trickle", ATTACKERS[i % 8], port, stats, until,
                   lambda r, w: trickle(key, r, w)) for i in range(TRICKLES)]
    await asyncio.sleep(2)  # the attack is in place before the normal clients start
    tasks += [normal_client(n, port, key, item_id, stats, until) for n in range(NORMAL)]
    await asyncio.gather(*tasks)
    return stats, peak[0]


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    data_dir = Path(tempfile.mkdtemp(prefix="darkroom-slow-"))
    port = free_port()
    proc, key = start_server(data_dir, port)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        stats, peak = asyncio.run(run(port, key, proc.pid))
    finally:
        proc.terminate()
        proc.wait(30)
    lat = sorted(stats.latencies)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    print(f"slow clients for {SECONDS:.0f} s: {SILENT} silent, {SLOW_HEADS} slow heads, "
          f"{TRICKLES} trickling uploads from {len(ATTACKERS)} addresses; {NORMAL} normal clients")
    print(f"normal: {len(lat)} requests, p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, "
          f"max {lat[-1] * 1000 if lat else 0:.2f} ms, statuses {stats.statuses}, "
          f"{len(stats.errors)} errors")
    for kind, (opened, cut) in stats.attack.items():
        print(f"attack {kind}: {opened} connections opened, {cut} cut off by the server")
    print(f"server peak RSS {peak:.0f} MB")
    for e in stats.errors[:10]:
        print(f"  error: {e}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
