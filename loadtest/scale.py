#!/usr/bin/env python3
"""`make perf` (second part) and `make perf-10m`: how the catalog's costs grow with its size.

For each size (SCALE_SIZES, default 10000,100000,1000000; `make perf-10m` runs 10000000),
a catalog of realistic synthetic items (examples/seed, MediaRecord::synthetic) is seeded once
and cached in target/perf/catalog-N, then a release server on it answers, at 64 clients for
PERF_SECONDS each: get-by-id, the default list, folder + sort, a selective search (`aurora`,
≤ 0.1% of items), a common search (`beach`, ≥ 10%), a cursor page at depth n-100 and
`offset=n-100`. The table (p50/p99 per row, catalog bytes per item, peak RSS, seconds to
seed) goes into BENCHMARKS.md between the scale markers; raw results into
target/perf/scale-N.json. Everything runs on 127.0.0.1.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from perf import BIN, SCRATCH, SECONDS, Server, build, loadtest, machine, revision, write_report

SIZES = [int(n) for n in os.environ.get("SCALE_SIZES", "10000,100000,1000000").split(",")]
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
SELECTIVE, COMMON = "aurora", "beach"
TARGETS = {"get": 20, "default": 20, "folder_sort": 20, "search_selective": 50,
           "search_common": 500, "cursor_deep": 20}


def seeded(n):
    """The cached catalog dir of n items, and the seconds its seeding took."""
    directory = SCRATCH / f"catalog-{n}"
    stamp = directory / "seed.json"
    if not stamp.exists():
        print(f"seeding {n:,} items into {directory}", file=sys.stderr)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "darkroom.redb").unlink(missing_ok=True)
        started = time.time()
        subprocess.run([BIN / "examples" / "seed", directory, str(n)], check=True)
        stamp.write_text(json.dumps({"items": n, "seconds": time.time() - started}))
    return directory, json.loads(stamp.read_text())["seconds"]


def get(server, path):
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.key}"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def measure(n):
    directory, seed_secs = seeded(n)
    catalog_bytes = (directory / "darkroom.redb").stat().st_size
    server = Server(f"scale-{n}", data_dir=directory)
    try:
        depth = max(0, n - 124)
        deep = get(server, f"/api/v1/media?limit=24&offset={depth}")
        paths = {
            "default": ["/api/v1/media?limit=24"],
            "folder_sort": [f"/api/v1/media?folder=/f{i:02}&sort=filename&order=asc&limit=24"
                            for i in range(100)],
            "search_selective": [f"/api/v1/media?search={SELECTIVE}&limit=24"],
            "search_common": [f"/api/v1/media?search={COMMON}&limit=24"],
            "cursor_deep": [f"/api/v1/media?limit=24&cursor={deep['nextCursor']}"],
            "offset_deep": [f"/api/v1/media?limit=24&offset={max(0, n - 100)}"],
        }
        # Computed each time: a page past the 1,000 positions a search answer remembers.
        uncached = {}
        for term in (SELECTIVE, COMMON):
            times = []
            for _ in range(5):
                started = time.time()
                get(server, f"/api/v1/media?search={term}&limit=24&offset=1000")
                times.append(1000 * (time.time() - started))
            uncached[term] = sorted(times)[2]
        shares = {term: get(server, f"/api/v1/media?search={term}&limit=1")["total"] / n
                  for term in (SELECTIVE, COMMON)}
        ids = [i["id"] for page in range(20)
               for i in get(server, f"/api/v1/media?limit=100&offset={page * (n // 25)}")["data"]]
        ids_file = SCRATCH / f"scale-ids-{n}.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        flags = ["-c", 64, "--duration", SECONDS, "--warmup", 2, "--timeout", 120]
        rows = {"get": loadtest(f"scale-{n}-get", server.url, "get-public", "--ids-file", ids_file,
                                *flags, server=server)}
        for name, lines in paths.items():
            f = SCRATCH / f"scale-{n}-{name}.txt"
            f.write_text("\n".join(lines) + "\n")
            rows[name] = loadtest(f"scale-{n}-{name}", server.url, "list", "--paths-file", f,
                                  *flags, key=server.key, server=server)
    finally:
        server.stop()
    result = {"items": n, "seed_seconds": seed_secs, "catalog_bytes": catalog_bytes,
              "shares": shares, "uncached_ms": uncached, "rows": rows}
    (SCRATCH / f"scale-{n}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def report(results):
    sizes = [r["items"] for r in results]
    head = "| p50 / p99 ms at 64 clients | target (p99) | " + " | ".join(f"{n:,}" for n in sizes) + " |"
    lines = [BEGIN, "## The catalog at scale (`make perf`, `make perf-10m`)", "",
             f"- Command: `make perf` (`loadtest/scale.py`, SCALE_SIZES={','.join(map(str, sizes))})",
             f"- Machine: {machine()}; the harness runs on the same 2 cores as the server",
             f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {revision()}",
             f"- Each row: {SECONDS:.0f} s at 64 connections after a 2 s warm-up, "
             "`loadtest list --paths-file` (get: `loadtest get-public --ids-file`, 2,000 ids spread "
             "over the library). Catalogs from `examples/seed` (realistic names and alt texts).",
             "- A search's first request after a commit computes its exact total and first 1,000 "
             "positions (`catalog/search/memo.rs`); identical requests meanwhile wait for it and later "
             "pages within those positions are slices of it: the search rows measure that. The "
             "'computed afresh' row asks for a page past those positions, computed on every request.",
             "", head, "|---|---|" + "---|" * len(sizes)]
    names = {"get": "get by id", "default": "default list (newest 24)", "folder_sort": "folder + sort by filename",
             "search_selective": f"search `{SELECTIVE}` (selective)", "search_common": f"search `{COMMON}` (common)",
             "cursor_deep": "cursor page at depth n-100", "offset_deep": "`offset=n-100`"}
    for key, label in names.items():
        cells = []
        for r in results:
            s = r["rows"][key]["summary"]
            l = s["latency_ms"]
            bad = s["requests"] - s["ok"]
            cells.append(f"{l['p50']:.2f} / {l['p99']:.2f}" + (f" ({bad} failed)" if bad else ""))
        target = f"< {TARGETS[key]} ms" if key in TARGETS else "grows with depth: use `cursor`"
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    def extra(label, fmt):
        lines.append(f"| {label} | | " + " | ".join(fmt(r) for r in results) + " |")
    extra("requests/s: get, search common", lambda r: f"{r['rows']['get']['summary']['ok_per_s']:,.0f}, "
          f"{r['rows']['search_common']['summary']['ok_per_s']:,.1f}")
    extra("search computed afresh (`offset=1000`, 1 client), median ms: selective / common",
          lambda r: f"{r['uncached_ms'][SELECTIVE]:.1f} / {r['uncached_ms'][COMMON]:.1f}")
    extra("share of items matching selective / common", lambda r: f"{100 * r['shares'][SELECTIVE]:.3f}% / "
          f"{100 * r['shares'][COMMON]:.1f}%")
    extra("catalog file (bytes per item)", lambda r: f"{r['catalog_bytes'] / 2**20:,.0f} MB "
          f"({r['catalog_bytes'] / r['items']:,.0f})")
    extra("peak RSS over the rows (MB)", lambda r: f"{max(x['peak_rss_mb'] or 0 for x in r['rows'].values()):.0f}")
    extra("seconds to seed", lambda r: f"{r['seed_seconds']:,.0f}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main():
    SCRATCH.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SCALE_BUILD", "1") != "0":
        build()
    results = [measure(n) for n in SIZES]
    text = report(results)
    write_report(text, BEGIN, END)
    print(text)


if __name__ == "__main__":
    main()
