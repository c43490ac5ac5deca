# SPDX-License-Identifier: Apache-2.0
# Thin wrapper around CMake. Every target runs scripts/setup-deps.sh first (quick when
# everything is installed).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CVDEPLOY_ASSETS ?= $(abspath ../shared/assets)
export CVDEPLOY_ASSETS
CVDEPLOY := $(BUILD_DIR)/cvdeploy

.PHONY: all deps configure build test test-unit demo format clean

all: build

deps:
	@scripts/setup-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The whole suite: unit, integration and slow tests.
test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-unit: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

demo: build
	@echo "== cvdeploy info (yolo11n-dq)"
	@$(CVDEPLOY) info $(CVDEPLOY_ASSETS)/models/yolo11n-dq.onnx
	@echo
	@echo "== cvdeploy predict on the sample images (yolo11n-dq)"
	@$(CVDEPLOY) predict --model $(CVDEPLOY_ASSETS)/models/yolo11n-dq.onnx \
	  --source $(CVDEPLOY_ASSETS)/images --save-dir runs/demo --json runs/demo/detections.jsonl
	@echo "detections as JSON Lines: runs/demo/detections.jsonl"

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR)
