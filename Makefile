# SPDX-License-Identifier: Apache-2.0
# Thin wrapper around CMake. Every target runs scripts/setup-deps.sh first (quick when
# everything is installed).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CVDEPLOY_ASSETS ?= $(abspath ../shared/assets)
export CVDEPLOY_ASSETS
CVDEPLOY := $(BUILD_DIR)/cvdeploy

# Fuzzing (clang + libFuzzer, in its own build directory) and the sanitizer build (g++).
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 10
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_JOBS ?= 2
SANITIZE_BUILD_DIR ?= build-sanitize
LSAN_SUPPRESSIONS := $(abspath tests/sanitizers/lsan.supp)

.PHONY: all deps configure build test test-unit demo serve bench-serve bench-optimize bench-security format clean \
	bench-drift bench-baseline bench-train bench-distill-loss \
        fuzz-build fuzz fuzz-long test-sanitize test-deploy kube-play-test deb test-deb test-dashboard cli image test-image image-base edge edge-configure edge-bundle test-edge

all: build

deps:
	@scripts/setup-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The whole suite: unit, integration and slow tests, then a short run of every fuzz target
# (regression inputs and seeds, then FUZZ_SMOKE_SECONDS of fuzzing each) so the harness
# cannot rot.
# The fuzz smoke runs first so that CTest's summary is the run's closing line.
test: build
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-unit: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

# libFuzzer targets of tests/fuzz: only the parser sources are compiled (cmake/Fuzz.cmake).
fuzz-build:
	@scripts/setup-deps.sh --fuzz
	@cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
	  -DCVDEPLOY_FUZZ=ON -DCVDEPLOY_BUILD_TESTS=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) --target fuzz_targets -j $(JOBS)

# Every target for FUZZ_SECONDS each, FUZZ_JOBS at a time; nonzero exit on any crash.
fuzz: fuzz-build
	@python3 tests/fuzz/run_fuzz.py --build $(FUZZ_BUILD_DIR) --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS)

# The long run (1,000,000 executions or 10 minutes per target) and its Markdown table.
fuzz-long: fuzz-build
	@FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz-long.sh

# Unit and integration tests under AddressSanitizer + UndefinedBehaviorSanitizer (g++), every
# finding fatal. Leak detection stays on; tests/sanitizers/lsan.supp names the one known leak
# (inside ONNX Runtime). SANITIZE_TARGETS / SANITIZE_TESTS narrow the build / the ctest run.
# bench_smoke is left out: its targets are peak RSS and RSS growth of the production build,
# which ASan's shadow memory and quarantine of freed blocks change by design (measured: 611 MB
# peak, +90 MB growth); its code paths run in the other CLI tests.
test-sanitize: deps
	@cmake -S . -B $(SANITIZE_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCVDEPLOY_SANITIZE=address,undefined $(CMAKE_ARGS) >/dev/null
	@cmake --build $(SANITIZE_BUILD_DIR) -j $(JOBS) $(if $(SANITIZE_TARGETS),--target $(SANITIZE_TARGETS))
	@ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:fast_unwind_on_malloc=0 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(LSAN_SUPPRESSIONS):print_suppressions=0 \
	  ctest --test-dir $(SANITIZE_BUILD_DIR) --output-on-failure -j $(JOBS) -L 'unit|integration' -E '^bench_smoke$$' \
	  $(if $(SANITIZE_TESTS),-R '$(SANITIZE_TESTS)')

demo: cli
	@echo "== cvdeploy info (yolo11n-dq)"
	@$(CVDEPLOY) info $(CVDEPLOY_ASSETS)/models/yolo11n-dq.onnx
	@echo
	@echo "== cvdeploy predict on the sample images (yolo11n-dq)"
	@$(CVDEPLOY) predict --model $(CVDEPLOY_ASSETS)/models/yolo11n-dq.onnx \
	  --source $(CVDEPLOY_ASSETS)/images --save-dir runs/demo --json runs/demo/detections.jsonl
	@echo "detections as JSON Lines: runs/demo/detections.jsonl"

# The inference server on the sample detection models (Ctrl-C stops it, draining requests).
SERVE_MODELS ?= yolov8n-dq yolo11n-dq
HOST ?= 127.0.0.1
PORT ?= 8080
URL := http://$(HOST):$(PORT)
IMG := $(CVDEPLOY_ASSETS)/images
serve: cli
	@echo "== cvdeploy serve: $(SERVE_MODELS) on $(URL) (ready once warmed up; Ctrl-C stops)"
	@echo "Try, from another terminal:"
	@echo "  curl -s $(URL)/v2/health/ready"
	@echo "  curl -s -H 'Content-Type: image/jpeg' --data-binary @$(IMG)/bus.jpg '$(URL)/v1/models/yolo11n-dq/predict?conf=0.4'"
	@echo "  curl -s -F image=@$(IMG)/zidane.jpg $(URL)/v1/models/yolov8n-dq/predict"
	@echo "  curl -s -o annotated.jpg --data-binary @$(IMG)/bus.jpg -H 'Content-Type: image/jpeg' '$(URL)/v1/models/yolo11n-dq/predict?annotate=1'"
	@echo "  curl -s $(URL)/v2/models/yolo11n-dq"
	@echo "  python3 -c \"import json; print(json.dumps({'inputs': [{'name': 'images', 'datatype': 'FP32', 'shape': [1,3,640,640], 'data': [0.5]*1228800}]}))\" > /tmp/v2.json"
	@echo "  curl -s -H 'Content-Type: application/json' --data-binary @/tmp/v2.json $(URL)/v2/models/yolo11n-dq/infer | head -c 300"
	@echo "  curl -s $(URL)/metrics | grep ^cvdeploy_inference"
	@echo "Access log (one JSON line per request) follows on stdout; server events on stderr."
	@$(CVDEPLOY) serve $(foreach m,$(SERVE_MODELS),--model $(CVDEPLOY_ASSETS)/models/$(m).onnx) \
	  --host $(HOST) --port $(PORT) $(SERVE_ARGS)

# Server load test with wrk (about 3 minutes plus the 10,000-request memory phase).
bench-serve: cli
	@python3 bench/serve_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) $(BENCH_ARGS)

# float / int8 / fp16 / pruned table of docs/optimization.md, with PASS/FAIL per target.
bench-optimize: build
	@python3 bench/optimize_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) --out runs/optimize $(BENCH_ARGS)

# Distillation after pruning and QAT on a 60/26 split of coco128 (docs/optimization.md
# "Training"; about 40 minutes on 2 cores; needs the libtorch build, cvdeploy-train).
bench-train: build
	@python3 bench/train_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) --out runs/train $(BENCH_ARGS)

# The distillation losses against each other, labelled distillation and finetune on one pruned
# student (docs/optimization.md "Training"; about 20 minutes on 2 cores; cvdeploy-train).
bench-distill-loss: build
	@python3 bench/distill_loss_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) --out runs/distill_loss $(BENCH_ARGS)

# TLS + API key + audit log against plain HTTP, with the one-control-at-a-time breakdown of
# docs/performance.md (about 5 minutes).
bench-security: build
	@python3 bench/security_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) --rounds 3 --duration 20 --breakdown --out runs/security $(BENCH_ARGS)

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) $(FUZZ_BUILD_DIR) $(SANITIZE_BUILD_DIR)

# Deployment manifests (docs/deploy.md): render, validate, lint and cross-check deploy/ with a
# live server, and promtool on deploy/prometheus (the CTest label deploy, ~40 s).
test-deploy: build
	@cd $(BUILD_DIR) && ctest -L deploy --output-on-failure
# The rendered overlays/cpu Deployment under podman kube play with the image of `make image`.
kube-play-test: build
	@scripts/kube_play_test.sh --cvdeploy $(CVDEPLOY) $(KUBE_PLAY_ARGS)

# ---- Debian package (issue 17, docs/deploy.md "Local server (Debian package)") ----------------
# deb: BUILD_DIR/cvdeploy_<version>_amd64.deb (cmake/Packaging.cmake: CPack DEB, the `debian`
# install component). test-deb (root; about 4 minutes, the first run 3 more for the cached
# mmdebstrap root filesystem): installs it into a fresh bookworm root filesystem, runs predict
# and the unit's serve command there, boots it with systemd-nspawn (the unit under systemd),
# systemd-analyze verify/security, lintian, purge. TEST_DEB_ARGS: --keep, --no-lintian.
deb: configure
	@scripts/setup-deb.sh
	@cmake --build $(BUILD_DIR) --target cvdeploy_cli cvdeploy_deb_files -j $(JOBS)
	@cd $(BUILD_DIR) && cpack -G DEB

test-deb: deb
	@/usr/bin/python3 scripts/test_deb.py --build $(BUILD_DIR) $(TEST_DEB_ARGS)

# Data-drift monitoring (issue 19): server throughput with and without a drift baseline,
# interleaved A/B rounds; PASS when the cost is <= 2% (docs/performance.md).
bench-drift: build
	@python3 bench/drift_bench.py --cvdeploy $(BUILD_DIR)/cvdeploy

# cvdeploy against the plain ONNX Runtime + OpenCV baseline (bench/baseline/plain_ort.cpp) in
# interleaved rounds: bus.jpg p50 and coco128 throughput ratios, PASS/FAIL (docs/performance.md).
bench-baseline: configure
	@cmake --build $(BUILD_DIR) --target cvdeploy_cli cvdeploy_plain_ort -j $(JOBS)
	@python3 bench/side_by_side.py --cvdeploy $(CVDEPLOY) --plain $(BUILD_DIR)/plain_ort \
	  --assets $(CVDEPLOY_ASSETS) --out runs/side_by_side $(BENCH_ARGS)

# The dashboard (docs/server.md, "Dashboard"): its HTTP test and the headless-browser test
# (scripts/setup-browser.sh installs chromium + puppeteer-core); screenshot under
# build/test-artifacts/dashboard.
test-dashboard: build
	@cd $(BUILD_DIR) && ctest -R 'dashboard|metric_history' --output-on-failure

# ---- Container image (issue 17; docs/deploy.md "Container image") ----
# cli: only the cvdeploy binary (what serve and demo need), not the test suite.
cli: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target cvdeploy_cli

# podman + the local mmdebstrap base (no registry here); tags localhost/cvdeploy:<version> and
# localhost/cvdeploy:latest. Tools come from scripts/setup-image.sh, not setup-deps.sh.
image-base:
	@scripts/setup-image.sh
	@scripts/container-env.sh scripts/image-base.sh

image: deps image-base
	@scripts/container-env.sh scripts/build-image.sh

# Builds (or reuses, IMAGE_REUSE=1) the image, runs it read-only as uid 10001 with the sample
# model, compares its detections with the host CLI's, checks SIGTERM drain and exit 0.
# Kept out of CTest: a cold image build takes longer than a CTest test may.
test-image: cli
	@scripts/setup-image.sh
	@scripts/container-env.sh /usr/bin/python3 scripts/test_image.py --cvdeploy $(CVDEPLOY) \
	  --assets $(CVDEPLOY_ASSETS) $(if $(IMAGE_REUSE),--reuse) $(TEST_IMAGE_ARGS)

# ------------------------------------------------------------------ aarch64 edge build
# Cross build for aarch64 (docs/deploy.md, "Edge build (aarch64)"): Debian's cross g++, the
# arm64 sysroot, ONNX Runtime arm64 and trixie's qemu-user, all from scripts/setup-edge.sh.
# Slow (a cross build plus tests under emulation), so not part of `make test` / CTest.
#   make edge        the CLI (which includes the server) in $(EDGE_BUILD_DIR)/cvdeploy
#   make edge-bundle $(EDGE_BUILD_DIR)/cvdeploy-edge-aarch64.tar.gz: bin/ + lib/ (ONNX Runtime),
#                    RUNPATH $$ORIGIN/../lib, to unpack anywhere on a device (scripts/edge-bundle.sh)
#   make test-edge   + the unit tests under qemu (ctest -L unit) and predict on bus.jpg under
#                    qemu from the unpacked bundle against this machine's x86 build
#                    (scripts/test_edge.py --bundle)
# EDGE_CMAKE_ARGS adds CMake arguments (e.g. -DCVDEPLOY_SYSROOT=DIR, -DONNXRUNTIME_ROOT=DIR).
EDGE_BUILD_DIR ?= build-edge
EDGE_SYSROOT ?= $(abspath .deps/sysroot-arm64)
EDGE_QEMU ?= $(abspath .deps/qemu/qemu-aarch64)
# Unit tests that start the CLI as a child process (CVDEPLOY_BINARY) cannot exec an arm64
# binary on the host (no binfmt handler); scripts/test_edge.py runs the edge CLI instead.
# EDGE_UNIT_TESTS="nms_test tensor_test" narrows the (slow) build and run to a few tests.
EDGE_UNIT_EXCLUDE := security_jwt_test security_totp_test security_users_test
# Single test cases that cannot pass under qemu-user (GTEST_FILTER, negative patterns):
#  ServerMetrics.ProcessMetricsArePresentAndPlausible: qemu emulates /proc/self/stat with
#    utime/stime fixed at 0, so cvdeploy_process_cpu_seconds_total reads 0 there (a device's
#    kernel fills them; the test passes on x86).
EDGE_GTEST_EXCLUDE := ServerMetrics.ProcessMetricsArePresentAndPlausible
EDGE_UNIT_TESTS ?= $(filter-out $(EDGE_UNIT_EXCLUDE),$(basename $(notdir $(wildcard tests/unit/*_test.cpp))))
EDGE_EMPTY :=
EDGE_SPACE := $(EDGE_EMPTY) $(EDGE_EMPTY)
EDGE_CCACHE := $(if $(shell command -v ccache),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

edge-configure:
	@scripts/setup-edge.sh
	@cmake -S . -B $(EDGE_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_TOOLCHAIN_FILE=$(abspath cmake/toolchain-aarch64.cmake) $(EDGE_CCACHE) $(EDGE_CMAKE_ARGS) >/dev/null

edge: edge-configure
	@cmake --build $(EDGE_BUILD_DIR) -j $(JOBS) --target cvdeploy_cli
	@file $(EDGE_BUILD_DIR)/cvdeploy | cut -d, -f1-2

edge-bundle: edge
	@scripts/edge-bundle.sh $(EDGE_BUILD_DIR)

test-edge: edge-bundle configure
	@cmake --build $(EDGE_BUILD_DIR) -j $(JOBS) --target $(EDGE_UNIT_TESTS)
	@QEMU_LD_PREFIX=$(EDGE_SYSROOT) GTEST_FILTER='-$(EDGE_GTEST_EXCLUDE)' ctest --test-dir $(EDGE_BUILD_DIR) --output-on-failure -j $(JOBS) \
	  -L unit -R '^($(subst $(EDGE_SPACE),|,$(strip $(EDGE_UNIT_TESTS))))$$'
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target cvdeploy_cli
	@python3 scripts/test_edge.py --self-test
	@python3 scripts/test_edge.py --bundle $(EDGE_BUILD_DIR)/cvdeploy-edge-aarch64.tar.gz --x86 $(CVDEPLOY) \
	  --qemu $(EDGE_QEMU) --sysroot $(EDGE_SYSROOT) --assets $(CVDEPLOY_ASSETS)
