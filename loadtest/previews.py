#!/usr/bin/env python3
"""Previews (issue 28) against the tools people would otherwise use, side by side in one run.

One fresh release server (target/release/darkroom, empty temp data dir under target/perf,
a write key from `darkroom keys create` before `serve`, loopback only), and:

  * Animated GIF -> animated WebP, for three inputs: tests/fixtures/gif/
    iss634_245x245_animated.gif (245x245, 42 frames: Darkroom makes the 150 px width only),
    and two GIFs made at run time with ffmpeg in the run's temp dir (palettegen/paletteuse):
    `testsrc` 480x270, 100 frames (widths 400, 150) and `testsrc2` 1600x900, 60 frames
    (all four widths: 1200, 800, 400, 150). Per input, each round (the order of the tools
    rotates each round):
      - gif2webp -q 80 -m 4: gif2webp's default, which is LOSSLESS (-q is then effort);
      - gif2webp -lossy -q 80 -m 4: the like-for-like one, except that with -lossy it
        tries key frame candidates (kmin 3, kmax 5 by default) where libwebp's own default
        (Darkroom, libvips) inserts none; so also
      - gif2webp -lossy -q 80 -m 4 -kmax 0 (no key frames). gif2webp cannot resize: its
        three rows encode the full size only;
      - sharp at full size: `sharp(file, {animated: true}).webp({quality: 80, effort: 4})`;
      - sharp at the widths Darkroom makes: one pipeline per width, one after the other
        in one Node process, `sharp(file, {animated: true}).resize({width: W})
        .webp({quality: 80, effort: 4})` (each decodes the GIF again); times and bytes
        summed;
      - Darkroom: POST /api/v1/media?wait=true (multipart field `file`), timed from the
        request to the answer (upload, probe, store, every frame decoded, resized to each
        width in cascade and encoded, variants stored, catalog commit). Its output is its
        variants: bytes per variant from the item (checked against the downloaded file),
        frames and play time of every variant read back from the RIFF (ANMF chunks), the
        largest one's frames also by `webpmux -info`.
    sharp is installed once with npm into PREVIEW_SHARP_DIR (default /tmp/darkroom-sharp).
    Per tool: median time of PREVIEW_ROUNDS rounds (default 3), CPU seconds (user + sys:
    the tool's own from wait4; for Darkroom the server process's over the request), output
    bytes, frames (key frames: whole-canvas frames not blended on the previous one) and
    play time, and peak RSS: the tool's own ru_maxrss for gif2webp and sharp (Node
    included), the server's VmHWM for Darkroom (reset before each upload, read after; the
    largest of the rounds, with the server's RSS just before the upload beside it: memory
    the allocator kept from earlier work is in both).
  * Posters: every tests/fixtures/video/*.mp4, *.webm and tests/fixtures/pdf/*.pdf uploaded
    with ?wait=true each round: time to the answer, the item's `poster` (absent on a build
    without previews, null when none could be made, else its size, bytes and variants; the
    poster file downloaded and its size read back), the server's VmHWM (reset before each
    upload) and CPU seconds of the server and of the tools it ran (its reaped children).
    Beside each, the same tool run directly as Darkroom runs it: ffmpeg `-threads 1 -ss T
    -f DEMUXER -i FILE -map 0:v:0 -frames:v 1 -vf scale=iw*sar:ih,setsar=1,scale='min(iw,1200)':'min(ih,2400)':force_original_aspect_ratio=decrease -c:v png` at T =
    1 s, or a tenth of a clip shorter than 10 s (ffprobe's duration), and once more at
    T + 1 s when that frame is almost black and T + 1 is inside the clip (Darkroom's
    black-frame skip; the blackness check is not timed); pdftoppm `-q -f 1 -l 1 -singlefile
    -png -scale-to 1200 FILE out`. Median summed time, runs, exit status, PNG size, peak
    RSS. A poster missing where one is expected, present where none is, or of another size
    than the direct tool's picture is listed under "Anomalies".

The server's VmHWM is its own process only: ffmpeg or pdftoppm processes it starts are
not in it. The server's log lines at WARN or ERROR are counted and the first few shown.
Prints Markdown to stdout; raw numbers go to target/perf/previews.json. Exits non-zero
when the binary is missing or the server does not start; a missing tool (gif2webp,
ffmpeg, pdftoppm, node/npm) only leaves its rows empty. Nothing here is a pass/fail
check on time.

    python3 loadtest/previews.py
    PREVIEW_ROUNDS=5 python3 loadtest/previews.py
    PREVIEW_BIN=/path/to/darkroom python3 loadtest/previews.py   # another build

Needs a release build (`cargo build --release`); it builds nothing.
"""

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402

ROUNDS = max(1, int(os.environ.get("PREVIEW_ROUNDS", "3")))
SHARP_DIR = Path(os.environ.get("PREVIEW_SHARP_DIR", "/tmp/darkroom-sharp"))
BINARY = Path(os.environ.get("PREVIEW_BIN", str(perf.BIN / "darkroom")))
FIXTURES = perf.ROOT / "tests" / "fixtures"
FIXTURE_GIF = FIXTURES / "gif" / "iss634_245x245_animated.gif"
# name, lavfi source, width, height, frames (25 frames a second)
MADE_GIFS = [("testsrc_480x270_100f.gif", "testsrc", 480, 270, 100),
             ("testsrc2_1600x900_60f.gif", "testsrc2", 1600, 900, 60)]
VARIANT_WIDTHS = (1200, 800, 400, 150)  # src/media/image/resize.rs: those narrower than the original
MAX_SIDE = 1200  # [previews]: the poster's largest width (video) or side (PDF)
# Which fixtures must get a poster (issue 28); any other file is only reported.
POSTER_EXPECTED = {
    "all_black_2s_160x120.webm": True,
    "bigbuckbunny_1280x720_faststart.mp4": True,
    "bigbuckbunny_1280x720_moov_at_end.mp4": True,
    "bigbuckbunny_640x360_vp9_opus.webm": True,
    "black_then_bars_320x240.mp4": True,
    "lppl_8pages.pdf": True,
    "ltnews18_1page.pdf": True,
    "encrypted_user_password.pdf": False,
}
TIMEOUT = 600  # seconds: any one request, command or install
MISSING = object()  # a JSON field the answer does not have
TICK = os.sysconf("SC_CLK_TCK")


def darkroom_widths(width):
    return [w for w in VARIANT_WIDTHS if w < width]


# ---------------------------------------------------------------------------- files

def gif_frames(data):
    """Image descriptors in a GIF (its frames), or None when the bytes are not a GIF."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    at = 13
    if data[10] & 0x80:
        at += 3 << ((data[10] & 7) + 1)

    def skip_blocks(at):
        while at < len(data) and data[at]:
            at += data[at] + 1
        return at + 1

    frames = 0
    while at < len(data):
        kind = data[at]
        if kind == 0x3B:
            break
        if kind == 0x21:
            at = skip_blocks(at + 2)
        elif kind == 0x2C:
            frames += 1
            flags = data[at + 9] if at + 9 < len(data) else 0
            at += 10
            if flags & 0x80:
                at += 3 << ((flags & 7) + 1)
            at = skip_blocks(at + 1)  # LZW minimum code size, then the data blocks
        else:
            break
    return frames


def webp_info(data):
    """A WebP read from its RIFF chunks: frames (ANMF chunks; 1 for a still image),
    canvas width and height, play time in ms (the ANMF durations summed); None when the
    bytes are not a WebP."""
    if len(data) < 16 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    at, frames, play, width, height, still, key = 12, 0, 0, None, None, False, 0
    le = lambda b: int.from_bytes(b, "little")  # noqa: E731
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], le(data[at + 4:at + 8])
        p = data[at + 8:at + 8 + size]
        if kind == b"VP8X" and len(p) >= 10:
            width, height = le(p[4:7]) + 1, le(p[7:10]) + 1
        elif kind == b"ANMF" and len(p) >= 16:
            frames += 1
            play += le(p[12:15])
            # a key frame: the whole canvas at (0, 0), not blended onto the previous one
            if (p[15] & 2 and le(p[0:3]) == 0 and le(p[3:6]) == 0
                    and (le(p[6:9]) + 1, le(p[9:12]) + 1) == (width, height)):
                key += 1
        elif kind == b"VP8 " and len(p) >= 10:
            still = True
            if width is None:
                width, height = le(p[6:8]) & 0x3FFF, le(p[8:10]) & 0x3FFF
        elif kind == b"VP8L" and len(p) >= 5:
            still = True
            if width is None:
                bits = le(p[1:5])
                width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        at += 8 + size + (size & 1)
    return {"frames": frames or (1 if still else 0), "width": width, "height": height,
            "play_ms": play if frames else None, "animated": frames > 0, "keyframes": key if frames else None}


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def webpmux_frames(path):
    """`webpmux -info`'s frame count (1 for a still image), or None without webpmux."""
    try:
        out = subprocess.run(["webpmux", "-info", str(path)], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Number of frames:\s*(\d+)", out)
    if m:
        return int(m.group(1))
    return 1 if "Canvas size" in out else None


def make_gif(folder, name, source, w, h, n):
    out = folder / name
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=s={w}x{h}:r=25:d={n / 25}",
           "-filter_complex", "split[a][b];[a]palettegen[p];[b][p]paletteuse", "-frames:v", str(n),
           "-fflags", "+bitexact", out]
    try:
        subprocess.run(cmd, check=True, timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"could not make {name} with ffmpeg: {e}", file=sys.stderr)
        return None
    return out


# ---------------------------------------------------------------------------- tools

def timed(cmd, env=None):
    """Runs cmd; returns {rc, s (wall), cpu_s (user + sys), rss (peak MB), out, err}.
    Killed after TIMEOUT seconds (then rc is negative)."""
    started = time.perf_counter()
    try:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **(env or {})})
    except OSError as e:
        return {"rc": None, "s": 0.0, "cpu_s": None, "rss": None, "out": "", "err": str(e)}
    out = [b"", b""]  # stdout, stderr: both read so that a chatty tool never blocks

    def drain(i, stream):
        out[i] = stream.read()

    readers = [threading.Thread(target=drain, args=(i, s), daemon=True)
               for i, s in enumerate((proc.stdout, proc.stderr))]
    for r in readers:
        r.start()
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    _, status, usage = os.wait4(proc.pid, 0)
    watchdog.cancel()
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join(10)
    for s in (proc.stdout, proc.stderr):
        s.close()
    return {"rc": proc.returncode, "s": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss / 1024, "out": out[0].decode(errors="replace"),
            "err": out[1].decode(errors="replace")}


def version(cmd, name):
    """`name version`, the version being the first word with a digit on the first line
    the command prints (`gif2webp -version` says "1.2.4")."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        line = (res.stdout or res.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
    words = [w for w in line.replace(":", " ").split() if any(c.isdigit() for c in w)]
    return f"{name} {words[0]}" if words else f"{name} ({line})"


SHARP_SCRIPT = """
const sharp = require(process.argv[2]);
sharp.cache(false);
const [input, prefix] = [process.argv[3], process.argv[4]];
const widths = JSON.parse(process.argv[5]);
(async () => {
  const out = [];
  for (const w of (widths.length ? widths : [null])) {
    const file = `${prefix}-${w || 'full'}.webp`;
    const t0 = process.hrtime.bigint();
    let p = sharp(input, {animated: true});
    if (w) p = p.resize({width: w});
    const info = await p.webp({quality: 80, effort: 4}).toFile(file);
    out.push({width: w, ms: Number(process.hrtime.bigint() - t0) / 1e6, size: info.size, file});
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(String(e)); process.exit(1); });
"""


def ensure_sharp():
    """sharp's folder (installed once with npm into SHARP_DIR, then reused), or None."""
    module = SHARP_DIR / "node_modules" / "sharp"
    if not (module / "package.json").exists():
        if not shutil.which("node") or not shutil.which("npm"):
            print("node/npm not found: no sharp rows", file=sys.stderr)
            return None
        SHARP_DIR.mkdir(parents=True, exist_ok=True)
        print(f"installing sharp with npm into {SHARP_DIR} (once)", file=sys.stderr)
        try:
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                            "--prefix", str(SHARP_DIR), "sharp"], check=True, timeout=TIMEOUT,
                           stdout=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            print(f"npm install sharp failed: {e}: no sharp rows", file=sys.stderr)
            return None
    return module if (module / "package.json").exists() else None


def sharp_versions(module):
    try:
        out = subprocess.run(["node", "-e", f"const s=require({json.dumps(str(module))});"
                              "console.log(JSON.stringify([s.versions.sharp, s.versions.vips, s.versions.webp, s.concurrency()]))"],
                             capture_output=True, text=True, timeout=60).stdout
        s, vips, webp, threads = json.loads(out)
        return f"sharp {s} (libvips {vips}, libwebp {webp}, concurrency {threads})"
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def output_of(path, width=None):
    data = path.read_bytes()
    info = webp_info(data) or {}
    return {"width": info.get("width") or width, "height": info.get("height"), "bytes": len(data),
            "frames": info.get("frames"), "play_ms": info.get("play_ms"), "keyframes": info.get("keyframes")}


def run_gif2webp(gif, out, flags):
    r = timed(["gif2webp", "-quiet", *flags, "-q", "80", "-m", "4", gif, "-o", out])
    if r["rc"] != 0:
        return {"ok": False, "error": f"exit {r['rc']}: {r['err'].strip()[:200]}", "s": r["s"]}
    o = output_of(out)
    return {"ok": True, "s": r["s"], "wall_s": r["s"], "cpu_s": r["cpu_s"], "bytes": o["bytes"],
            "outputs": [o], "peak_rss_mb": r["rss"]}


def run_sharp(module, script, gif, prefix, widths):
    r = timed(["node", script, module, gif, prefix, json.dumps(widths)])
    if r["rc"] != 0:
        return {"ok": False, "error": f"exit {r['rc']}: {r['err'].strip()[:200]}", "s": r["s"]}
    made = json.loads(r["out"].strip().splitlines()[-1])
    outputs = []
    for m in made:
        o = output_of(Path(m["file"]))
        o["ms"] = m["ms"]
        outputs.append(o)
    return {"ok": True, "s": sum(m["ms"] for m in made) / 1000, "wall_s": r["s"], "cpu_s": r["cpu_s"],
            "bytes": sum(o["bytes"] for o in outputs), "outputs": outputs, "peak_rss_mb": r["rss"]}


# ---------------------------------------------------------------------------- server

class PreviewServer(perf.Server):
    """perf.Server (write key from the CLI, then `serve` on a free loopback port), but a
    server that does not start ends the run with a non-zero status and its log's tail."""

    def __init__(self, binary):
        perf.SCRATCH.mkdir(parents=True, exist_ok=True)
        self.proc = None
        try:
            super().__init__("previews", binary=binary)
        except BaseException as e:  # perf.wait_http exits when /readyz never answers
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            log = Path(getattr(self, "dir", "")) / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if getattr(self, "dir", None) and log.exists() else ""
            if getattr(self, "dir", None):
                shutil.rmtree(self.dir, ignore_errors=True)
            sys.exit(f"the server did not start ({binary}): {e}\n{tail}")

    def alive(self):
        return self.proc.poll() is None

    def cpu(self):
        """(own, reaped children's) CPU seconds, user + sys, of the server process."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # after the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        return (utime + stime) / TICK, (cutime + cstime) / TICK

    def log_lines(self):
        log = self.dir / "server.log"
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    def upload(self, path, data):
        """POST /api/v1/media?wait=true with the file in the `file` field; returns
        (status, JSON body or None, seconds from the first byte sent to the whole answer,
        server CPU seconds own and children's, server VmHWM MB over the request)."""
        boundary = f"previews-{uuid.uuid4().hex}"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        self.reset_peak()
        self.rss_before = self.rss_mb()
        own0, kids0 = self.cpu()
        try:
            started = time.perf_counter()
            conn.putrequest("POST", "/api/v1/media?wait=true")
            conn.putheader("Authorization", f"Bearer {self.key}")
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(head) + len(data) + len(tail)))
            conn.endheaders()
            conn.send(head + data + tail)
            resp = conn.getresponse()
            raw = resp.read()
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
        own1, kids1 = self.cpu()
        peak = self.peak_rss_mb()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return resp.status, body, elapsed, (own1 - own0, kids1 - kids0), peak

    def fetch(self, url):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request("GET", url, headers={"Authorization": f"Bearer {self.key}"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def error_of(status, body):
    code = ((body or {}).get("error") or {}).get("code")
    if not code and body and body.get("errors"):
        first = body["errors"][0]
        code = first.get("code") or (first.get("error") or {}).get("code")
    return f"{status} {code or ''}".strip()


def run_darkroom_gif(server, gif, data, run_dir):
    status, body, elapsed, (cpu, _), peak = server.upload(gif, data)
    item = ((body or {}).get("data") or [None])[0]
    if status != 201 or not item:
        return {"ok": False, "error": error_of(status, body), "s": elapsed, "peak_rss_mb": peak,
                "rss_before_mb": server.rss_before}
    outputs = []
    for v in sorted(item.get("variants") or [], key=lambda v: -(v.get("width") or 0)):
        got, blob = server.fetch(v["url"])
        info = (webp_info(blob) if got == 200 else None) or {}
        outputs.append({"width": v.get("width"), "height": v.get("height"), "bytes": v.get("size"),
                        "fetched": len(blob) if got == 200 else f"HTTP {got}",
                        "frames": info.get("frames"), "play_ms": info.get("play_ms"),
                        "keyframes": info.get("keyframes"),
                        "read_size": f"{info.get('width')}x{info.get('height')}" if info else None})
        if len(outputs) == 1 and got == 200:
            largest = run_dir / f"{gif.stem}-darkroom-largest.webp"
            largest.write_bytes(blob)
            outputs[0]["webpmux_frames"] = webpmux_frames(largest)
    return {"ok": True, "s": elapsed, "wall_s": elapsed, "cpu_s": cpu, "status": item.get("status"),
            "bytes": sum(o["bytes"] or 0 for o in outputs), "outputs": outputs,
            "item_frames": item.get("frames", MISSING), "item_animated": item.get("animated", MISSING),
            "peak_rss_mb": peak, "rss_before_mb": server.rss_before, "id": item.get("id")}


def poster_of(server, item):
    poster = item.get("poster", MISSING)
    if poster is MISSING:
        return {"state": "missing"}
    if poster is None:
        return {"state": "null"}
    got, blob = server.fetch(poster["url"]) if poster.get("url") else (None, b"")
    info = (webp_info(blob) if got == 200 else None) or {}
    return {"state": "made", "width": poster.get("width"), "height": poster.get("height"),
            "bytes": poster.get("size"), "fetched": len(blob) if got == 200 else f"HTTP {got}",
            "read_size": (info.get("width"), info.get("height")) if info else None,
            "variants": [v.get("width") for v in poster.get("variants") or []],
            "variant_bytes": [v.get("size") for v in poster.get("variants") or []]}


def run_darkroom_poster(server, path, data):
    status, body, elapsed, (own, kids), peak = server.upload(path, data)
    item = ((body or {}).get("data") or [None])[0]
    if status != 201 or not item:
        return {"ok": False, "error": error_of(status, body), "s": elapsed, "peak_rss_mb": peak,
                "rss_before_mb": server.rss_before}
    return {"ok": True, "s": elapsed, "cpu_s": own, "tool_cpu_s": kids, "status": item.get("status"),
            "poster": poster_of(server, item), "item_size": (item.get("width"), item.get("height")),
            "duration": item.get("duration"), "peak_rss_mb": peak, "rss_before_mb": server.rss_before,
            "id": item.get("id")}


# ---------------------------------------------------------------------------- direct posters

def poster_time(duration):
    """src/media/poster.rs: 1 s, or a tenth of a clip shorter than 10 s."""
    return duration / 10 if duration and 0 < duration < 10 else 1.0


def duration_of(path):
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                              "default=nw=1:nk=1", str(path)], capture_output=True, text=True, timeout=60).stdout
        return float(out.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def almost_black(png_path):
    """src/media/poster.rs's test (Rec. 709 luma: at most 1% brighter than 40, mean under
    16), on the PNG decoded to RGB by ffmpeg. Not timed."""
    try:
        rgb = subprocess.run(["ffmpeg", "-v", "error", "-i", str(png_path), "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    n = len(rgb) // 3
    if not n:
        return False
    r, g, b = rgb[0::3], rgb[1::3], rgb[2::3]
    luma = [(2126 * x + 7152 * y + 722 * z + 5000) // 10000 for x, y, z in zip(r, g, b)]
    bright = sum(1 for v in luma if v > 40)
    return bright * 100 <= n and sum(luma) < 16 * n


def ffmpeg_frame(path, at, made):
    demuxer = "mov" if path.suffix == ".mp4" else "matroska"
    made.unlink(missing_ok=True)
    return timed(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
                  "-protocol_whitelist", "file,pipe", "-ss", f"{at:.3f}", "-f", demuxer, "-i", f"file:{path}",
                  "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-vf", f"scale=iw*sar:ih,setsar=1,scale='min(iw,{MAX_SIDE})':'min(ih,{2 * MAX_SIDE})':force_original_aspect_ratio=decrease",
                  "-f", "image2", "-update", "1", "-c:v", "png", "-y", f"file:{made}"])


def run_direct_poster(path, out_dir, memo):
    """The tool as Darkroom runs it; for videos the black-frame skip too (the decision
    memoized per file: the same frames each round)."""
    if path.suffix == ".pdf":
        made = out_dir / "direct-page.png"
        made.unlink(missing_ok=True)
        r = timed(["pdftoppm", "-q", "-f", "1", "-l", "1", "-singlefile", "-png", "-scale-to", str(MAX_SIDE),
                   path, out_dir / "direct-page"])
        runs = [r]
    else:
        key = str(path)
        if key not in memo:
            memo[key] = {"duration": duration_of(path)}
        d = memo[key]["duration"]
        at = poster_time(d)
        made = out_dir / "direct-a.png"
        r = ffmpeg_frame(path, at, made)
        runs = [r]
        if r["rc"] == 0 and not made.exists():  # past the end: the first frame
            r = ffmpeg_frame(path, 0.0, made)
            runs.append(r)
        if r["rc"] == 0 and made.exists() and not (d is not None and at + 1 >= d):
            if "black" not in memo[key]:
                memo[key]["black"] = almost_black(made)
            if memo[key]["black"]:
                later = out_dir / "direct-c.png"
                r2 = ffmpeg_frame(path, at + 1, later)
                runs.append(r2)
                if r2["rc"] == 0 and later.exists():
                    if "later_black" not in memo[key]:
                        memo[key]["later_black"] = almost_black(later)
                    if not memo[key]["later_black"]:
                        made = later
    rc = next((x["rc"] for x in runs if x["rc"] != 0), 0)
    png = made.read_bytes() if rc == 0 and made.exists() else b""
    return {"tool": "pdftoppm" if path.suffix == ".pdf" else "ffmpeg", "rc": rc,
            "s": sum(x["s"] for x in runs), "cpu_s": sum(x["cpu_s"] or 0 for x in runs),
            "runs": len(runs), "peak_rss_mb": max((x["rss"] or 0) for x in runs),
            "bytes": len(png) or None, "size": png_size(png),
            "err": next((x["err"].strip()[:200] for x in runs if x["rc"] != 0), None)}


# ---------------------------------------------------------------------------- figures

def med(runs, key="s"):
    vals = [r[key] for r in runs if r.get("ok", True) and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ms(x):
    return "-" if x is None else f"{x * 1000:,.0f}" if x >= 0.1 else f"{x * 1000:.1f}"


def mb(x):
    return "-" if x is None else f"{x:.1f}"


def secs(x):
    return "-" if x is None else f"{x:.2f}"


def kb(n):
    return "-" if n is None else f"{n / 1024:,.1f} KB"


def same(values):
    vals = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return values[0] if len(vals) == 1 else "mixed"


TOOLS = [  # key, label
    ("gif2webp", "gif2webp -q 80 -m 4 (lossless, its default)"),
    ("gif2webp_lossy", "gif2webp -lossy -q 80 -m 4 (key frames tried: kmin 3, kmax 5)"),
    ("gif2webp_lossy_k0", "gif2webp -lossy -q 80 -m 4 -kmax 0 (no key frames, as libwebp's default)"),
    ("sharp_full", "sharp, full size"),
    ("sharp_widths", "sharp, Darkroom's widths (1 pipeline each)"),
    ("darkroom", "Darkroom ?wait=true"),
]


def gif_table(results):
    lines = [
        "| input | tool | widths made | median ms | CPU s | bytes (summed) | bytes per width | frames (key frames) | play ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        inp = f"{res['name']} ({res['size']}, {res['frames']} frames, {kb(res['bytes'])})"
        for tool, label in TOOLS:
            runs = res["runs"].get(tool)
            if runs is None:
                lines.append(f"| {inp} | {label} | unavailable | | | | | | | |")
                continue
            ok = [r for r in runs if r.get("ok")]
            if not ok:
                why = same([r.get("error") for r in runs])
                lines.append(f"| {inp} | {label} | failed: {why} | | | | | | | |")
                continue
            last = ok[-1]
            outs = last["outputs"]
            if tool.startswith("gif2webp"):
                made = "full size only (cannot resize)"
            elif tool == "sharp_full":
                made = "full size"
            else:
                made = ", ".join(str(o["width"]) for o in outs)
            per = "; ".join(f"{o['width']}: {o['bytes']:,}" for o in outs) if len(outs) > 1 else "-"
            frames = same([o["frames"] for o in outs])
            keys = [o.get("keyframes") for o in outs]
            frames = f"{frames} ({'/'.join(map(str, keys))} key)"
            if tool == "darkroom":
                wm = outs[0].get("webpmux_frames") if outs else None
                frames = f"{frames} (largest, webpmux: {wm})"
                said = []
                if last.get("item_animated") is not MISSING:
                    said.append(f"animated {str(last['item_animated']).lower()}")
                if last.get("item_frames") is not MISSING:
                    said.append(f"frames {last['item_frames']}")
                if said:
                    frames += f"; item: {', '.join(said)}"
            play = same([o["play_ms"] for o in outs])
            rss = mb(max(r["peak_rss_mb"] or 0 for r in ok))
            if tool == "darkroom":
                rss += f" ({mb(min(r['rss_before_mb'] or 0 for r in ok))}-{mb(max(r['rss_before_mb'] or 0 for r in ok))} before)"
            lines.append(f"| {inp} | {label} | {made} | {ms(med(ok))} | {secs(med(ok, 'cpu_s'))} | "
                         f"{last['bytes']:,} | {per} | {frames} | {play} | {rss} |")
    return "\n".join(lines)


def width_table(results):
    """sharp per width against Darkroom's variant of that width."""
    lines = [
        "| input | width | sharp ms | sharp bytes | Darkroom bytes | Darkroom / sharp |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        sh = [r for r in res["runs"].get("sharp_widths") or [] if r.get("ok")]
        dk = [r for r in res["runs"].get("darkroom") or [] if r.get("ok")]
        if not sh or not dk:
            continue
        dk_by = {o["width"]: o for o in dk[-1]["outputs"]}
        for i, o in enumerate(sh[-1]["outputs"]):
            d = dk_by.get(o["width"])
            t = statistics.median(r["outputs"][i]["ms"] for r in sh) / 1000
            ratio = f"{d['bytes'] / o['bytes']:.2f}" if d and d["bytes"] else "-"
            lines.append(f"| {res['name']} | {o['width']} | {ms(t)} | {o['bytes']:,} | "
                         f"{'-' if not d else format(d['bytes'], ',')} | {ratio} |")
    return "\n".join(lines)


def poster_cell(runs):
    ok = [r for r in runs if r.get("ok")]
    if not ok:
        return "refused: " + str(same([r.get("error") for r in runs]))
    states = same([r["poster"]["state"] for r in ok])
    if states == "missing":
        return "missing (no `poster` field)"
    if states == "null":
        return "null"
    if states == "mixed":
        return "mixed: " + ", ".join(r["poster"]["state"] for r in ok)
    p = ok[-1]["poster"]
    return (f"{p['width']}x{p['height']}, {p['bytes']:,} B; variants "
            f"{', '.join(map(str, p['variants'])) or 'none'}")


def poster_table(results):
    lines = [
        "| file | bytes | Darkroom median ms | server CPU s (+ tool's) | status | poster | server peak RSS MB (RSS before) "
        "| direct tool | direct median ms | runs | direct result | direct peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        dark, direct = res["darkroom"], res["direct"]
        ok = [r for r in dark if r.get("ok")]
        status = same([r.get("status") for r in ok]) if ok else None
        status = "-" if status is None else status
        rcs = same([d["rc"] for d in direct])
        last = direct[-1]
        if rcs == 0:
            size = f"{last['size'][0]}x{last['size'][1]}, " if last.get("size") else ""
            result = f"exit 0, PNG {size}{last['bytes']:,} B"
        else:
            result = f"exit {rcs}" + (f" ({last['err']})" if last.get("err") else "")
        cpu = f"{secs(med(ok, 'cpu_s'))} (+ {secs(med(ok, 'tool_cpu_s'))})" if ok else "-"
        rss = mb(max((r.get("peak_rss_mb") or 0) for r in dark))
        rss += (f" ({mb(min((r.get('rss_before_mb') or 0) for r in dark))}-"
                f"{mb(max((r.get('rss_before_mb') or 0) for r in dark))} before)")
        lines.append(f"| {res['path']} | {res['bytes']:,} | {ms(med(dark))} | {cpu} | {status} | "
                     f"{poster_cell(dark)} | {rss} | {last['tool']} | {ms(med(direct))} | "
                     f"{same([d['runs'] for d in direct])} | {result} | "
                     f"{mb(max((d['peak_rss_mb'] or 0) for d in direct))} |")
    return "\n".join(lines)


def anomalies(gifs, posters):
    found = []
    for res in gifs:
        for r in res["runs"].get("darkroom") or []:
            if not r.get("ok"):
                found.append(f"{res['name']}: Darkroom upload failed: {r.get('error')}")
                continue
            widths = [o["width"] for o in r["outputs"]]
            if widths != res["expected_widths"]:
                found.append(f"{res['name']}: variants {widths}, expected {res['expected_widths']}")
            if r.get("status") != "ready":
                found.append(f"{res['name']}: item status {r.get('status')}")
            if r.get("item_animated") is not True or r.get("item_frames") != res["frames"]:
                found.append(f"{res['name']}: item says animated {r.get('item_animated')}, frames "
                             f"{r.get('item_frames')}; the GIF has {res['frames']}")
            for o in r["outputs"]:
                if o["fetched"] != o["bytes"]:
                    found.append(f"{res['name']}: variant {o['width']} is {o['fetched']} bytes, item says {o['bytes']}")
                if o["frames"] != res["frames"]:
                    found.append(f"{res['name']}: variant {o['width']} has {o['frames']} frames, the GIF {res['frames']}")
                if o.get("read_size") != f"{o['width']}x{o['height']}":
                    found.append(f"{res['name']}: variant {o['width']} reads {o.get('read_size')}")
            wm = r["outputs"][0].get("webpmux_frames") if r["outputs"] else None
            if wm is not None and r["outputs"] and wm != r["outputs"][0]["frames"]:
                found.append(f"{res['name']}: webpmux counts {wm} frames, the RIFF {r['outputs'][0]['frames']}")
    for res in posters:
        name = Path(res["path"]).name
        want = POSTER_EXPECTED.get(name)
        for i, r in enumerate(res["darkroom"], 1):
            if not r.get("ok"):
                found.append(f"{res['path']} round {i}: upload failed: {r.get('error')}")
                continue
            p = r["poster"]
            if want is True and p["state"] != "made":
                found.append(f"{res['path']} round {i}: no poster ({p['state']}), one expected")
            if want is False and p["state"] == "made":
                found.append(f"{res['path']} round {i}: a poster, none expected")
            if p["state"] != "made":
                continue
            if p["fetched"] != p["bytes"]:
                found.append(f"{res['path']} round {i}: poster file {p['fetched']} bytes, item says {p['bytes']}")
            if p["read_size"] != (p["width"], p["height"]):
                found.append(f"{res['path']} round {i}: poster file reads {p['read_size']}, item says "
                             f"{p['width']}x{p['height']}")
            d = res["direct"][i - 1] if i - 1 < len(res["direct"]) else None
            if d and d.get("size") and tuple(d["size"]) != (p["width"], p["height"]):
                found.append(f"{res['path']} round {i}: poster {p['width']}x{p['height']}, but the tool "
                             f"run as Darkroom runs it makes {d['size'][0]}x{d['size'][1]} "
                             f"(item {r['item_size'][0]}x{r['item_size'][1]})")
            widths = [w for w in p["variants"] if w is not None]
            if widths != [w for w in VARIANT_WIDTHS if w < (p["width"] or 0)]:
                found.append(f"{res['path']} round {i}: poster variants {widths} for a {p['width']} px poster")
    # one line per distinct finding, with how many rounds
    counted = {}
    for f in found:
        key = re.sub(r" round \d+:", ":", f)
        counted[key] = counted.get(key, 0) + 1
    return [f"{k} ({n}×)" if n > 1 else k for k, n in counted.items()]


def report(gifs, posters, info):
    head = [
        "## Previews: animated WebP and posters (`loadtest/previews.py`)",
        "",
        f"- Command: `{info['command']}`; rounds: {ROUNDS} (medians)",
        f"- Machine: {info['machine']}; server and tools share it",
        f"- Date: {info['date']} to {info['end']}, commit {info['commit']}; binary {info['binary']} "
        f"(built {info['binary_mtime']})",
        f"- Tools: {'; '.join(v for v in info['tools'].values() if v)}",
        f"- Server RSS idle after start: {mb(info['idle_rss_mb'])} MB; run took {info['run_s']:.0f} s",
        "",
        "### Animated GIF → animated WebP",
        "",
        gif_table(gifs),
        "",
        "sharp per width against Darkroom's variant of the same width (last round's bytes):",
        "",
        width_table(gifs),
        "",
        "### Posters (videos and PDFs)",
        "",
        poster_table(posters),
        "",
        "### Anomalies",
        "",
    ]
    found = info.get("anomalies") or []
    head += [f"- {a}" for a in found] or ["- none"]
    logs = info.get("server_log") or {}
    head += ["", f"Server log: {logs.get('warn', 0)} WARN, {logs.get('error', 0)} ERROR lines"
             + (":" if logs.get("first") else ".")]
    head += [f"    {line}" for line in logs.get("first", [])]
    return "\n".join(head) + "\n"


# ---------------------------------------------------------------------------- run

def main():
    t_start = time.time()
    if not BINARY.exists():
        sys.exit(f"{BINARY} is missing: build release first (this script builds nothing)")
    perf.SCRATCH.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="previews-run-", dir=perf.SCRATCH))
    try:
        run(run_dir, t_start)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def run(run_dir, t_start):
    sharp = ensure_sharp()
    script = run_dir / "sharp-webp.js"
    script.write_text(SHARP_SCRIPT)
    info = {
        "command": (f"PREVIEW_ROUNDS={os.environ['PREVIEW_ROUNDS']} " if "PREVIEW_ROUNDS" in os.environ else "")
                   + "python3 loadtest/previews.py",
        "machine": perf.machine(), "commit": perf.revision(),
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
        "binary": str(BINARY.relative_to(perf.ROOT) if BINARY.is_relative_to(perf.ROOT) else BINARY),
        "binary_mtime": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(BINARY.stat().st_mtime)),
        "tools": {"gif2webp": version(["gif2webp", "-version"], "gif2webp (libwebp)"),
                  "sharp": sharp_versions(sharp) if sharp else None,
                  "node": version(["node", "--version"], "node"),
                  "ffmpeg": version(["ffmpeg", "-version"], "ffmpeg"),
                  "pdftoppm": version(["pdftoppm", "-v"], "pdftoppm")},
    }
    have = {t: shutil.which(t) is not None for t in ("gif2webp", "ffmpeg", "ffprobe", "pdftoppm")}

    inputs = [FIXTURE_GIF]
    if have["ffmpeg"]:
        for spec in MADE_GIFS:
            made = make_gif(run_dir, *spec)
            if made:
                inputs.append(made)

    server = PreviewServer(BINARY)
    gifs, posters = [], []
    try:
        info["idle_rss_mb"] = server.rss_mb()
        # ---- animated GIF -> WebP
        tools = [t for t, _ in TOOLS]
        for gif in inputs:
            data = gif.read_bytes()
            width = int.from_bytes(data[6:8], "little")
            res = {"name": gif.name, "bytes": len(data), "frames": gif_frames(data),
                   "size": f"{width}x{int.from_bytes(data[8:10], 'little')}",
                   "expected_widths": darkroom_widths(width),
                   "runs": {"gif2webp": [] if have["gif2webp"] else None,
                            "gif2webp_lossy": [] if have["gif2webp"] else None,
                            "gif2webp_lossy_k0": [] if have["gif2webp"] else None,
                            "sharp_full": [] if sharp else None, "sharp_widths": [] if sharp else None,
                            "darkroom": []}}
            for rnd in range(ROUNDS):
                order = tools[rnd % len(tools):] + tools[:rnd % len(tools)]
                for tool in order:
                    if res["runs"][tool] is None:
                        continue
                    out = run_dir / f"{gif.stem}-{tool}"
                    if tool == "gif2webp":
                        r = run_gif2webp(gif, out.with_suffix(".webp"), [])
                    elif tool == "gif2webp_lossy":
                        r = run_gif2webp(gif, out.with_suffix(".webp"), ["-lossy"])
                    elif tool == "gif2webp_lossy_k0":
                        r = run_gif2webp(gif, out.with_suffix(".webp"), ["-lossy", "-kmax", "0"])
                    elif tool == "sharp_full":
                        r = run_sharp(sharp, script, gif, out, [])
                    elif tool == "sharp_widths":
                        r = run_sharp(sharp, script, gif, out, res["expected_widths"])
                    else:
                        if not server.alive():
                            raise RuntimeError("the server exited during the run")
                        r = run_darkroom_gif(server, gif, data, run_dir)
                    res["runs"][tool].append(r)
                print(f"{gif.name} round {rnd + 1}: "
                      + ", ".join(f"{t} {ms(runs[-1].get('s'))} ms" for t, runs in res["runs"].items() if runs),
                      file=sys.stderr)
            gifs.append(res)

        # ---- posters
        files = sorted((FIXTURES / "video").glob("*.mp4")) + sorted((FIXTURES / "video").glob("*.webm")) \
            + sorted((FIXTURES / "pdf").glob("*.pdf"))
        posters = [{"path": str(p.relative_to(FIXTURES)), "bytes": p.stat().st_size, "darkroom": [], "direct": []}
                   for p in files]
        blobs = {p: p.read_bytes() for p in files}
        memo = {}
        for rnd in range(ROUNDS):
            for p, res in zip(files, posters):
                if not server.alive():
                    raise RuntimeError("the server exited during the run")
                res["darkroom"].append(run_darkroom_poster(server, p, blobs[p]))
                tool = "pdftoppm" if p.suffix == ".pdf" else "ffmpeg"
                if have[tool] and (tool == "pdftoppm" or have["ffprobe"]):
                    res["direct"].append(run_direct_poster(p, run_dir, memo))
                else:
                    res["direct"].append({"tool": tool, "rc": "unavailable", "s": None, "cpu_s": None,
                                          "runs": 0, "peak_rss_mb": None, "bytes": None, "size": None})
            print(f"posters round {rnd + 1}: "
                  + ", ".join(f"{Path(r['path']).name} {ms(r['darkroom'][-1].get('s'))} ms" for r in posters),
                  file=sys.stderr)
        info["black_skip"] = memo
    finally:
        lines = server.log_lines()
        server.stop()
    warn = [l for l in lines if " WARN " in l or '"level":"WARN"' in l]
    error = [l for l in lines if " ERROR " in l or '"level":"ERROR"' in l]
    info["server_log"] = {"warn": len(warn), "error": len(error), "first": (error + warn)[:8]}
    info["anomalies"] = anomalies(gifs, posters)
    info["end"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    info["run_s"] = time.time() - t_start
    out = perf.SCRATCH / "previews.json"
    out.write_text(json.dumps({"info": info, "gifs": gifs, "posters": posters}, indent=1,
                              default=lambda o: "MISSING" if o is MISSING else str(o)))
    print(report(gifs, posters, info))
    print(f"raw numbers: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
