// SPDX-License-Identifier: Apache-2.0
// cvdeploy validate --model M --data DIR|FILE.yaml|FILE.json [--split S] [--images DIR] [options]
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cli/progress.h"
#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/export.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/serialize.h"
#include "cvdeploy/system.h"

namespace cvdeploy::cli {
namespace {

struct ValidateArgs {
  ModelArgs model;
  ThresholdArgs thresholds;
  EngineArgs engine;
  std::string data;
  std::string images;
  std::string split = "val";
  std::string json;
  std::string save_json;
  bool multi_label = false;
  bool retina_masks = false;
  uint64_t max_pixels = kDefaultMaxPixels;
  DecodeScaleArg decode_scale;
};

void PrintTable(const char* title, const Metrics& m, int images, int instances) {
  std::printf("%s\n%22s %10s %10s %10s %10s %10s %10s\n", title, "Class", "Images", "Instances",
              "P", "R", "mAP50", "mAP50-95");
  std::printf("%22s %10d %10d %10.3f %10.3f %10.3f %10.3f\n", "all", images, instances, m.precision,
              m.recall, m.map50, m.map50_95);
  for (const ClassMetrics& c : m.per_class) {
    std::printf("%22.22s %10d %10d %10.3f %10.3f %10.3f %10.3f\n", c.name.c_str(), c.images,
                c.instances, c.precision, c.recall, c.map50, c.map50_95);
  }
}

int Run(const ValidateArgs& args) {
  SessionOptions session = args.model.ToSessionOptions();
  // One image at a time, but decoding and scoring share the cores between engine calls.
  session.spin = ResolveSpin(args.engine.ParsedSpin(), false);
  session.graph_optimization = args.engine.ParsedGraphOptimization();
  auto predictor = LoadPredictor(args.model.path, session, args.model.protection.protection);
  PredictOptions options = args.thresholds.ToPredictOptions(predictor->meta().names);
  options.rect = args.engine.Rect();
  // Single label by default: the same decoding as predict, so validate measures what users
  // get. --multi-label keeps every (box, class) pair above conf, as Ultralytics' val does.
  options.multi_label = args.multi_label;
  options.retina_masks = args.retina_masks;
  const ModelMeta& meta = predictor->meta();
  if (meta.task == Task::kClassify) {
    throw InvalidArgument(args.model.path +
                          ": validate supports detect, segment, pose and obb models");
  }
  const bool coco = args.data.size() > 5 && args.data.substr(args.data.size() - 5) == ".json";
  if (coco && args.images.empty()) throw InvalidArgument("--data FILE.json needs --images DIR");
  const int keypoints = meta.kpt_shape ? meta.kpt_shape->first : 0;
  const int classes = static_cast<int>(meta.names.size());
  const Dataset dataset = coco ? LoadCocoDataset(args.data, args.images, meta.names)
                          : IsDatasetYaml(args.data)
                              ? LoadDatasetYaml(args.data, args.split, keypoints, classes)
                              : LoadYoloDataset(args.data, keypoints, classes);
  for (const std::string& w : dataset.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  // Opened (a temporary beside FILE) before the slow part, so a bad path fails early.
  std::unique_ptr<OutputFile> json_out;
  if (!args.json.empty()) json_out = std::make_unique<OutputFile>(OutputPath("--json", args.json));

  // --save-json: the COCO-format predictions list, as Ultralytics' val save_json.
  std::unique_ptr<OutputFile> predictions_out;
  if (!args.save_json.empty())
    predictions_out = std::make_unique<OutputFile>(OutputPath("--save-json", args.save_json));
  const std::vector<int> category_ids = CocoCategoryIds(meta.names);
  nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
  auto collect = [&](const LabelledImage& image, const Result& r) {
    for (auto& e : CocoPredictions(image.image_path, r, category_ids)) {
      predictions.push_back(std::move(e));
    }
  };

  Progress progress("validate", static_cast<long>(dataset.images.size()));
  const Validation validation = ValidateModel(
      *predictor, dataset, options, [&progress] { progress.Step(); }, args.max_pixels,
      predictions_out ? std::function<void(const LabelledImage&, const Result&)>(collect) : nullptr,
      args.decode_scale.Target({meta.imgsz_w, meta.imgsz_h}));
  progress.Finish();
  if (predictions_out) {
    predictions_out->Write(predictions.dump() + "\n");
    predictions_out->Commit();
  }
  const EvalReport& report = validation.report;
  const StageTimes& speed = validation.mean_ms;
  const bool json_stdout = args.json == "-";
  if (!json_stdout) {
    PrintTable("Box metrics", report.box, report.images, report.instances);
    if (report.mask) PrintTable("Mask metrics", *report.mask, report.images, report.instances);
    if (report.pose) {
      PrintTable("Pose (OKS) metrics", *report.pose, report.images, report.instances);
    } else if (meta.task == Task::kPose) {
      std::printf(
          "Pose (OKS) metrics: not computed: the labels have no keypoints (OKS mAP needs "
          "keypoint labels: class cx cy w h then x y [v] per keypoint)\n");
    }
    std::printf(
        "Speed per image: decode %.1f ms, preprocess %.1f ms, inference %.1f ms, postprocess %.1f "
        "ms\n",
        speed.decode, speed.preprocess, speed.inference, speed.postprocess);
    if (predictions_out) {
      std::printf("%zu predictions saved to %s (COCO format)\n", predictions.size(),
                  args.save_json.c_str());
    }
  }
  if (!args.json.empty()) {
    nlohmann::ordered_json j = MetricsToJson(report.box);
    j["images"] = report.images;
    j["instances"] = report.instances;
    j["model"] = args.model.path;
    j["data"] = args.data;
    if (IsDatasetYaml(args.data)) j["split"] = args.split;
    j["conf"] = options.conf;
    j["iou"] = options.iou;
    j["multi_label"] = options.multi_label;
    j["rect"] = meta.dynamic && options.rect;
    j["speed_ms"] = {{"decode", speed.decode},
                     {"preprocess", speed.preprocess},
                     {"inference", speed.inference},
                     {"postprocess", speed.postprocess}};
    if (report.mask) {
      j["mask"] = MetricsToJson(*report.mask);
      j["mask"]["retina_masks"] = options.retina_masks;
    }
    if (report.pose) j["pose"] = MetricsToJson(*report.pose);
    if (!report.pose && meta.task == Task::kPose)
      j["pose_note"] = "OKS mAP not computed: the labels have no keypoints";
    json_out->Write(j.dump(2) + "\n");
    json_out->Commit();
  }
  return 0;
}

}  // namespace

void RegisterValidate(CLI::App& app, int* exit_code) {
  auto* cmd =
      app.add_subcommand("validate", "Measure mAP on a labelled dataset (YOLO txt or COCO json)");
  auto args = std::make_shared<ValidateArgs>();
  args->model.Add(*cmd);
  cmd->add_option("--data", args->data,
                  "Dataset dir with images/ and labels/, an Ultralytics dataset YAML, or COCO "
                  "instances json")
      ->required();
  cmd->add_option("--split", args->split, "Split of a dataset YAML: train, val or test")
      ->check(CLI::IsMember({"train", "val", "test"}))
      ->capture_default_str();
  cmd->add_option("--images", args->images, "Image directory for a COCO json");
  args->thresholds.Add(*cmd, 0.001f);
  args->engine.Add(*cmd);
  cmd->add_option("--json", args->json, "Write metrics JSON to FILE, or '-' for stdout");
  cmd->add_option("--save-json", args->save_json,
                  "Write the predictions as a COCO-format list to FILE (pycocotools loadRes)");
  cmd->add_flag("--multi-label", args->multi_label,
                "One candidate per (box, class) above conf, as Ultralytics' val");
  cmd->add_flag("--retina-masks", args->retina_masks,
                "Segment: masks cropped at full image resolution, as predict --retina-masks");
  AddMaxPixels(*cmd, &args->max_pixels);
  args->decode_scale.Add(*cmd);
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace cvdeploy::cli
