// SPDX-License-Identifier: Apache-2.0
// cvdeploy info MODEL [--json]
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/options.h"
#include "cvdeploy/cost.h"
#include "cvdeploy/model.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/serialize.h"
#include "cvdeploy/system.h"

namespace cvdeploy::cli {
namespace {

std::string Shape(const std::vector<int64_t>& shape, const std::vector<std::string>& names) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] >= 0 ? std::to_string(shape[i]) : (names[i].empty() ? "?" : names[i]);
  }
  return s + "]";
}

void PrintHuman(const ModelInfo& info, const std::optional<ModelCost>& cost) {
  const ModelMeta& m = info.meta;
  std::printf("model      %s\n", info.path.c_str());
  std::printf("size       %llu bytes\n", static_cast<unsigned long long>(info.file_size));
  std::printf("sha256     %s\n", info.sha256.c_str());
  std::printf("producer   %s %s, IR %lld, opset", info.producer_name.c_str(),
              info.producer_version.c_str(), static_cast<long long>(info.ir_version));
  for (const auto& [domain, version] : info.opsets) {
    std::printf(" %s:%lld", domain.empty() ? "ai.onnx" : domain.c_str(),
                static_cast<long long>(version));
  }
  std::printf("\ntask       %s\n", std::string(TaskName(m.task)).c_str());
  std::printf("imgsz      %dx%d (stride %d%s)\n", m.imgsz_w, m.imgsz_h, m.stride,
              m.dynamic ? ", dynamic spatial axes" : "");
  std::printf("batch      %s\n", m.batch > 0 ? std::to_string(m.batch).c_str() : "dynamic");
  if (m.kpt_shape) std::printf("keypoints  %d x %d\n", m.kpt_shape->first, m.kpt_shape->second);
  std::printf("classes    %zu:", m.names.size());
  for (size_t i = 0; i < m.names.size(); ++i) {
    if (i == 12) {
      std::printf(" ... (%zu more)", m.names.size() - 12);
      break;
    }
    std::printf(" %zu=%s", i, m.names[i].c_str());
  }
  std::printf("\n");
  for (const auto& t : info.inputs) {
    std::printf("input      %s %s %s\n", t.name.c_str(), t.type.c_str(),
                Shape(t.shape, t.dim_names).c_str());
  }
  for (const auto& t : info.outputs) {
    std::printf("output     %s %s %s\n", t.name.c_str(), t.type.c_str(),
                Shape(t.shape, t.dim_names).c_str());
  }
  for (const auto& [key, value] : m.raw) {
    if (key == "names") continue;
    std::printf("metadata   %s: %.100s%s\n", key.c_str(), value.c_str(),
                value.size() > 100 ? "..." : "");
  }
  for (const auto& note : m.inferred) std::printf("inferred   %s\n", note.c_str());
  if (cost) {
    std::string note;
    if (!cost->assumed_input.empty()) {
      note += ", for input " + Shape(cost->assumed_input, {});
    }
    if (!cost->complete) note += ", some nodes uncounted (dynamic shapes)";
    std::printf("cost       %.3f M parameters, %.3f GFLOPs (2 x MACs of Conv/MatMul/Gemm)%s\n",
                static_cast<double>(cost->params) / 1e6, cost->gflops(), note.c_str());
  }
  for (const auto& w : info.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

// The host's int8-relevant ISA and, for a quantized model on a CPU without VNNI/AMX, a
// one-line warning (stderr): the model runs, but int8 may not pay off here.
void PrintHost(const ModelInfo& info, const Int8Isa& isa) {
  std::printf("precision  %s\n",
              info.quantization.empty() ? "float" : ("int8 (" + info.quantization + ")").c_str());
  std::printf("host int8  %s\n", Int8IsaSummary(isa).c_str());
  const std::string warning = Int8IsaWarning(isa, !info.quantization.empty());
  if (!warning.empty()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
}

nlohmann::json PackageJson(const security::OpenedModel& opened) {
  const auto& m = opened.manifest;
  return {{"name", m.value("name", "")},
          {"version", m.value("version", nlohmann::json())},
          {"encrypted", opened.encrypted},
          {"signer", m.contains("signer") ? m["signer"] : nlohmann::json()},
          {"signature_checked", opened.signature_checked},
          {"golden", m.contains("golden") && !m["golden"].is_null()}};
}

void PrintPackage(const security::OpenedModel& opened) {
  const nlohmann::json j = PackageJson(opened);
  std::printf("package    %s version %s, %s, %s\n", j["name"].get<std::string>().c_str(),
              j["version"].dump().c_str(), opened.encrypted ? "encrypted" : "not encrypted",
              opened.signature_checked  ? ("signed by trusted " + opened.signer).c_str()
              : j["signer"].is_object() ? "signed (not checked: no --trusted-keys)"
                                        : "unsigned");
}

}  // namespace

void RegisterInfo(CLI::App& app, int* exit_code) {
  auto* cmd =
      app.add_subcommand("info", "Describe a model: task, classes, tensors, metadata, sha256");
  auto model = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto max_model_bytes = std::make_shared<uint64_t>(kDefaultMaxModelBytes);
  auto protection = std::make_shared<ProtectionArgs>();
  cmd->add_option("model", *model, "ONNX model file or model package (.cvdm)")->required();
  AddMaxModelBytes(*cmd, max_model_bytes.get());
  protection->Add(*cmd);
  cmd->add_flag("--json", *json, "Print JSON instead of text");
  cmd->callback([=] {
    ModelOptions options;
    options.max_model_bytes = *max_model_bytes;
    // Read, parsed and hashed once: the description and the cost come from the same bytes.
    const security::OpenedModel opened =
        security::OpenModel(*model, protection->protection, options);
    const Model& loaded = opened.model;
    const ModelInfo& info = loaded.info();
    const std::optional<ModelCost> cost = ComputeCost(loaded);
    const Int8Isa isa = Int8Features(DetectMachine());
    if (*json) {
      auto j = ModelInfoToJson(info);
      if (cost) j["cost"] = ModelCostToJson(*cost);
      j["host"] = {{"int8_isa", Int8IsaToJson(isa)},
                   {"int8_warning", Int8IsaWarning(isa, !info.quantization.empty())}};
      if (opened.package) j["package"] = PackageJson(opened);
      std::cout << j.dump(2) << "\n";
    } else {
      PrintHuman(info, cost);
      PrintHost(info, isa);
      if (opened.package) PrintPackage(opened);
    }
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
