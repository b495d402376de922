#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECS each, default 60; FUZZ_RUNS
# stops one earlier after that many executions), or some (FUZZ_TARGET="strip svg"). Corpora live in fuzz/corpus/<target> (not checked in) and
# are seeded from tests/fixtures and a few hand-written inputs; crashes land in
# fuzz/artifacts/<target>. Needs the nightly toolchain (or RUSTC_BOOTSTRAP=1) and
# cargo-fuzz, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECS:-60}
runs=${FUZZ_RUNS:--1}   # stop a target after this many executions (default: time only)
targets=${FUZZ_TARGET:-sniff probe anim svg video strip orientation decode folder query router multipart record}
toolchain=+nightly
rustup toolchain list | grep -q '^nightly' || { toolchain=""; export RUSTC_BOOTSTRAP=1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seed() { # target, then files or literal inputs
  local dir="fuzz/corpus/$1"; shift
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return 0
  local i=0
  for s in "$@"; do
    i=$((i + 1))
    if [ -f "$s" ]; then cp "$s" "$dir/seed-$i-$(basename "$s")"; else printf '%s' "$s" > "$dir/seed-$i"; fi
  done
}
images=$(find tests/fixtures/jpeg tests/fixtures/png tests/fixtures/gif tests/fixtures/webp tests/fixtures/hostile -type f -size -600k)
seed sniff $(find tests/fixtures -type f -size -600k)
seed probe $images
seed anim $images
seed strip $images
seed orientation $images
seed decode $images
seed svg tests/fixtures/svg/* tests/fixtures/hostile/*.svg
seed video tests/fixtures/video/* tests/fixtures/hostile/zip_archive.mp4
seed folder "/" "/a/b" "/Photos 2024/Summer" "a/../b" "/a//b/" "/$(printf 'x%.0s' {1..300})"
seed query "limit=10&offset=20&sort=filename&order=asc" "limit=24&cursor=AWNkAAECAwQFBgdtZWRpYV8wMTIzNDU2Nzg5YWJjZGVm" "search=50%25_off&type=image&folder=/a" "limit=0" "sort=size&order=desc&search="
seed router "GET/api/v1/media" "P/api/v1/media/media_0123456789abcdef" "G/uploads/2026/01/abc.jpg" "D/api/v1/media/folders?path=/a"
seed multipart $'--b\r\nContent-Disposition: form-data; name="folder"\r\n\r\n/a/b\r\n--b\r\nContent-Disposition: form-data; name="files"; filename="../x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xd9\r\n--b--\r\n'
seed record '{"id":"media_aaaaaaaaaaaaaaaa","filename":"a.png","media_type":"png","size":1,"width":1,"height":1,"alt":null,"title":null,"description":null,"folder":"/a","focal_x":50.0,"focal_y":50.0,"created_us":1,"storage_key":"2026/01/abc.png","processing":{"status":"ready","variants":[{"width":150,"height":150,"size":10,"storage_key":"2026/01/abc-150.webp"}],"thumbhash":null,"dominant_color":null,"error":null}}'

mkdir -p fuzz/logs
for t in $targets; do
  echo "== fuzz $t for ${secs}s (log: fuzz/logs/$t.log)"
  status=0
  # Decoding targets are slow on large inputs: they get smaller ones, and more of them.
  case $t in strip|svg|orientation|decode) max_len=16384 ;; *) max_len=65536 ;; esac
  # The decode target's memory bound: a 4 MP picture and its copies fit well within it.
  case $t in decode) memory="-rss_limit_mb=512 -malloc_limit_mb=256" ;; *) memory="-rss_limit_mb=2048" ;; esac
  (cd fuzz && cargo $toolchain fuzz run "$t" "corpus/$t" -- -runs="$runs" \
      -max_total_time="$secs" -max_len="$max_len" $memory -print_final_stats=1) \
      > "fuzz/logs/$t.log" 2>&1 || status=$?
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|panicked|ERROR' "fuzz/logs/$t.log" || true
  if [ "$status" != 0 ]; then
    echo "fuzz $t failed (exit $status); findings, if any, in fuzz/artifacts/$t"
    tail -40 "fuzz/logs/$t.log" | cut -c1-300
    exit 1
  fi
done
