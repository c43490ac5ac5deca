#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The long fuzzing run recorded in docs/reliability.md: every target until 1,000,000
# executions or 10 minutes, whichever comes first, two at a time (about an hour on 2 cores
# for 15 targets). Needs the fuzz build (`make fuzz-long` builds it first). Writes the
# Markdown table (target, executions, seconds, cov, ft, corpus size, crashes) to
# $FUZZ_TABLE (default runs/fuzz-long.md) and exits nonzero when any target crashed.
# FUZZ_RUNS / FUZZ_MAX_SECONDS / FUZZ_JOBS / FUZZ_TARGETS override the defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
TABLE="${FUZZ_TABLE:-runs/fuzz-long.md}"
args=(--build "$BUILD" --runs "${FUZZ_RUNS:-1000000}" --max-seconds "${FUZZ_MAX_SECONDS:-600}"
  --jobs "${FUZZ_JOBS:-2}" --table "$TABLE")
[ -n "${FUZZ_TARGETS:-}" ] && args+=(--targets "$FUZZ_TARGETS")
status=0
python3 tests/fuzz/run_fuzz.py "${args[@]}" || status=$?
[ -f "$TABLE" ] && cat "$TABLE"
exit "$status"
