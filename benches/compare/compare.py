#!/usr/bin/env python3
"""Side-by-side image pipeline comparison (`make bench-compare`).

Runs the same job -- one image in, WebP variants 1200/800/400/150 px wide out, quality 80,
effort/method 4, auto-oriented, no metadata -- with Darkroom's pipeline, sharp (npm) and
libvips' vipsthumbnail (Debian), each on 2 threads, over two inputs: the 1920x1080 photo
from tests/fixtures and a 22.5 MP camera-sized JPEG made from the fixtures' camera photo.
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


def inputs():
    photo = FIXTURES / "elephants_1920x1080_progressive.jpg"
    big = SCRATCH / "cups_6000x3750.jpg"
    if not big.exists():
        # A camera-sized original: the fixtures' Sony NEX-3N photo (2560x1600) enlarged to
        # 6000x3750 (22.5 MP) and saved as a baseline JPEG at q90, EXIF kept.
        src = FIXTURES / "colorfulcups_2560x1600_progressive_gps.jpg"
        run(["vips", "resize", str(src), f"{big}[Q=90]", "2.34375"])
    return [(photo, 40), (big, 16)]


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
    for path, count in inputs():
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
        print()
        print(f"- darkroom / sharp throughput: {d['img_per_s'] / s['img_per_s']:.2f}x "
              f"(target >= 1.8x); output bytes {100 * (d['bytes'] / s['bytes'] - 1):+.1f}% vs sharp")
        print(f"- darkroom / vipsthumbnail throughput: {d['img_per_s'] / rows['vips']['img_per_s']:.2f}x")
        print(f"- pipeline time / WebP encoding alone: "
              f"{rows['encode_only']['img_per_s'] / d['img_per_s']:.2f}x (target <= 1.10x)")
        print(f"- 2 threads / 1 thread: "
              f"{d['img_per_s'] / rows['darkroom_1t']['img_per_s']:.2f}x (target >= 1.85x)")


if __name__ == "__main__":
    main()
