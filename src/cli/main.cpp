// SPDX-License-Identifier: Apache-2.0
// cvdeploy command line. Exit codes come from one table, ExitCodeOf (cli/exit_codes.h): 0 ok,
// 2 usage error, 3 bad input, 4 runtime failure, 5 and 6 for the outcomes of quantize and
// compare. Every error is one line on stderr naming the input and the reason, plus the CLI's
// own hint where the core named a setting (and, for Ultralytics-style key=value arguments, a
// second line with the equivalent command: cli/usage_errors.h); nothing escapes as an uncaught
// exception.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <opencv2/core/utils/logger.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/usage_errors.h"
#include "cvdeploy/build_info.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"

namespace {

using cvdeploy::cli::ExitCodeOf;
using cvdeploy::cli::Outcome;

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// The CLI's hint for an error about a core setting: the core names the setting ("batch",
// "device", "max_model_bytes"), the CLI names what the user can do about it. A setting with
// a fixed hint is listed here; any other becomes its flag, " (--max-model-bytes)" for
// "max_model_bytes", when the command that ran has that flag.
std::string FlagHint(const CLI::App& app, const std::string& setting) {
  if (setting.empty()) return "";
  if (setting == "batch") {
    return " (make the batch axis dynamic with cvdeploy convert --dynamic-batch)";
  }
  std::string flag = "--" + setting;
  for (char& c : flag) {
    if (c == '_') c = '-';
  }
  for (const CLI::App* sub : app.get_subcommands()) {
    if (sub->get_option_no_throw(flag) != nullptr) return " (" + flag + ")";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // Library chatter (OpenCV, FFmpeg) would break the one-line error contract on stderr;
  // failures reach the user as cvdeploy errors instead.
  setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0);
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  CLI::App app{"cvdeploy: run Ultralytics YOLO ONNX models correctly and fast", "cvdeploy"};
  app.require_subcommand(1, 1);
  app.set_version_flag(
      "--version", std::string("cvdeploy ") + CVDEPLOY_VERSION + " (" + CVDEPLOY_GIT_COMMIT + ")");
  int exit_code = 0;
  cvdeploy::cli::RegisterInfo(app, &exit_code);
  cvdeploy::cli::RegisterPredict(app, &exit_code);
  cvdeploy::cli::RegisterValidate(app, &exit_code);
  cvdeploy::cli::RegisterConvert(app, &exit_code);
  cvdeploy::cli::RegisterBench(app, &exit_code);
  cvdeploy::cli::RegisterServe(app, &exit_code);
  cvdeploy::cli::RegisterQuantize(app, &exit_code);
  cvdeploy::cli::RegisterFp16(app, &exit_code);
  cvdeploy::cli::RegisterPrune(app, &exit_code);
  cvdeploy::cli::RegisterCompare(app, &exit_code);
  cvdeploy::cli::RegisterKeys(app, &exit_code);
  cvdeploy::cli::RegisterUsers(app, &exit_code);
  cvdeploy::cli::RegisterAudit(app, &exit_code);
  cvdeploy::cli::RegisterTls(app, &exit_code);
  cvdeploy::cli::RegisterObfuscate(app, &exit_code);
  cvdeploy::cli::RegisterPackageKeygen(app, &exit_code);
  cvdeploy::cli::RegisterPack(app, &exit_code);
  cvdeploy::cli::RegisterPackageVerify(app, &exit_code);
  cvdeploy::cli::RegisterUnpack(app, &exit_code);
  cvdeploy::cli::RegisterGolden(app, &exit_code);
  cvdeploy::cli::RegisterDoctor(app, &exit_code);
  cvdeploy::cli::RegisterDrift(app, &exit_code);
  cvdeploy::cli::RegisterHealth(app, &exit_code);
  cvdeploy::cli::RegisterSamples(app, &exit_code);
  cvdeploy::cli::RegisterTraining(app, &exit_code);
  try {
    app.parse(argc, argv);
    // Whatever a command printed must have arrived: `> /dev/full` is a failure, not success.
    std::cout.flush();
    cvdeploy::CheckStdout();
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help / --version
  } catch (const CLI::ParseError& e) {
    // What CLI11 could not place (a mistyped command or flag, key=value arguments) explains
    // the failure better than the error it stopped at ("--model is required").
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (const auto explained = cvdeploy::cli::ExplainUsageError(app, args)) {
      std::fprintf(stderr, "cvdeploy: usage error: %s\n", OneLine(explained->message).c_str());
      if (!explained->hint.empty()) std::fprintf(stderr, "%s\n", explained->hint.c_str());
      return ExitCodeOf(Outcome::kUsage);
    }
    std::fprintf(stderr, "cvdeploy: usage error: %s (see 'cvdeploy --help')\n",
                 OneLine(e.what()).c_str());
    return ExitCodeOf(Outcome::kUsage);
  } catch (const cvdeploy::Error& e) {
    std::fprintf(stderr, "cvdeploy: error: %s%s\n", OneLine(e.what()).c_str(),
                 FlagHint(app, e.setting()).c_str());
    return ExitCodeOf(e.code());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "cvdeploy: error: out of memory\n");
    return ExitCodeOf(cvdeploy::ErrorCode::kRuntime);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cvdeploy: error: %s\n", OneLine(e.what()).c_str());
    return ExitCodeOf(cvdeploy::ErrorCode::kRuntime);
  }
  return exit_code;
}
