"""get-public against the bare hyper anchor with wrk, interleaved (anchor, Darkroom, ...),
on a release Darkroom holding 200 small documents; prints req/s, p99 and the server's CPU
per request from /proc. Quicker than `make perf` for before/after work on the read path.

    cargo build --release --workspace --bins
    ROUNDS=3 SECS=8 python3 loadtest/get_public_ab.py     (HOLD=N keeps the server N s)
"""
import json, subprocess, sys, time, urllib.request, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf
perf.SCRATCH.mkdir(parents=True, exist_ok=True)
SCRATCH = perf.SCRATCH / "get-public-ab"
SCRATCH.mkdir(exist_ok=True)
s = perf.Server("pub")
try:
    ids = []
    for i in range(200):
        body = f"doc {i}".encode()
        b = "xbound"
        data = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"n{i}.pdf\"\r\n"
                f"Content-Type: application/pdf\r\n\r\n").encode() + b"%PDF-1.4\n%" + body + b"\n%%EOF\n" + f"\r\n--{b}--\r\n".encode()
        req = urllib.request.Request(s.url + "/api/v1/media", data=data, method="POST",
            headers={"Authorization": f"Bearer {s.key}", "Content-Type": f"multipart/form-data; boundary={b}"})
        ids.append(json.load(urllib.request.urlopen(req))["data"][0]["id"])
    idf = SCRATCH / "ids.txt"; idf.write_text("\n".join(ids) + "\n")
    item = SCRATCH / "item.json"; item.write_bytes(urllib.request.urlopen(s.url + f"/api/v1/public/media/{ids[0]}").read())
    proc, anchor_url = perf.anchor(item)
    try:
        secs = os.environ.get("SECS", "10")
        for r in range(int(os.environ.get("ROUNDS", "2"))):
            for name, url in (("anchor", anchor_url), ("darkroom", s.url)):
                t0 = open(f"/proc/{s.proc.pid}/stat").read().split()[13:15] if name == "darkroom" else None
                out = subprocess.run(["wrk", "-t2", "-c64", f"-d{secs}s", "--latency", "-s", str(perf.ROOT / "loadtest" / "wrk" / "get-public.lua"), url],
                                     env={**os.environ, "IDS": str(idf)}, capture_output=True, text=True).stdout
                rps = [l for l in out.splitlines() if "Requests/sec" in l][0].split()[-1]
                p99 = [l for l in out.splitlines() if l.strip().startswith("99%")][0].split()[-1]
                extra = ""
                if t0:
                    t1 = open(f"/proc/{s.proc.pid}/stat").read().split()[13:15]
                    reqs = float(rps) * float(secs)
                    extra = f" cpu/req user {(int(t1[0])-int(t0[0]))*1e4/reqs:.1f}us sys {(int(t1[1])-int(t0[1]))*1e4/reqs:.1f}us"
                print(f"round {r} {name}: {rps} req/s p99 {p99}{extra}", flush=True)
        if os.environ.get("HOLD"):
            print("darkroom pid", s.proc.pid, s.url, flush=True); time.sleep(float(os.environ["HOLD"]))
    finally:
        proc.terminate()
finally:
    s.stop()
