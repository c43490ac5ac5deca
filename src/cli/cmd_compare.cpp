// SPDX-License-Identifier: Apache-2.0
// cvdeploy compare --model A --model B [--device D [--device D2]] (--data DIR | --source SRC)
//                  [--min-agreement F] [--match-iou F] [--conf-band F] [--json FILE|-]
//                  [thresholds]
// "Is my model less accurate after conversion?": both models (or one model on two devices)
// on the same images; raw output differences, detection agreement, mAP of each when labels
// exist, speed of each. Exit 6 when the agreement is under --min-agreement, for CI gates.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cli/progress.h"
#include "cvdeploy/compare.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"

namespace cvdeploy::cli {
namespace {

struct CompareArgs {
  std::vector<std::string> models;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  std::vector<std::string> devices;
  int threads = 0;
  int imgsz = 0;
  std::string data;
  std::string source;
  int max_images = 0;
  ThresholdArgs thresholds;
  // Defaults chosen so that a model within quantize's default accuracy gate passes (README
  // "compare"): a pair is the same object at IoU 0.5 (mAP50's criterion), and detections within
  // +-0.05 of --conf are not counted as disagreements.
  double match_iou = 0.5;
  double conf_band = 0.05;
  double min_agreement = 0.95;
  double map_conf = 0.001;
  std::string json;
};

struct Pair {
  std::string model_a, model_b, device_a, device_b;
};

// Two models: each on --device (one device: both on it; two: in order). One model: two devices.
Pair ResolvePair(const CompareArgs& args) {
  if (args.models.size() > 2) {
    throw InvalidArgument("compare: give one or two --model, got " +
                          std::to_string(args.models.size()));
  }
  if (args.devices.size() > 2) {
    throw InvalidArgument("compare: give at most two --device, got " +
                          std::to_string(args.devices.size()));
  }
  if (args.models.size() == 1 && args.devices.size() < 2) {
    throw InvalidArgument(
        "compare: nothing to compare: give two --model, or one --model with two --device (e.g. "
        "--device cpu --device cuda)");
  }
  Pair p;
  p.model_a = args.models[0];
  p.model_b = args.models.size() == 2 ? args.models[1] : args.models[0];
  p.device_a = args.devices.empty() ? "cpu" : args.devices[0];
  p.device_b = args.devices.size() == 2 ? args.devices[1] : p.device_a;
  return p;
}

std::vector<LabelledImage> ListImages(const CompareArgs& args, const Predictor& a, bool* labelled) {
  std::vector<LabelledImage> images;
  if (!args.data.empty()) {
    const ModelMeta& meta = a.meta();
    Dataset dataset = LoadYoloDataset(args.data, meta.kpt_shape ? meta.kpt_shape->first : 0);
    images = std::move(dataset.images);
    *labelled = true;
  } else {
    for (const std::string& path : ExpandSources({args.source})) {
      if (HasVideoExtension(path)) {
        throw BadInput(path + ": a video; compare takes images (a file or a directory of images)");
      }
      images.push_back({path, {}});
    }
    *labelled = false;
  }
  if (args.max_images > 0 && images.size() > static_cast<size_t>(args.max_images)) {
    images.resize(static_cast<size_t>(args.max_images));
  }
  return images;
}

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

std::string DiffRow(const std::string& name, const std::string& shape, const DiffStats& s) {
  std::string row =
      Format("  %-20.20s %-16.16s %11.3e %11.3e %11.3e %11.3e", name.c_str(), shape.c_str(),
             s.max_abs_error, s.MeanAbsError(), s.max_abs_a, s.MaxRelativeError());
  if (s.non_finite_a || s.non_finite_b) {
    row.append(Format("  non-finite: A %lld, B %lld", static_cast<long long>(s.non_finite_a),
                      static_cast<long long>(s.non_finite_b)));
  }
  return row.append("\n");
}

// `value` rounded to `decimals` places, so a float threshold prints as typed (0.7, not
// 0.699999988).
double RoundTo(double value, int decimals) {
  if (!std::isfinite(value)) return value;
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

std::string Percent(double v) { return Format("%.1f%%", 100.0 * v); }

std::string HumanReport(const CompareArgs& args, const Predictor& a, const Predictor& b,
                        const Pair& pair, const CompareReport& r) {
  std::string out;
  out.append(Format("A  %s  (%s: %s, %d threads)\n", pair.model_a.c_str(), pair.device_a.c_str(),
                    a.provider().c_str(), a.threads()));
  out.append(Format("B  %s  (%s: %s, %d threads)\n", pair.model_b.c_str(), pair.device_b.c_str(),
                    b.provider().c_str(), b.threads()));
  out.append(
      Format("%d images from %s; detections at conf %.3g +- %.3g (those inside the band are "
             "matched, not counted), NMS IoU %.3g; a pair is the same class with IoU >= %.3g\n",
             r.images, (args.data.empty() ? args.source : args.data).c_str(), args.thresholds.conf,
             args.conf_band, args.thresholds.iou, args.match_iou));

  out.append("\nRaw outputs (the same letterboxed input to both)\n");
  out.append(Format("  %-20s %-16s %11s %11s %11s %11s\n", "output", "shape", "max|A-B|",
                    "mean|A-B|", "max|A|", "max rel"));
  for (const OutputDiff& d : r.outputs) {
    if (!d.compared) {
      out.append(Format("  %-20.20s skipped: %s\n", d.name.c_str(), d.skipped.c_str()));
      continue;
    }
    out.append(DiffRow(d.name, DimsText(d.shape_a), d.total));
    for (const auto& [part, stats] : d.parts) out.append(DiffRow("  " + part.name, "", stats));
  }

  const Agreement& g = r.detections;
  out.append("\nDetections\n");
  out.append(
      Format("  A %ld, B %ld (conf >= %.3g), matched %ld: agreement %s (of B's: %s); every "
             "detection matched on %ld of %d images\n",
             g.a_total, g.b_total, std::min(1.0, args.thresholds.conf + args.conf_band), g.matched,
             Percent(g.agreement).c_str(), Percent(g.b_agreement).c_str(), g.images_all_matched,
             r.images));
  if (g.matched > 0) {
    out.append(
        Format("  matched pairs: IoU mean %.4f, min %.4f; |conf A - conf B| mean %.4f, "
               "max %.4f\n",
               g.iou_mean, g.iou_min, g.conf_delta_mean, g.conf_delta_max));
  }
  if (g.keypoints_compared > 0) {
    out.append(
        Format("  keypoints of matched pairs: distance mean %.2f px, max %.2f px (%ld "
               "points)\n",
               g.keypoint_distance_mean, g.keypoint_distance_max, g.keypoints_compared));
  }
  if (g.masks_compared > 0) {
    out.append(Format("  masks of matched pairs: IoU mean %.4f, min %.4f (%ld pairs)\n",
                      g.mask_iou_mean, g.mask_iou_min, g.masks_compared));
  }
  std::string worst;
  int shown = 0;
  for (const ClassAgreement& c : g.per_class) {
    if (c.agreement >= 1.0 && c.matched == c.b_total) continue;
    if (shown++ == 5) break;
    if (!worst.empty()) worst.append(", ");
    worst.append(Format("%s %ld/%ld (B %ld)", c.name.c_str(), c.matched, c.a_total, c.b_total));
  }
  if (!worst.empty()) out.append("  worst classes (matched/A): ").append(worst).append("\n");

  if (r.map_a && r.map_b) {
    out.append(Format("\nmAP (labels, conf %.3g)      %10s %10s\n", args.map_conf, "A", "B"));
    out.append(Format("  %-26s %10.4f %10.4f\n", "mAP50", r.map_a->box.map50, r.map_b->box.map50));
    out.append(Format("  %-26s %10.4f %10.4f\n", "mAP50-95", r.map_a->box.map50_95,
                      r.map_b->box.map50_95));
    if (r.map_a->mask && r.map_b->mask) {
      out.append(Format("  %-26s %10.4f %10.4f\n", "mask mAP50-95", r.map_a->mask->map50_95,
                        r.map_b->mask->map50_95));
    }
    if (r.map_a->pose && r.map_b->pose) {
      out.append(Format("  %-26s %10.4f %10.4f\n", "pose mAP50-95", r.map_a->pose->map50_95,
                        r.map_b->pose->map50_95));
    }
  }

  out.append("\nSpeed (ms per image, mean / p50; A and B alternated on every image)\n");
  out.append(Format("  %-12s %19s %19s %16s\n", "", "A", "B", "B/A throughput"));
  auto speed_row = [&](const char* label, const TimingSummary& sa, const TimingSummary& sb) {
    out.append(Format("  %-12s %9.2f / %7.2f %9.2f / %7.2f %15.2fx\n", label, sa.mean, sa.p50,
                      sb.mean, sb.p50, sb.mean > 0 ? sa.mean / sb.mean : 0.0));
  };
  speed_row("inference", r.speed_a.inference, r.speed_b.inference);
  speed_row("end-to-end", r.speed_a.end_to_end, r.speed_b.end_to_end);
  for (const std::string& note : r.notes) out.append("note: ").append(note).append("\n");
  return out;
}

nlohmann::ordered_json ModelJson(const std::string& label, const std::string& path,
                                 const std::string& device, const Predictor& p) {
  nlohmann::ordered_json j = {{"label", label},         {"path", path},
                              {"device", device},       {"provider", p.provider()},
                              {"threads", p.threads()}, {"task", TaskName(p.meta().task)}};
  if (!p.info().inputs.empty()) j["input_shape"] = p.info().inputs[0].shape;
  return j;
}

int Run(const CompareArgs& args) {
  const Pair pair = ResolvePair(args);
  if (args.data.empty() == args.source.empty()) {
    throw InvalidArgument("compare: give the images with --data DIR (labelled) or --source SRC");
  }
  // Checked, atomic output (a temporary renamed into place at the end); "-" is stdout.
  std::unique_ptr<OutputFile> json_out;
  if (!args.json.empty()) json_out = std::make_unique<OutputFile>(OutputPath("--json", args.json));
  SessionOptions session_a;
  session_a.device = pair.device_a;
  session_a.intra_op_threads = args.threads;
  session_a.max_model_bytes = args.max_model_bytes;
  if (args.imgsz > 0) session_a.imgsz = args.imgsz;
  SessionOptions session_b = session_a;
  session_b.device = pair.device_b;
  // Load-time warnings (e.g. the slow dynamic-quantization format) once per model file.
  const auto a = LoadPredictor(pair.model_a, session_a);
  const auto b = pair.model_b == pair.model_a ? Predictor::Load(pair.model_b, session_b)
                                              : LoadPredictor(pair.model_b, session_b);
  bool labelled = false;
  const std::vector<LabelledImage> images = ListImages(args, *a, &labelled);

  CompareOptions options;
  // Detections are matched by class id: --classes names resolve against model A's names.
  options.predict = args.thresholds.ToPredictOptions(a->meta().names);
  options.match_iou = static_cast<float>(args.match_iou);
  options.conf_band = static_cast<float>(args.conf_band);
  options.map_conf = static_cast<float>(args.map_conf);
  Progress progress("compare", static_cast<long>(images.size()));
  const CompareReport report =
      Compare(*a, *b, images, labelled, options, [&progress] { progress.Step(); });
  progress.Finish();

  const double agreement = report.detections.agreement;
  const bool passed = agreement >= args.min_agreement;
  const bool json_stdout = args.json == "-";
  if (!json_stdout) {
    std::string text = HumanReport(args, *a, *b, pair, report);
    text.append(Format("%s  agreement %s %s --min-agreement %s (IoU >= %.3g, conf %.3g +- %.3g)",
                       passed ? "PASS" : "FAIL", Percent(agreement).c_str(), passed ? ">=" : "<",
                       Percent(args.min_agreement).c_str(), args.match_iou, args.thresholds.conf,
                       args.conf_band));
    if (report.map_a && report.map_b) {
      text.append(Format("; mAP50-95 %.4f -> %.4f (%+.4f)", report.map_a->box.map50_95,
                         report.map_b->box.map50_95,
                         report.map_b->box.map50_95 - report.map_a->box.map50_95));
    }
    text.append("\n");
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
  if (!args.json.empty()) {
    nlohmann::ordered_json j;
    j["models"] = {ModelJson("a", pair.model_a, pair.device_a, *a),
                   ModelJson("b", pair.model_b, pair.device_b, *b)};
    j["data"] = args.data.empty() ? args.source : args.data;
    // Floats as the user typed them (0.7, not 0.699999988).
    j["thresholds"] = {{"conf", RoundTo(options.predict.conf, 6)},
                       {"iou", RoundTo(options.predict.iou, 6)},
                       {"max_det", options.predict.max_det},
                       {"match_iou", args.match_iou},
                       {"conf_band", args.conf_band},
                       {"map_conf", args.map_conf}};
    j.update(CompareReportToJson(report));
    j["min_agreement"] = args.min_agreement;
    if (report.map_a && report.map_b) {
      j["map50_95_delta"] = report.map_b->box.map50_95 - report.map_a->box.map50_95;
    }
    j["passed"] = passed;
    std::cout.flush();
    json_out->Write(j.dump(2) + "\n");
    json_out->Commit();
  }
  if (passed) return 0;
  std::fprintf(stderr,
               "cvdeploy: compare: agreement %s (%ld of %ld detections of A matched in B) is "
               "below --min-agreement %s\n",
               Percent(agreement).c_str(), report.detections.matched, report.detections.a_total,
               Percent(args.min_agreement).c_str());
  return ExitCodeOf(Outcome::kDisagreement);
}

}  // namespace

void RegisterCompare(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare two models (or one model on two devices) on the same images: raw output "
      "differences, detection agreement, mAP, speed; exit 6 under --min-agreement");
  auto args = std::make_shared<CompareArgs>();
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  cmd->add_option("--model", args->models, "Model A, then model B (one model: give two --device)")
      ->required();
  cmd->add_option("--device", args->devices,
                  "cpu, cuda[:N] or tensorrt[:N]; one for both models, or one per model");
  cmd->add_option("--threads", args->threads, "ONNX Runtime intra-op threads (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--imgsz", args->imgsz, "Input size (models with dynamic spatial axes)")
      ->check(CLI::PositiveNumber);
  auto* data = cmd->add_option("--data", args->data,
                               "YOLO dataset dir with images/ and labels/ (adds mAP of each)");
  auto* source =
      cmd->add_option("--source", args->source, "An image file or a directory of images");
  data->excludes(source);
  cmd->add_option("--max-images", args->max_images, "Use only the first N images (sorted)")
      ->check(CLI::PositiveNumber);
  args->thresholds.Add(*cmd, 0.25f);
  cmd->add_option("--match-iou", args->match_iou,
                  "Minimum IoU of a matched pair of detections (same class)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--conf-band", args->conf_band,
                  "Detections within +- this of --conf are matched but not counted: a detection "
                  "at 0.26 in A and 0.24 in B is no disagreement (0: the plain threshold)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--min-agreement", args->min_agreement,
                  "Exit 6 when the share of A's detections matched in B is below this")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--map-conf", args->map_conf,
                  "Confidence threshold of the detections scored for mAP (--data), as validate")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--json", args->json, "Write the report as JSON to FILE, or '-' for stdout");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace cvdeploy::cli
