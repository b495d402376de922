"""On-demand crops against the release binary: first-request latency (each request a new
size, so each one decodes, crops and encodes) on a 1920x1080 photo and a 22.5 MP camera
original, then wrk on one cached crop URL (its 302) beside get-public, same run.

    cargo build --release --workspace --bins && make bench-compare (for the 22.5 MP file)
    python3 loadtest/crops_bench.py            (FIRSTS=40 requests per photo, SECS=8)
"""
import json, os, subprocess, sys, time, urllib.request
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf

FIRSTS = int(os.environ.get("FIRSTS", "40"))
SECS = os.environ.get("SECS", "8")
PHOTOS = [perf.ROOT / "tests/fixtures/jpeg/elephants_1920x1080_progressive.jpg",
          perf.ROOT / "target/bench-compare/camera_6000x3750.jpg"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def upload(s, path):
    b = "xbound"
    data = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(s.url + "/api/v1/media?wait=true", data=data, method="POST",
                                 headers={"Authorization": f"Bearer {s.key}",
                                          "Content-Type": f"multipart/form-data; boundary={b}"})
    return json.load(urllib.request.urlopen(req))["data"][0]["id"]


def signed(s, id_, w, h):
    req = urllib.request.Request(s.url + f"/api/v1/media/{id_}/crops", method="POST",
                                 data=json.dumps({"width": w, "height": h}).encode(),
                                 headers={"Authorization": f"Bearer {s.key}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["url"]


def first_requests(s, id_):
    opener = urllib.request.build_opener(NoRedirect)
    times = []
    for i in range(FIRSTS):
        url = signed(s, id_, 600 + i, 400)
        t0 = time.perf_counter()
        try:
            opener.open(s.url + url)
        except urllib.error.HTTPError as e:
            assert e.code == 302, e.code
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def wrk(url, script=None, env=None):
    cmd = ["wrk", "-t2", "-c64", f"-d{SECS}s", "--latency"] + (["-s", str(script)] if script else []) + [url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout
    rps = float([l for l in out.splitlines() if "Requests/sec" in l][0].split()[-1])
    p99 = [l for l in out.splitlines() if l.strip().startswith("99%")][0].split()[-1]
    return rps, p99


s = perf.Server("crops", config_text='[delivery]\nsigning_key = "bench"\n')
try:
    ids = [upload(s, p) for p in PHOTOS if p.exists()]
    for p, id_ in zip(PHOTOS, ids):
        p50, p99 = first_requests(s, id_)
        print(f"first request, {p.name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({FIRSTS} sizes, 600..{600 + FIRSTS - 1}x400)")
    cached = signed(s, ids[0], 300, 200)
    urllib.request.urlopen(s.url + cached).read()  # made once
    idf = perf.SCRATCH / "crop-ids.txt"
    idf.write_text(ids[0] + "\n")
    for round_ in range(2):
        print(f"round {round_}: cached crop (302) {wrk(s.url + cached)}; get-public "
              f"{wrk(s.url, perf.ROOT / 'loadtest/wrk/get-public.lua', {'IDS': str(idf)})} (req/s, p99)")
finally:
    s.stop()
