#!/usr/bin/env python3
"""The PostgreSQL catalog (issue 25) side by side with redb, and one node against two.
Loopback only; every server is a fresh release server on a free port (perf.Server), every
PostgreSQL run a fresh database on the local cluster of scripts/pg-local.sh (already running:
this script never starts or stops it), every S3 run a fresh prefix of the SeaweedFS bucket
`darkroom-test` on 127.0.0.1:18333 (already running). Raw results: target/perf/cluster-*.json.

    CLUSTER_BIN=/work/bins/darkroom-2628de6 python3 loadtest/cluster.py a   # part A
    CLUSTER_BIN=/work/bins/darkroom-2628de6 python3 loadtest/cluster.py b   # part B
    CLUSTER_BIN=/work/bins/darkroom-2628de6 python3 loadtest/cluster.py c   # part C
    C_DB=<database part c made> CLUSTER_BIN=... python3 loadtest/cluster.py c-cpu

A: one node, redb against PostgreSQL (local storage, same binary), alternated redb pg redb
   pg (CLUSTER_ROUNDS, default 2), each a fresh data dir and database: upload-docs c64,
   upload-images c8, get-public c64, list c64, CLUSTER_SECONDS (default 20) each after 2 s
   of warm-up; ok/s, p99, the server's peak RSS.
B: one node (taskset -c 0) against two (taskset -c 0 / -c 1), processing.threads = 1, on a
   PostgreSQL catalog and the S3 store, behind nginx (round robin, no request buffering);
   upload-images c8 for B_SECONDS (default 30) through nginx, alternated one two one two
   (B_TARGET=first: every upload to the first node instead, so the second must claim
   the first's jobs).
   Images made ready: each node's darkroom_processing_jobs_total{outcome="ready"} scraped
   every second straight from the node (not through nginx), the rate taken over the
   measured window; plus the ready / unfinished counts in the database at the end.
   The load generator, nginx, PostgreSQL and SeaweedFS are not pinned: they share the
   same 2 cores with the nodes.
C: 1,000,000 items: the redb catalog of examples/seed (cached in target/perf/catalog-1000000,
   as scale.py does), `darkroom catalog copy --to <fresh db>` timed, pg_database_size; then
   the same library served from redb (in place) and from PostgreSQL (a data dir of its
   own), both up at once and each row run on one then the other: get by id, default list,
   folder + sort, search aurora / beach, cursor page deep, 64 clients, C_SECONDS (default
   10) each; then one timed request each for a 2- and a 1-character search.
"""

import base64
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402
from perf import BIN, ROOT, SCRATCH, free_port, loadtest, sh, wait_http  # noqa: E402

DARKROOM = Path(os.environ.get("CLUSTER_BIN", BIN / "darkroom"))
ROUNDS = int(os.environ.get("CLUSTER_ROUNDS", "2"))
PG_BASE = sh([ROOT / "scripts" / "pg-local.sh", "url"]).strip()
S3_PORT = 18333
SIGNING_KEY = "cluster-bench-signing-key-0123456789abcdef"


def psql(url, sql):
    return sh(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], stderr=subprocess.STDOUT).strip()


def fresh_db(tag):
    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    psql(PG_BASE, f'CREATE DATABASE "{name}"')
    return PG_BASE.rsplit("/", 1)[0] + "/" + name, name


def drop_db(name):
    try:
        psql(PG_BASE, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except subprocess.CalledProcessError as e:
        print(f"drop {name}: {e.stdout}", file=sys.stderr)


def pg_config(url):
    return f'[catalog]\nurl = "{url}"\n[delivery]\nsigning_key = "{SIGNING_KEY}"\n'


def s3_config(prefix):
    return (f'[storage]\ntype = "s3"\nendpoint = "http://127.0.0.1:{S3_PORT}"\nbucket = "darkroom-test"\n'
            f'region = "us-east-1"\npath_style = true\naccess_key_id = "darkroom-test"\n'
            f'secret_access_key = "darkroom-test-secret"\nprefix = "{prefix}"\n'
            f'public_base_url = "http://127.0.0.1:{S3_PORT}/darkroom-test/{prefix}"\n')


class Node(perf.Server):
    """perf.Server with a chosen binary, an optional CPU pin (taskset execs the server, so
    the PID is the server's) and an optional shared key (the nodes of one catalog)."""

    def __init__(self, name, config_text="", cpus=None, data_dir=None, key=None):
        self.name = name
        self.keep = data_dir is not None
        self.dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix=f"cluster-{name}-", dir=SCRATCH))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = self.dir / ("config.toml" if not self.keep else f"config-{name}.toml")
        config.write_text(f'listen = "127.0.0.1:{self.port}"\ndata_dir = "{self.dir}"\n'
                          "[server]\nmax_connections_per_client = 0\n" + config_text)
        self.args = [DARKROOM, "--config", config]
        self.key = key or sh(self.args + ["keys", "create", "--scope", "write", "--name", "bench"],
                             stderr=subprocess.DEVNULL).strip()
        self.log = open(self.dir / f"server-{name}.log", "w")
        pin = ["taskset", "-c", cpus] if cpus is not None else []
        self.proc = subprocess.Popen(pin + [str(a) for a in self.args] + ["serve"],
                                     stdout=self.log, stderr=self.log)
        wait_http(self.url + "/readyz", 90)

    def jobs_ready(self):
        text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        m = re.search(r'^darkroom_processing_jobs_total\{outcome="ready"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0


class Nginx:
    def __init__(self, nodes):
        self.dir = Path(tempfile.mkdtemp(prefix="cluster-nginx-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        d = self.dir
        servers = "".join(f"server {n.url[len('http://'):]} max_fails=1 fail_timeout=30s;\n" for n in nodes)
        (d / "nginx.conf").write_text(
            f"worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n access_log off;\n client_max_body_size 0;\n client_body_temp_path {d}/body;\n"
            f" proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n"
            f" scgi_temp_path {d}/scgi;\n upstream darkroom {{\n{servers} keepalive 64;\n}}\n"
            f" server {{\n listen 127.0.0.1:{self.port};\n location / {{\n proxy_pass http://darkroom;\n"
            ' proxy_http_version 1.1;\n proxy_set_header Connection "";\n proxy_request_buffering off;\n'
            " proxy_buffering off;\n proxy_next_upstream error timeout;\n }\n }\n}\n")
        self.proc = subprocess.Popen(["nginx", "-p", str(d), "-c", "nginx.conf", "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/readyz", 20)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def cell(res):
    s = res["summary"]
    return {"ok_per_s": round(s["ok_per_s"], 1), "p50": s["latency_ms"]["p50"], "p99": s["latency_ms"]["p99"],
            "requests": s["requests"], "ok": s["ok"], "statuses": s["statuses"], "errors": s["errors"],
            "peak_rss_mb": round(res["peak_rss_mb"] or 0), "steal_pct": round(res.get("steal_pct", 0), 1)}


# ---------------------------------------------------------------- A
def part_a():
    secs = float(os.environ.get("CLUSTER_SECONDS", "20"))
    scenarios = [("upload-docs c64", "upload-docs", ["-c", 64]),
                 ("upload-images c8", "upload-images", ["-c", 8]),
                 ("get-public c64", "get-public", ["-c", 64]),
                 ("list c64", "list", ["-c", 64])]
    rows = {}
    for rnd in range(1, ROUNDS + 1):
        for label in ("redb", "pg"):
            url, db = fresh_db("a") if label == "pg" else (None, None)
            node = Node(f"a{rnd}-{label}", pg_config(url) if url else "")
            try:
                for name, scenario, flags in scenarios:
                    res = loadtest(f"cluster-a-{rnd}-{label}-{scenario}", node.url, scenario, *flags,
                                   "--duration", secs, "--warmup", 2, key=node.key, server=node)
                    rows.setdefault(name, {}).setdefault(label, []).append(cell(res))
                    print(name, label, cell(res), file=sys.stderr)
            finally:
                node.stop()
                if db:
                    drop_db(db)
    (SCRATCH / "cluster-a.json").write_text(json.dumps(rows, indent=1))
    print("| scenario | " + " | ".join(f"{l} round {r}" for r in range(1, ROUNDS + 1) for l in ("redb", "pg")) + " |")
    for name, by in rows.items():
        cells = []
        for r in range(ROUNDS):
            for l in ("redb", "pg"):
                c = by[l][r]
                cells.append(f"{c['ok_per_s']:,.0f} ok/s, p99 {c['p99']:.1f} ms, {c['peak_rss_mb']} MB")
        print(f"| {name} | " + " | ".join(cells) + " |")


# ---------------------------------------------------------------- B
def cpu_by_process():
    """CPU seconds (user + system) so far of every live process, grouped by what it is."""
    groups = {}
    hz = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1: text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])
        group = next((g for g in ("darkroom", "postgres", "weed", "nginx", "loadtest") if comm.startswith(g)),
                     "other")
        groups[group] = groups.get(group, 0.0) + ticks / hz
    # The load generator has exited (and been reaped) by the second snapshot: its CPU is
    # this process's children's.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    groups["loadtest"] = children.ru_utime + children.ru_stime
    cpu = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    groups["machine_busy"] = (sum(cpu[:8]) - cpu[3] - cpu[4]) / hz
    return groups


def run_b(nodes_n, rnd, secs):
    url, db = fresh_db("b")
    prefix = f"bench-b-{uuid.uuid4().hex[:8]}"
    cfg = pg_config(url) + s3_config(prefix) + "[processing]\nthreads = 1\n"
    nodes, nginx = [], None
    samples = []
    stop = threading.Event()
    try:
        for i in range(nodes_n):
            nodes.append(Node(f"b{rnd}-{nodes_n}n-{i}", cfg, cpus=str(i),
                              key=nodes[0].key if nodes else None))
        nginx = Nginx(nodes)

        def sampler():
            deadline = time.time() + secs + 120
            while not stop.is_set() and time.time() < deadline:
                try:
                    samples.append((time.time(), sum(n.jobs_ready() for n in nodes)))
                except OSError:
                    pass
                stop.wait(1.0)

        t = threading.Thread(target=sampler, daemon=True)
        t.start()
        for n in nodes:
            n.reset_peak()
        cpu0 = cpu_by_process()
        started = time.time()
        # B_TARGET=first: every upload to node 0, so the others must claim its jobs.
        target = nodes[0].url if os.environ.get("B_TARGET") == "first" else nginx.url
        res = loadtest(f"cluster-b-{rnd}-{nodes_n}n", target, "upload-images", "-c", 8,
                       "--duration", secs, "--warmup", 2, key=nodes[0].key)
        ended = time.time()
        cpu1 = cpu_by_process()
        time.sleep(1.2)
        stop.set()
        t.join(5)
        # The measured window: from the end of the warm-up (started + 2 s + the generator's
        # image preparation, bounded by the run's end) to the end of the run.
        w0, w1 = ended - secs, ended

        def at(ts):
            return min(samples, key=lambda s: abs(s[0] - ts))

        s0, s1 = at(w0), at(w1)
        rate = (s1[1] - s0[1]) / max(1e-9, s1[0] - s0[0])
        media = int(psql(url, "select count(*) from media"))
        unfinished = int(psql(url, "select count(*) from jobs"))
        out = {"nodes": nodes_n, "round": rnd, "upload": cell(res),
               "ready_per_s": round(rate, 2), "ready_total_at_end": s1[1],
               "ready_in_window": s1[1] - s0[1], "window_s": round(s1[0] - s0[0], 1),
               "media_rows": media, "jobs_unfinished": unfinished,
               "run_s": round(ended - started, 1),
               # CPU seconds each kind of process took over the whole run (image
               # preparation, warm-up and measured window), of 2 x run_s available.
               "cpu_s": {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 1) for k in cpu1},
               "node_rss_mb": [round(n.peak_rss_mb()) for n in nodes],
               "per_node_ready": [n.jobs_ready() for n in nodes]}
        print(out, file=sys.stderr)
        return out
    finally:
        stop.set()
        if nginx:
            nginx.stop()
        for n in nodes:
            n.stop()
        drop_db(db)


def part_b():
    secs = float(os.environ.get("B_SECONDS", "30"))
    runs = []
    for rnd in range(1, ROUNDS + 1):
        for n in (1, 2):
            perf.settle()
            runs.append(run_b(n, rnd, secs))
    (SCRATCH / "cluster-b.json").write_text(json.dumps(runs, indent=1))
    print("| nodes | round | uploads acked/s | upload p99 ms | 503s | images ready/s (window) | "
          "ready at end / media rows / unfinished jobs | peak RSS per node MB |")
    for r in runs:
        u = r["upload"]
        print(f"| {r['nodes']} | {r['round']} | {u['ok_per_s']:.1f} | {u['p99']:.0f} | {u['statuses'].get('503', 0)} | "
              f"{r['ready_per_s']:.2f} | {r['ready_total_at_end']:.0f} / {r['media_rows']} / {r['jobs_unfinished']} | "
              f"{', '.join(map(str, r['node_rss_mb']))} |")
    for r in runs:
        print(f"CPU s over {r['run_s']} s ({r['nodes']} node(s), round {r['round']}): {r.get('cpu_s')}")


# ---------------------------------------------------------------- C
def get(node, path, timeout=600):
    req = urllib.request.Request(node.url + path, headers={"Authorization": f"Bearer {node.key}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def timed(node, path):
    started = time.time()
    body = get(node, path)
    return round(1000 * (time.time() - started), 1), body.get("total")


def part_c():
    n = 1_000_000
    secs = float(os.environ.get("C_SECONDS", "10"))
    directory = SCRATCH / f"catalog-{n}"
    if not (directory / "seed.json").exists():
        sys.exit(f"{directory} is not seeded: run `SCALE_SIZES=1000000 SCALE_BUILD=0 python3 loadtest/scale.py` "
                 f"or `target/release/examples/seed {directory} {n}` first")
    result = {"items": n, "redb_bytes": (directory / "darkroom.redb").stat().st_size}
    reuse = os.environ.get("C_DB")
    if reuse:
        # A database an earlier run copied (its copy figures are in cluster-c.json).
        db = reuse
        url = PG_BASE.rsplit("/", 1)[0] + "/" + db
        previous = json.loads((SCRATCH / "cluster-c.json").read_text())
        result.update({k: previous[k] for k in ("copy_seconds", "copy_output", "pg_bytes",
                                                "pg_analyzed_after_copy")})
    else:
        url, db = fresh_db("c")
        copy_cfg = directory / "copy-config.toml"
        copy_cfg.write_text(f'data_dir = "{directory}"\n')
        perf.settle()
        started = time.time()
        out = subprocess.run([DARKROOM, "--config", copy_cfg, "catalog", "copy", "--to", url],
                             text=True, capture_output=True)
        result["copy_seconds"] = round(time.time() - started, 1)
        result["copy_output"] = (out.stdout + out.stderr)[-3000:]
        if out.returncode != 0:
            print(result["copy_output"], file=sys.stderr)
            sys.exit("catalog copy failed")
        result["pg_bytes"] = int(psql(url, "select pg_database_size(current_database())"))
        result["pg_analyzed_after_copy"] = psql(url, "select coalesce(last_analyze, last_autoanalyze)::text "
                                                     "from pg_stat_user_tables where relname = 'media'")
        (SCRATCH / "cluster-c.json").write_text(json.dumps(result, indent=1, default=str))
    # The copy runs no ANALYZE: the planner's statistics come from autovacuum, a minute
    # or so after the copy. Measured with them in place.
    psql(url, "ANALYZE")
    result["db"] = db
    print(result, file=sys.stderr)
    redb = Node("c-redb", data_dir=directory)
    pgn = Node("c-pg", pg_config(url))
    servers = {"redb": redb, "pg": pgn}
    try:
        # 2,000 ids spread over the library (the same in both catalogs: the copy keeps ids).
        ids = psql(url, "select id from media tablesample system (1) repeatable (25) limit 2000").split()
        ids_file = SCRATCH / "cluster-c-ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        # A cursor at depth n-124 of the default listing (newest first): `offset` stops at
        # 10,000 (ListQuery::MAX_OFFSET), so it is made from the 124th-oldest item's position
        # as the server makes it (model::query::cursor, index::push_tail: format byte 1,
        # 'c', 'd', created_us big-endian, id).
        created_us, last_id = psql(url, "select created_us, id from media order by created_us, id "
                                        "offset 123 limit 1").split("|")
        deep = base64.urlsafe_b64encode(bytes([1]) + b"cd" + int(created_us).to_bytes(8, "big")
                                        + last_id.encode()).decode().rstrip("=")
        paths = {
            "default": ["/api/v1/media?limit=24"],
            "folder_sort": [f"/api/v1/media?folder=/f{i:02}&sort=filename&order=asc&limit=24" for i in range(100)],
            "search_selective": ["/api/v1/media?search=aurora&limit=24"],
            "search_common": ["/api/v1/media?search=beach&limit=24"],
            "cursor_deep": [f"/api/v1/media?limit=24&cursor={deep}"],
        }
        for label, node in servers.items():
            page = get(node, paths["cursor_deep"][0])
            result.setdefault("cursor_check", {})[label] = [len(page["data"]), page["data"][0]["id"]]
        result["one_off"] = {}
        for label, node in servers.items():
            result["one_off"][label] = {
                "total_all": get(node, "/api/v1/media?limit=1")["total"],
                "search_aurora_total": get(node, "/api/v1/media?search=aurora&limit=1")["total"],
                "search_beach_total": get(node, "/api/v1/media?search=beach&limit=1")["total"],
            }
        flags = ["-c", 64, "--duration", secs, "--warmup", 2, "--timeout", 120]
        rows = {}
        for name in ["get", "default", "folder_sort", "search_selective", "search_common", "cursor_deep"]:
            for label, node in servers.items():
                if name == "get":
                    res = loadtest(f"cluster-c-{label}-get", node.url, "get-public", "--ids-file", ids_file,
                                   *flags, server=node)
                else:
                    f = SCRATCH / f"cluster-c-{label}-{name}.txt"
                    f.write_text("\n".join(paths[name]) + "\n")
                    res = loadtest(f"cluster-c-{label}-{name}", node.url, "list", "--paths-file", f,
                                   *flags, key=node.key, server=node)
                rows.setdefault(name, {})[label] = cell(res)
                print(name, label, cell(res), file=sys.stderr)
        result["rows"] = rows
        # One request each, after the load: a short term no trigram can serve, and the
        # search computed afresh (a page past the 1,000 positions an answer remembers).
        for label, node in servers.items():
            o = result["one_off"][label]
            o["search_ab_ms_total"] = timed(node, "/api/v1/media?search=ab&limit=24")
            o["search_a_ms_total"] = timed(node, "/api/v1/media?search=a&limit=24")
            o["search_ab_again_ms_total"] = timed(node, "/api/v1/media?search=ab&limit=24")
            o["aurora_offset1000_ms"] = timed(node, "/api/v1/media?search=aurora&limit=24&offset=1000")[0]
            o["beach_offset1000_ms"] = timed(node, "/api/v1/media?search=beach&limit=24&offset=1000")[0]
            o["rss_mb_now"] = round(node.rss_mb())
            print(label, o, file=sys.stderr)
    finally:
        redb.stop()
        pgn.stop()
        (SCRATCH / "cluster-c.json").write_text(json.dumps(result, indent=1, default=str))
    (SCRATCH / "cluster-c.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"copy {result['copy_seconds']} s, pg {result['pg_bytes'] / 2**20:,.0f} MB, "
          f"redb {result['redb_bytes'] / 2**20:,.0f} MB")
    print("| row | redb p50 / p99 ms, req/s, peak RSS | pg p50 / p99 ms, req/s, peak RSS |")
    for name, by in result["rows"].items():
        print(f"| {name} | " + " | ".join(
            f"{c['p50']:.2f} / {c['p99']:.2f}, {c['ok_per_s']:,.0f}/s, {c['peak_rss_mb']} MB"
            + (f" ({c['requests'] - c['ok']} failed)" if c['requests'] != c['ok'] else "")
            for c in (by["redb"], by["pg"])) + " |")
    print(json.dumps(result["one_off"], indent=1))


def part_c_cpu():
    """Where the CPU goes on the PostgreSQL node at 1M items: C_DB (a database part c
    copied) served by one node, three rows of part c at 64 clients, CPU seconds of the
    node, of PostgreSQL and of the load generator over each row."""
    db = os.environ["C_DB"]
    url = PG_BASE.rsplit("/", 1)[0] + "/" + db
    secs = float(os.environ.get("C_SECONDS", "10"))
    node = Node("c-cpu-pg", pg_config(url))
    out = {}
    try:
        ids_file = SCRATCH / "cluster-c-ids.txt"
        flags = ["-c", 64, "--duration", secs, "--warmup", 2, "--timeout", 120]
        for name in ("get", "default", "search_selective"):
            cpu0 = cpu_by_process()
            if name == "get":
                res = loadtest(f"cluster-c-cpu-{name}", node.url, "get-public", "--ids-file", ids_file,
                               *flags, server=node)
            else:
                res = loadtest(f"cluster-c-cpu-{name}", node.url, "list", "--paths-file",
                               SCRATCH / f"cluster-c-pg-{name}.txt", *flags, key=node.key, server=node)
            cpu1 = cpu_by_process()
            out[name] = {"row": cell(res), "cpu_s": {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 1) for k in cpu1}}
            print(name, out[name], file=sys.stderr)
    finally:
        node.stop()
    (SCRATCH / "cluster-c-cpu.json").write_text(json.dumps(out, indent=1))
    for name, r in out.items():
        print(f"{name}: {r['row']['ok_per_s']:,.0f} ok/s; CPU s over {secs + 2:.0f} s + start: {r['cpu_s']}")


if __name__ == "__main__":
    SCRATCH.mkdir(parents=True, exist_ok=True)
    parts = {"a": part_a, "b": part_b, "c": part_c, "c-cpu": part_c_cpu}
    if len(sys.argv) != 2 or sys.argv[1] not in parts:
        sys.exit(__doc__)
    parts[sys.argv[1]]()
