#!/usr/bin/env python3
"""Side-by-side image pipeline comparison (`make bench-compare`).

Runs the same job -- one image in, WebP variants 1200/800/400/150 px wide out, quality 80,
effort/method 4, auto-oriented, no metadata -- with Darkroom's pipeline, sharp (npm) and
libvips' vipsthumbnail (Debian), each on 2 threads, over four inputs: the 1920x1080
progressive photo from tests/fixtures, the same saved as a baseline JPEG, a 12 MP
phone-style JPEG (EXIF orientation 6) and a 22.5 MP camera-sized baseline JPEG (EXIF
orientation 8; and once more without it), all made from the fixtures' camera photo. The WebP encoding of the same
variants alone (the floor) is printed beside each.
Installs sharp and libvips-tools into the scratch folder / system if they are missing.
Prints img/s and output bytes per tool and the ratios the processing issue sets targets on.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / "target" / "bench-compare"
FIXTURES = ROOT / "tests" / "fixtures" / "jpeg"
WIDTHS = [1200, 800, 400, 150]
THREADS = 2


def run(cmd, env=None, capture=True):
    result = subprocess.run(
        cmd, env={**os.environ, **(env or {})}, text=True,
        stdout=subprocess.PIPE if capture else None, check=False,
    )
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}")
    return result.stdout


def ensure_tools():
    if shutil.which("vipsthumbnail") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        print("installing libvips-tools (Debian)...", file=sys.stderr)
        run(sudo + ["apt-get", "update", "-qq"], capture=False)
        run(sudo + ["apt-get", "install", "-y", "-qq", "libvips-tools"],
            env={"DEBIAN_FRONTEND": "noninteractive"}, capture=False)
    if not (SCRATCH / "node_modules" / "sharp").exists():
        print("installing sharp (npm) into target/bench-compare...", file=sys.stderr)
        run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(SCRATCH),
             "sharp@0.35"], capture=False)


def with_orientation(path, orientation):
    """Puts an EXIF APP1 segment holding only `Orientation` right after the SOI marker of a
    JPEG saved without metadata."""
    data = path.read_bytes()
    tiff = (b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01"
            + b"\x01\x12\x00\x03\x00\x00\x00\x01" + bytes([0, orientation, 0, 0])
            + b"\x00\x00\x00\x00")
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    path.write_bytes(data[:2] + segment + data[2:])


def inputs():
    """(file, images per run, what the issue asks of it)"""
    photo = FIXTURES / "elephants_1920x1080_progressive.jpg"
    cups = FIXTURES / "colorfulcups_2560x1600_progressive_gps.jpg"
    baseline = SCRATCH / "elephants_1920x1080_baseline.jpg"
    phone = SCRATCH / "phone_4032x3024_orientation6.jpg"
    camera = SCRATCH / "camera_6000x3750_orientation8.jpg"
    landscape = SCRATCH / "camera_6000x3750.jpg"
    if not baseline.exists():
        run(["vips", "copy", str(photo), f"{baseline}[Q=90,strip]"])
    if not phone.exists():
        # A phone photo: 4032x3024 (12.2 MP) at q90, taken upright (orientation 6).
        run(["vips", "resize", str(cups), f"{phone}[Q=90,strip]", "1.575", "--vscale", "1.89"])
        with_orientation(phone, 6)
    if not camera.exists():
        # A camera original: the fixtures' Sony NEX-3N photo (2560x1600) enlarged to
        # 6000x3750 (22.5 MP), baseline at q90, orientation 8.
        run(["vips", "resize", str(cups), f"{camera}[Q=90,strip]", "2.34375"])
        with_orientation(camera, 8)
    if not landscape.exists():
        # The same without orientation: landscape variants, 1/2.6 of the pixels to encode.
        run(["vips", "resize", str(cups), f"{landscape}[Q=90,strip]", "2.34375"])
    return [(photo, 40, 1.8, None), (baseline, 40, 1.3, None), (phone, 16, None, None),
            (camera, 16, 2.5, 1.4), (landscape, 16, 2.5, 1.4)]


def darkroom(path, count, threads, encode_only=False):
    cmd = [str(ROOT / "target" / "release" / "examples" / "throughput"), str(path),
           "--threads", str(threads), "--count", str(count)]
    if encode_only:
        cmd.append("--encode-only")
    return json.loads(run(cmd))


def sharp(path, count):
    out = run(["node", str(ROOT / "benches" / "compare" / "sharp_job.cjs"), str(SCRATCH),
               str(path), str(count), str(THREADS)], env={"UV_THREADPOOL_SIZE": str(THREADS)})
    return json.loads(out)


def vips(path, count):
    """vipsthumbnail (shrink-on-load, one decode per output), 2 processes at a time."""
    version = run(["vips", "--version"]).strip()
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        tmp = Path(tmp)
        halves = [tmp / "a", tmp / "b"]
        for i in range(count):
            half = halves[i % THREADS]
            half.mkdir(exist_ok=True)
            shutil.copy(path, half / f"{i}.jpg")
        env = {**os.environ, "VIPS_CONCURRENCY": "1"}
        started = time.perf_counter()
        procs = []
        for half in halves:
            script = " && ".join(
                f"vipsthumbnail --size {w}x --rotate -o '%s-{w}.webp[Q=80,effort=4,strip]' "
                f"{half}/*.jpg" for w in WIDTHS)
            procs.append(subprocess.Popen(["sh", "-c", script], env=env))
        if any(p.wait() != 0 for p in procs):
            sys.exit("vipsthumbnail failed")
        seconds = time.perf_counter() - started
        one = sum((halves[0] / f"0-{w}.webp").stat().st_size for w in WIDTHS)
    return {"tool": f"libvips vipsthumbnail ({version})", "threads": THREADS, "count": count,
            "seconds": round(seconds, 3), "img_per_s": round(count / seconds, 2), "bytes": one}


def main():
    SCRATCH.mkdir(parents=True, exist_ok=True)
    ensure_tools()
    print("building the release throughput example...", file=sys.stderr)
    run(["cargo", "build", "--release", "--quiet", "--example", "throughput"], capture=False)
    machine = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                             capture_output=True, text=True).stdout.strip()
    print(f"# bench-compare: {machine}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')}")
    for path, count, vs_sharp, vs_floor in inputs():
        rows = {
            "darkroom": darkroom(path, count, THREADS),
            "darkroom_1t": darkroom(path, count // 2, 1),
            "encode_only": darkroom(path, count, THREADS, encode_only=True),
            "sharp": sharp(path, count),
            "vips": vips(path, count),
        }
        print(f"\n## {path.name} ({count} images, {THREADS} threads unless noted)\n")
        print("| tool | threads | img/s | output bytes (4 variants) |")
        print("|---|---|---|---|")
        for r in rows.values():
            print(f"| {r['tool']} | {r['threads']} | {r['img_per_s']:.2f} | {r['bytes']:,} |")
        d, s = rows["darkroom"], rows["sharp"]
        target = f" (target >= {vs_sharp}x)" if vs_sharp else ""
        floor_target = f" (target <= {vs_floor}x)" if vs_floor else ""
        print()
        print(f"- darkroom / sharp throughput: {d['img_per_s'] / s['img_per_s']:.2f}x{target}; "
              f"output bytes {100 * (d['bytes'] / s['bytes'] - 1):+.1f}% vs sharp (target within 3%)")
        print(f"- darkroom / vipsthumbnail throughput: {d['img_per_s'] / rows['vips']['img_per_s']:.2f}x")
        print(f"- pipeline time / WebP encoding alone (the floor): "
              f"{rows['encode_only']['img_per_s'] / d['img_per_s']:.2f}x{floor_target}")
        print(f"- 2 threads / 1 thread: "
              f"{d['img_per_s'] / rows['darkroom_1t']['img_per_s']:.2f}x (target >= 1.85x)")

if __name__ == "__main__":
    main()
