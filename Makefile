# SPDX-License-Identifier: Apache-2.0
# Thin wrapper around CMake. Every target runs scripts/setup-deps.sh first (quick when
# everything is installed).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CVDEPLOY_ASSETS ?= $(abspath ../shared/assets)
export CVDEPLOY_ASSETS
CVDEPLOY := $(BUILD_DIR)/cvdeploy

.PHONY: all deps configure build test test-unit demo serve bench-serve bench-optimize format clean

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

# The inference server on the sample detection models (Ctrl-C stops it, draining requests).
SERVE_MODELS ?= yolov8n-dq yolo11n-dq
HOST ?= 127.0.0.1
PORT ?= 8080
URL := http://$(HOST):$(PORT)
IMG := $(CVDEPLOY_ASSETS)/images
serve: build
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
bench-serve: build
	@python3 bench/serve_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) $(BENCH_ARGS)

# float / int8 / fp16 / pruned table of docs/optimization.md, with PASS/FAIL per target.
bench-optimize: build
	@python3 bench/optimize_bench.py --cvdeploy $(CVDEPLOY) --assets $(CVDEPLOY_ASSETS) --out runs/optimize $(BENCH_ARGS)

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR)
