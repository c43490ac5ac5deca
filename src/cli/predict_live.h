// SPDX-License-Identifier: Apache-2.0
// `cvdeploy predict` on live sources (webcam, RTSP/HTTP streams, .streams files): results
// written as they come, per-stream summary at the end (also after SIGINT).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/output_names.h"
#include "cvdeploy/annotate.h"
#include "cvdeploy/pipeline.h"
#include "cvdeploy/predictor.h"

namespace cvdeploy::cli {

// --buffer, --reconnect, --stream-timeout
struct LiveArgs {
  bool buffer = false;
  int reconnect = 3;
  double timeout_s = 10;
  void Add(CLI::App& cmd);
};

// What predict hands to a live run besides the sources.
struct LiveRun {
  const Predictor* predictor = nullptr;
  PredictOptions options;
  pipeline::Options pipeline;
  std::string json;      // JSON Lines: "" none, "-" stdout, else a file written line by line
  std::string save_dir;  // "" : no annotated video
  int vid_stride = 1;
  bool quiet = false;
  bool all_contours = false;
  OutputNames* names = nullptr;  // unique output file names within the run
  AnnotateOptions style;         // --line-width, --hide-labels, --hide-conf
};

// Splits --source values into live sources (URLs, webcams, the lines of .streams files) and
// the rest. Throws Error(kInvalidArgument) when both kinds are given in one run.
std::vector<std::string> LiveSources(const std::vector<std::string>& sources);

// Runs the live sources until every stream ended or SIGINT; returns the exit code. Throws
// Error(kBadInput) when a stream cannot be opened.
int RunLive(const std::vector<std::string>& sources, const LiveArgs& live, const LiveRun& run);

}  // namespace cvdeploy::cli
