// SPDX-License-Identifier: Apache-2.0
// cvdeploy pack --model M.onnx --out M.cvdm [--encrypt-key K] [--sign-key S] [--name N]
// [--version V] [--golden DIR | --golden-images IMGS]: a model package
// (security/model_package.h; format in docs/security.md "Model package format"). The manifest
// records the model's sha256, size, Ultralytics metadata, preprocessing contract and the
// cvdeploy optimization record; the payload is the model (and golden inputs), encrypted with a
// key derived from the data key K when given, the whole signed with S when given.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/golden.h"
#include "cvdeploy/json.h"
#include "cvdeploy/model.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/secure_memory.h"
#include "cvdeploy/security/model_package.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;
using security::PackageInput;

struct PackArgs {
  std::string model, out, encrypt_key, sign_key, name, golden_dir, golden_images;
  int version = 1;
};

std::string LayoutName(OutputLayout layout) {
  switch (layout) {
    case OutputLayout::kChannelsFirst:
      return "channels_first";
    case OutputLayout::kYoloV5:
      return "yolov5";
    case OutputLayout::kEndToEnd:
      return "end2end";
    case OutputLayout::kClassify:
      return "classify";
  }
  return "unknown";
}

// The preprocessing contract a server must honour for this model (GUIDE §4: letterbox with
// pad 114, RGB, 1/255, no auto-shape).
nlohmann::json Contract(const ModelMeta& meta) {
  return {{"task", std::string(TaskName(meta.task))},
          {"imgsz", {meta.imgsz_h, meta.imgsz_w}},
          {"stride", meta.stride},
          {"names", meta.names.size()},
          {"layout", LayoutName(meta.layout)},
          {"batch", meta.batch},
          {"dynamic", meta.dynamic},
          {"letterbox", {{"pad", 114}, {"rgb", true}, {"scale", "1/255"}, {"auto", false}}}};
}

nlohmann::json ModelManifest(const Model& model) {
  const ModelInfo& info = model.info();
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& [key, value] : info.meta.raw) metadata[key] = value;
  return {{"sha256", info.sha256},
          {"size", info.file_size},
          {"file", fs::path(info.path).filename().string()},
          {"metadata", metadata},
          {"contract", Contract(info.meta)}};
}

// The "cvdeploy_optimizations" metadata entry (written by quantize/fp16/prune) as JSON.
nlohmann::json Optimizations(const Model& model) {
  const auto& raw = model.meta().raw;
  const auto it = raw.find("cvdeploy_optimizations");
  if (it == raw.end()) return nullptr;
  return ParseJsonBounded(it->second, model.info().path + ": metadata cvdeploy_optimizations");
}

security::Ed25519Key ReadSigningKey(const std::string& path) {
  std::string pem;
  try {
    pem = security::ReadSecretFile(path);
  } catch (const Error& e) {
    throw InvalidArgument(std::string("signing key ") + e.what());
  }
  std::optional<security::Ed25519Key> key;
  try {
    key = security::Ed25519Key::FromPem(pem);
  } catch (const Error&) {
  }
  WipeBytes(pem);
  if (!key || !key->has_private()) {
    throw InvalidArgument(path +
                          ": not an Ed25519 private key (PEM, as written by "
                          "'cvdeploy keygen --kind signing')");
  }
  return *key;
}

// ---- Golden set: wired in by the integrator (cvdeploy/golden.h) ------------------------
// The golden set of `model` for --golden DIR (an existing golden directory, checked against
// the model now so that a package never carries a set its own model fails) or
// --golden-images IMGS (recorded now): manifest "golden" and one "golden/NAME" part per input.
void AddGolden(PackageInput& input, const PackArgs& args, const Model& model) {
  SessionOptions session;
  auto predictor = Predictor::Create(model, session);
  GoldenDir golden;
  if (!args.golden_dir.empty()) {
    golden = ReadGoldenDir(args.golden_dir);
    const GoldenReport report = CheckGolden(*predictor, golden.set, golden.inputs);
    if (!report.passed) {
      throw BadInput("pack: --golden " + args.golden_dir +
                     ": the model does not pass it: " + report.Summary());
    }
  } else {
    golden.inputs = ReadGoldenInputs(args.golden_images);
    golden.set = RecordGolden(*predictor, golden.inputs);
  }
  input.manifest["golden"] = ParseJsonBounded(GoldenSetToJson(golden.set), "golden set");
  for (auto& in : golden.inputs) {
    input.parts.emplace_back("golden/" + in.name, std::move(in.bytes));
  }
}
// -------------------------------------------------------------------------------------------

void RunPack(const PackArgs& a) {
  CheckOutputPath("pack", a.model, "--out", a.out);
  if (!security::IsPackagePath(a.out)) {
    throw InvalidArgument("pack: --out " + a.out + ": a package file name ends in .cvdm");
  }
  if (a.version < 1) throw InvalidArgument("pack: --version must be 1 or more");
  // Keys first: a wrong key path fails before the model is read.
  std::optional<security::DataKey> data_key;
  if (!a.encrypt_key.empty()) data_key = security::DataKey::FromFile(a.encrypt_key);
  std::optional<security::Ed25519Key> sign_key;
  if (!a.sign_key.empty()) sign_key = ReadSigningKey(a.sign_key);

  const Model model = Model::FromFile(a.model);
  PackageInput input;
  const std::string name = a.name.empty() ? fs::path(a.model).stem().string() : a.name;
  input.manifest = {{"name", name},
                    {"version", a.version},
                    {"model", ModelManifest(model)},
                    {"optimizations", Optimizations(model)},
                    {"golden", nullptr}};
  input.parts.emplace_back("model.onnx", model.bytes());
  if (!a.golden_dir.empty() || !a.golden_images.empty()) AddGolden(input, a, model);
  const std::string bytes = security::WritePackage(input, data_key ? &*data_key : nullptr,
                                                   sign_key ? &*sign_key : nullptr);
  WriteFileAtomically(a.out, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  std::printf("packed %s version %d (%zu parts, model sha256 %s) into %s (%zu bytes)\n",
              name.c_str(), a.version, input.parts.size(), model.info().sha256.c_str(),
              a.out.c_str(), bytes.size());
  std::printf("encryption: %s\nsigner: %s\n",
              data_key ? ("AES-256-GCM, data key id " + data_key->KeyId()).c_str() : "none",
              sign_key ? security::SignerFingerprint(*sign_key).c_str() : "none (unsigned)");
}

}  // namespace

void RegisterPack(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "pack", "Pack a model into a .cvdm package: manifest + model, optionally encrypted/signed");
  auto args = std::make_shared<PackArgs>();
  cmd->add_option("--model", args->model, "ONNX model file")->required();
  cmd->add_option("--out", args->out, "Package file to write (NAME.cvdm)")->required();
  cmd->add_option("--encrypt-key", args->encrypt_key,
                  "Data key file (keygen --kind data): encrypt the payload (AES-256-GCM)");
  cmd->add_option("--sign-key", args->sign_key,
                  "Signing key file (keygen --kind signing): sign the package (Ed25519)");
  cmd->add_option("--name", args->name, "Model name in the manifest (default: the file stem)");
  cmd->add_option("--version", args->version, "Model version in the manifest")
      ->capture_default_str();
  auto* golden = cmd->add_option("--golden", args->golden_dir,
                                 "Golden directory (golden record) to carry in the package");
  auto* images = cmd->add_option("--golden-images", args->golden_images,
                                 "Images to record as the package's golden set");
  golden->excludes(images);
  images->excludes(golden);
  cmd->callback([args, exit_code] {
    RunPack(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
