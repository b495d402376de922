# Darkroom's front door. `make run` serves on the embedded defaults; `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test lint bench bench-compare build fmt build-tools preview-tools tools s3-up s3-down loadtest perf perf-10m openapi fuzz crash-test slow-clients

run: build-tools preview-tools
	$(CARGO) run --release -- serve

build: build-tools
	$(CARGO) build --release

# The S3 suite runs against a real S3 server (SeaweedFS) on loopback, and the PostgreSQL
# catalog's against a throwaway cluster, both started here and stopped afterwards, pass,
# fail or interrupt. The API suite runs twice, once per cell of the test matrix: redb and
# local disk, then (TEST_CELL=postgres) a PostgreSQL catalog with files in the bucket;
# tests/api/common.rs says how a test picks its cell.
S3_PORT ?= 18333
# Then crash rounds against the debug binary the tests built (scripts/crash-test.py), and
# the contract from outside: the document validated, schemathesis and the explorer in
# Chromium against the real binary (scripts/contract-checks.sh).
test: tools
	@bash -c 'trap "scripts/s3-local.sh stop; scripts/pg-local.sh stop" EXIT; trap "exit 130" INT TERM; \
		S3_FRESH=1 S3_PORT=$(S3_PORT) scripts/s3-local.sh start && scripts/pg-local.sh start && \
		export S3_TEST_ENDPOINT=http://127.0.0.1:$(S3_PORT) PG_TEST_URL=$$(scripts/pg-local.sh url) && \
		TEST_CELL=redb $(CARGO) test --workspace --all-targets && \
		TEST_CELL=postgres $(CARGO) test --workspace --test api'
	python3 scripts/crash-test.py --rounds 3
	scripts/contract-checks.sh

# SIGKILL at random moments under concurrent uploads, PATCH, DELETE and folder changes;
# after each restart every acknowledged effect must hold (CRASH_ROUNDS, default 20).
crash-test: build-tools
	$(CARGO) build
	python3 scripts/crash-test.py

# 1,000 silent or slow connections and 200 trickling uploads next to normal clients,
# against the release binary (loadtest/slow_clients.py; SLOW_SECONDS, default 30).
slow-clients: build-tools
	$(CARGO) build --release
	python3 loadtest/slow_clients.py

# A local S3-compatible server for development (see config/s3.example.toml).
s3-up:
	S3_PORT=$(S3_PORT) scripts/s3-local.sh start

s3-down:
	scripts/s3-local.sh stop

# What building needs beyond cargo, from Debian: cmake and nasm build libjpeg-turbo (the
# turbojpeg crate's bundled copy, with its SIMD code).
build-tools:
	@scripts/debian-need.sh cmake:cmake nasm:nasm

# What previews use (optional at run time: without them videos and PDFs get no poster):
# ffmpeg makes video posters, poppler's pdftoppm renders PDF first pages.
preview-tools:
	@scripts/debian-need.sh ffmpeg:ffmpeg pdftoppm:poppler-utils

# What the tests need beyond that: promtool (package prometheus) checks the /metrics
# exposition format; chromium runs the explorer's browser test; nginx balances the
# three nodes of the cluster test; the preview tools make posters.
tools: build-tools preview-tools
	@scripts/debian-need.sh promtool:prometheus /usr/bin/chromium:chromium nginx:nginx-light

# Rewrites the checked-in contract from the code (a test fails while it is stale).
openapi:
	$(CARGO) run --quiet -- openapi > openapi.json

# Every parser under cargo fuzz for FUZZ_SECS each (default 60; FUZZ_RUNS to stop a target
# after that many executions); FUZZ_TARGET="a b" for some.
# Needs nightly (or RUSTC_BOOTSTRAP=1); installs cargo-fuzz when missing. Not part of `test`.
fuzz: build-tools
	scripts/fuzz.sh

lint: build-tools
	$(CARGO) fmt --all -- --check
	rustfmt --edition 2024 --check fuzz/fuzz_targets/*.rs
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: build-tools
	$(CARGO) bench

# Darkroom's pipeline vs sharp (npm) and libvips (Debian) on the same job, side by side.
# Installs what is missing into target/bench-compare (and libvips-tools via apt).
bench-compare:
	python3 benches/compare/compare.py

# The load-test harness (loadtest/) against a server already running on loopback, e.g.
#   make loadtest SCENARIO=upload-docs PORT=8080 ARGS="-c 64 -d 10"   (key: LOADTEST_API_KEY)
# Scenarios: upload-images upload-docs upload-large get-public list mixed presign.
SCENARIO ?= get-public
PORT ?= 8080
loadtest:
	$(CARGO) run --release -p loadtest -- $(SCENARIO) --url http://127.0.0.1:$(PORT) $(ARGS)

# Darkroom against its anchors (bare hyper, the bare pipeline), side by side in one run;
# starts its own servers on loopback and writes the table into BENCHMARKS.md; then the
# catalog at scale and the on-demand crops (first-request latency, cached throughput).
perf:
	python3 loadtest/perf.py
	SCALE_BUILD=0 python3 loadtest/scale.py
	python3 loadtest/crops_bench.py
	MEMORY_BUILD=0 python3 loadtest/memory.py

# The scaling table at 10M items, once (needs ~40 GB free under target/perf: check df).
perf-10m:
	SCALE_SIZES=10000000 python3 loadtest/scale.py
