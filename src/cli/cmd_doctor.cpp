// SPDX-License-Identifier: Apache-2.0
// cvdeploy doctor [--model M] [--golden DIR] [--json FILE|-] [--device D] [--threads N]
// Is this environment (and this model) set up right? Every finding OK / WARN / FAIL with one
// line of advice (cvdeploy/doctor.h). Exit 0 without a FAIL; 3 when a model finding fails (fix
// or replace the model); 4 when only environment findings fail (fix the machine).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cvdeploy/doctor.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/golden.h"
#include "cvdeploy/system.h"

namespace cvdeploy::cli {
namespace {

struct DoctorArgs {
  std::string model, golden, json;
  std::string device = "cpu";
  int threads = 0;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  ProtectionArgs protection;
};

// Areas about the model (the rest are about the environment).
bool IsModelArea(const std::string& area) {
  static const std::set<std::string> kModel = {"model",      "metadata", "axes",   "precision",
                                               "preprocess", "golden",   "package"};
  return kModel.count(area) > 0;
}

Finding Make(const std::string& area, const std::string& check, Finding::Level level,
             std::string detail, std::string advice) {
  return Finding{area, check, level, std::move(detail), std::move(advice)};
}

bool HasSuffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Finding PackageFinding(const security::OpenedModel& opened) {
  const std::string name = opened.manifest.value("name", std::string("?"));
  const std::string version =
      opened.manifest.contains("version") ? opened.manifest["version"].dump() : std::string("?");
  const bool signed_package =
      opened.manifest.contains("signer") && opened.manifest["signer"].is_object();
  std::string detail = "package " + name + " version " + version + ", " +
                       (opened.encrypted ? "encrypted" : "not encrypted") + ", ";
  if (opened.signature_checked) {
    return Make("package", "signature", Finding::kOk, detail + "signed by trusted " + opened.signer,
                "its origin is verified before it loads");
  }
  return Make("package", "signature", Finding::kWarn,
              detail + (signed_package ? "signed (not checked)" : "unsigned"),
              signed_package ? "pass --trusted-keys DIR (and --require-signed in production)"
                             : "sign it (pack --sign-key) so a swapped model is refused");
}

// The model's findings: loaded through OpenModel (packages included); a plain ONNX file that
// cvdeploy refuses is still diagnosed from its raw facts. A missing file stays an error.
std::vector<Finding> ModelFindings(const DoctorArgs& args, const MachineInfo& machine,
                                   const EngineInfo& engine) {
  ModelCheckContext context{machine, engine, args.device};
  ModelCheckOptions options;
  options.session.device = args.device;
  options.session.intra_op_threads = args.threads;
  options.session.max_model_bytes = args.max_model_bytes;
  // A model that is not there (or not a file) is an error of the command line's input, not a
  // finding: one line, exit 3.
  std::error_code ec;
  if (!std::filesystem::exists(args.model, ec)) throw NotFound(args.model + ": no such file");
  RefuseNonRegularFile(args.model);
  std::optional<security::OpenedModel> opened;
  try {
    opened.emplace(security::OpenModel(args.model, args.protection.protection, options.session,
                                       {.load_golden = args.golden.empty()}));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadInput) throw;
    std::vector<Finding> out;
    if (!HasSuffix(args.model, ".cvdm")) {
      try {
        out = CheckModelFacts(
            ReadModelFacts(ReadModelBytes(args.model, args.max_model_bytes), args.model), context);
      } catch (const Error&) {
        // Not ONNX at all: the load failure below says so.
      }
    }
    out.push_back(Make("model", "load", Finding::kFail, e.what(),
                       "cvdeploy cannot use this model: fix the FAIL findings above"));
    return out;
  }
  std::vector<Finding> out;
  if (opened->package) out.push_back(PackageFinding(*opened));
  if (!args.golden.empty()) {
    options.golden = ReadGoldenDir(args.golden);
    options.golden_source = "--golden " + args.golden;
  } else if (opened->golden) {
    options.golden = std::move(opened->golden);
    options.golden_source =
        opened->package ? "the package's golden set" : "golden/ beside the model";
  }
  std::vector<Finding> model = CheckModel(opened->model, context, options);
  out.insert(out.end(), model.begin(), model.end());
  if (!options.golden) {
    out.push_back(Make("golden", "check", Finding::kOk, "no golden set",
                       "record one (`cvdeploy golden record`, pack --golden-images) to catch a "
                       "changed model or preprocessing"));
  }
  return out;
}

void PrintTable(const std::vector<Finding>& findings) {
  const bool colour = isatty(fileno(stdout)) && !std::getenv("NO_COLOR");
  const char* colours[] = {"\033[32m", "\033[33m", "\033[31m"};
  for (const Finding& f : findings) {
    const std::string level = LevelName(f.level);
    std::printf("%s%-4s%s  %-10s %-13s %s\n", colour ? colours[f.level] : "", level.c_str(),
                colour ? "\033[0m" : "", f.area.c_str(), f.check.c_str(), f.detail.c_str());
    std::printf("%30s-> %s\n", "", f.advice.c_str());
  }
  int counts[3] = {0, 0, 0};
  for (const Finding& f : findings) ++counts[f.level];
  std::printf("%d OK, %d WARN, %d FAIL\n", counts[0], counts[1], counts[2]);
}

int Run(const DoctorArgs& args) {
  if (args.model.empty() && !args.golden.empty()) {
    throw InvalidArgument("doctor: --golden needs --model", "golden");
  }
  const EnvironmentFacts env = DetectEnvironment();
  std::vector<Finding> findings = CheckEnvironment(env);
  if (!args.model.empty()) {
    const std::vector<Finding> model = ModelFindings(args, env.machine, env.engine);
    findings.insert(findings.end(), model.begin(), model.end());
  }
  if (!args.json.empty()) {
    nlohmann::ordered_json j = FindingsToJson(findings);
    j["machine"] = MachineToJson(env.machine);
    j["engine"] = {{"version", env.engine.version},
                   {"header_api_version", env.engine.header_api_version},
                   {"max_opset", env.engine.max_opset},
                   {"providers", env.engine.providers}};
    if (!args.model.empty()) j["model"] = args.model;
    OutputFile out(OutputPath("--json", args.json));
    out.Write(j.dump(2) + "\n");
    out.Commit();
  }
  if (args.json != "-") PrintTable(findings);
  CheckStdout();
  bool model_fail = false, env_fail = false;
  for (const Finding& f : findings) {
    if (f.level != Finding::kFail) continue;
    (IsModelArea(f.area) ? model_fail : env_fail) = true;
  }
  if (model_fail) return ExitCodeOf(ErrorCode::kBadInput);
  if (env_fail) return ExitCodeOf(ErrorCode::kRuntime);
  return ExitCodeOf(Outcome::kOk);
}

}  // namespace

void RegisterDoctor(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "doctor",
      "Check this environment (and a model): CPU, engine, OpenCV, threads, model metadata, "
      "precision traps, golden set; exit 3 on a model FAIL, 4 on an environment FAIL");
  auto args = std::make_shared<DoctorArgs>();
  cmd->add_option("--model", args->model, "ONNX model file or model package (.cvdm) to check");
  cmd->add_option("--golden", args->golden,
                  "Golden directory to check the model against (default: the package's golden "
                  "set or golden/ beside the model)");
  cmd->add_option("--json", args->json, "Also write the findings as JSON to FILE ('-': stdout)");
  cmd->add_option("--device", args->device, "cpu, cuda[:N] or tensorrt[:N]");
  cmd->add_option("--threads", args->threads, "ONNX Runtime intra-op threads (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  args->protection.Add(*cmd);
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace cvdeploy::cli
