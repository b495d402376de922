"""Confirm of a 200 MB presigned MP4 (moov at the end) against the release binary on
loopback SeaweedFS: time, bytes read back, the server's peak RSS.

    cargo build --release --bin darkroom && make s3-up
    python3 loadtest/confirm_large.py
"""
import json, subprocess, sys, time, urllib.request
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf
perf.SCRATCH.mkdir(parents=True, exist_ok=True)
cfg = '''[storage]
type = "s3"
endpoint = "http://127.0.0.1:18333"
bucket = "darkroom-test"
region = "us-east-1"
path_style = true
access_key_id = "darkroom-test"
secret_access_key = "darkroom-test-secret"
prefix = "perfconfirm"
public_base_url = "http://127.0.0.1:18333/darkroom-test/perfconfirm"
max_file_bytes = 524288000
'''
s = perf.Server("confirm", config_text=cfg)
try:
    src = open(perf.ROOT / "tests/fixtures/video/bigbuckbunny_1280x720_faststart.mp4", "rb").read()
    boxes, at = {}, 0
    while at + 8 <= len(src):
        size = int.from_bytes(src[at:at+4], "big"); boxes[src[at+4:at+8]] = src[at:at+size]; at += size
    n = 200 << 20
    video = boxes[b"ftyp"] + (n + 8).to_bytes(4, "big") + b"mdat" + bytes(n) + boxes[b"moov"]
    def call(method, path, body=None, headers=None):
        h = {"Authorization": f"Bearer {s.key}", "Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(s.url + path, data=json.dumps(body).encode() if body else None, method=method, headers=h)
        return json.load(urllib.request.urlopen(req))
    p = call("POST", "/api/v1/media/presign", {"filename": "clip.mp4", "mimeType": "video/mp4", "size": len(video)})
    put = urllib.request.Request(p["uploadUrl"], data=video, method="PUT", headers={"Content-Type": "video/mp4"})
    urllib.request.urlopen(put).read()
    del video
    s.reset_peak()
    t0 = time.perf_counter()
    item = call("POST", "/api/v1/media/confirm", {"storageKey": p["storageKey"], "filename": "clip.mp4", "mimeType": "video/mp4", "size": n + 8 + len(boxes[b"ftyp"]) + len(boxes[b"moov"])})
    took = time.perf_counter() - t0
    scrape = urllib.request.urlopen(s.url + "/metrics").read().decode()
    read = [l for l in scrape.splitlines() if l.startswith("darkroom_storage_ranged_read_bytes_total") or l.startswith("darkroom_storage_fetched_bytes_total")]
    print(f"confirm 200 MB mp4: {took*1000:.1f} ms, {item['data']['width']}x{item['data']['height']}, read {read}, peak RSS {s.peak_rss_mb():.0f} MB")
finally:
    s.stop()
