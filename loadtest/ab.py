#!/usr/bin/env python3
"""Side by side: the same load on two (or more) release builds, alternated A B A B so that
the machine's drift falls on both. AB_BINS is "label=path,label=path" (default: this
tree's release build alone); AB_ROUNDS rounds (default 2). Each server is fresh, on an
empty data dir; per scenario: ok/s, p99 and the server's peak RSS. Loopback only.
AB_SECONDS, when set, is every scenario's measured duration (default: 10 s, 15 s for
upload-images).

    AB_BINS="before=/path/darkroom-old,after=target/release/darkroom" python3 loadtest/ab.py
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf  # noqa: E402

SCENARIOS = [
    ("upload-docs c64", "upload-docs", ["-c", 64, "--duration", 10, "--warmup", 2]),
    ("upload-images c8", "upload-images", ["-c", 8, "--duration", 15, "--warmup", 2]),
    ("get-public c64", "get-public", ["-c", 64, "--duration", 10, "--warmup", 2]),
    ("list c64", "list", ["-c", 64, "--duration", 10, "--warmup", 2]),
]


def scenarios():
    seconds = os.environ.get("AB_SECONDS")
    if not seconds:
        return SCENARIOS
    return [(name, scenario, [float(seconds) if i > 0 and flags[i - 1] == "--duration" else f
                              for i, f in enumerate(flags)])
            for name, scenario, flags in SCENARIOS]


def main():
    spec = os.environ.get("AB_BINS", f"this={perf.BIN / 'darkroom'}")
    bins = [part.split("=", 1) for part in spec.split(",")]
    rows = {}
    for rnd in range(1, int(os.environ.get("AB_ROUNDS", "2")) + 1):
        for label, path in bins:
            s = perf.Server(f"ab-{rnd}-{label}", binary=Path(path))
            try:
                for name, scenario, flags in scenarios():
                    res = perf.loadtest(f"ab-{rnd}-{label}-{scenario}", s.url, scenario, *flags,
                                        key=s.key, server=s)
                    summary = res["summary"]
                    # A refusal other than backpressure (a 507 from a full disk, a 500)
                    # makes the run's figures meaningless: say so loudly.
                    refused = {code: n for code, n in summary.get("statuses", {}).items()
                               if not (str(code).startswith("2") or str(code) == "503")}
                    if refused:
                        print(f"WARNING: {name}, {label}, round {rnd} answered {refused}: "
                              f"not comparable (see {s.dir})", file=sys.stderr)
                    rows.setdefault(name, {}).setdefault(label, []).append(
                        (round(summary["ok_per_s"], 1), summary["latency_ms"]["p99"],
                         round(res["peak_rss_mb"])))
            finally:
                s.stop()
    (perf.SCRATCH / "ab.json").write_text(json.dumps(rows, indent=1))
    for name, by_label in rows.items():
        cells = "; ".join(f"{label}: " + " / ".join(f"{ok} ok/s p99 {p99} {rss} MB" for ok, p99, rss in runs)
                          for label, runs in by_label.items())
        print(f"{name}: {cells}")


if __name__ == "__main__":
    main()
