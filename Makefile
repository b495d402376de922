# Darkroom's front door. `make run` serves on the embedded defaults; `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test lint bench build fmt

run:
	$(CARGO) run --release -- serve

build:
	$(CARGO) build --release

test:
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --bench catalog
