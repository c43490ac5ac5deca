// SPDX-License-Identifier: Apache-2.0
#include "eval/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <utility>

#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/stats.h"
#include "eval/mask_iou.h"
#include "vision/letterbox.h"
#include "vision/nms.h"
#include "vision/obb.h"
#include "vision/postprocess.h"

namespace cvdeploy::eval {

// ---- Matching -----------------------------------------------------------------------------

float ExactBoxIou(const BoxXYXY& a, const BoxXYXY& b) {
  // Identical boxes are exactly 1 (the division can round below it for large coordinates).
  if (a.x1 == b.x1 && a.y1 == b.y1 && a.x2 == b.x2 && a.y2 == b.y2) return 1.f;
  return vision::AxisAlignedIou(a, b);
}

float DetectionIou(const Detection& a, const Detection& b) {
  if (a.rotated && b.rotated) return vision::ProbIou(*a.rotated, *b.rotated);
  return ExactBoxIou(a.box, b.box);
}

DetectionMatching MatchDetections(const std::vector<Detection>& a, const std::vector<Detection>& b,
                                  float min_iou) {
  std::vector<MatchedPair> candidates;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      if (a[i].class_id != b[j].class_id) continue;
      const float iou = DetectionIou(a[i], b[j]);
      if (iou >= min_iou) candidates.push_back({static_cast<int>(i), static_cast<int>(j), iou});
    }
  }
  // Stable: candidates were generated in (a, b) index order, which breaks IoU ties.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const MatchedPair& x, const MatchedPair& y) { return x.iou > y.iou; });
  std::vector<char> a_taken(a.size(), 0), b_taken(b.size(), 0);
  DetectionMatching m;
  for (const MatchedPair& c : candidates) {
    if (a_taken[c.a] || b_taken[c.b]) continue;
    a_taken[c.a] = b_taken[c.b] = 1;
    m.pairs.push_back(c);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a_taken[i]) m.a_unmatched.push_back(static_cast<int>(i));
  }
  for (size_t j = 0; j < b.size(); ++j) {
    if (!b_taken[j]) m.b_unmatched.push_back(static_cast<int>(j));
  }
  return m;
}

double AgreementValue(long matched, long a_total, long b_total) {
  if (a_total == 0) return b_total == 0 ? 1.0 : 0.0;
  return static_cast<double>(matched) / static_cast<double>(a_total);
}

DetectionMatching AgreementAccumulator::Add(const Result& a, const Result& b,
                                            ImageAgreement* image) {
  DetectionMatching m = MatchDetections(a.detections, b.detections, min_iou_);
  auto counts = [this](int class_id) -> Counts& {
    const size_t index = static_cast<size_t>(std::max(0, class_id));
    if (classes_.size() <= index) classes_.resize(index + 1);
    return classes_[index];
  };
  auto counted = [this](const Detection& d) { return d.confidence >= min_conf_; };
  ImageAgreement here;
  for (const Detection& d : a.detections) {
    if (!counted(d)) continue;
    ++counts(d.class_id).a;
    ++here.a_total;
  }
  for (const Detection& d : b.detections) {
    if (!counted(d)) continue;
    ++counts(d.class_id).b;
    ++here.b_total;
  }
  long b_matched = 0;
  for (const MatchedPair& p : m.pairs) {
    if (counted(a.detections[p.a])) {
      ++counts(a.detections[p.a].class_id).matched;
      ++here.matched;
    }
    if (counted(b.detections[p.b])) ++b_matched;
  }
  here.b_matched = b_matched;
  total_.a += here.a_total;
  total_.b += here.b_total;
  total_.matched += here.matched;
  b_matched_ += b_matched;
  if (here.matched == here.a_total && b_matched == here.b_total) ++images_all_matched_;
  if (image) *image = here;
  for (const MatchedPair& p : m.pairs) {
    const Detection& da = a.detections[p.a];
    const Detection& db = b.detections[p.b];
    if (!counted(da)) continue;  // the pair statistics are over the counted matches
    iou_sum_ += p.iou;
    iou_min_ = std::min<double>(iou_min_, p.iou);
    const double conf_delta = std::abs(static_cast<double>(da.confidence) - db.confidence);
    conf_sum_ += conf_delta;
    conf_max_ = std::max(conf_max_, conf_delta);
    if (!da.keypoints.empty() && da.keypoints.size() == db.keypoints.size()) {
      for (size_t k = 0; k < da.keypoints.size(); ++k) {
        const double d = std::hypot(static_cast<double>(da.keypoints[k].x) - db.keypoints[k].x,
                                    static_cast<double>(da.keypoints[k].y) - db.keypoints[k].y);
        ++keypoints_;
        keypoint_sum_ += d;
        keypoint_max_ = std::max(keypoint_max_, d);
      }
    }
    if (!da.mask.empty() && !db.mask.empty()) {
      const double iou =
          MaskIou(PredictionMask(da, a.width, a.height), PredictionMask(db, b.width, b.height));
      ++masks_;
      mask_sum_ += iou;
      mask_min_ = std::min(mask_min_, iou);
    }
  }
  return m;
}

Agreement AgreementAccumulator::Summary(const std::vector<std::string>& names) const {
  Agreement s;
  s.a_total = total_.a;
  s.b_total = total_.b;
  s.matched = total_.matched;
  s.b_matched = b_matched_;
  s.agreement = AgreementValue(s.matched, s.a_total, s.b_total);
  s.b_agreement = AgreementValue(s.b_matched, s.b_total, s.a_total);
  s.images_all_matched = images_all_matched_;
  if (s.matched > 0) {
    s.iou_mean = iou_sum_ / static_cast<double>(s.matched);
    s.iou_min = iou_min_;
    s.conf_delta_mean = conf_sum_ / static_cast<double>(s.matched);
    s.conf_delta_max = conf_max_;
  }
  for (size_t id = 0; id < classes_.size(); ++id) {
    const Counts& c = classes_[id];
    if (c.a == 0 && c.b == 0) continue;
    ClassAgreement ca;
    ca.class_id = static_cast<int>(id);
    ca.name = id < names.size() ? names[id] : std::to_string(id);
    ca.a_total = c.a;
    ca.b_total = c.b;
    ca.matched = c.matched;
    ca.agreement = AgreementValue(c.matched, c.a, c.b);
    s.per_class.push_back(std::move(ca));
  }
  std::stable_sort(s.per_class.begin(), s.per_class.end(),
                   [](const ClassAgreement& x, const ClassAgreement& y) {
                     if (x.agreement != y.agreement) return x.agreement < y.agreement;
                     return x.a_total + x.b_total > y.a_total + y.b_total;
                   });
  s.keypoints_compared = keypoints_;
  if (keypoints_ > 0) {
    s.keypoint_distance_mean = keypoint_sum_ / static_cast<double>(keypoints_);
    s.keypoint_distance_max = keypoint_max_;
  }
  s.masks_compared = masks_;
  if (masks_ > 0) {
    s.mask_iou_mean = mask_sum_ / static_cast<double>(masks_);
    s.mask_iou_min = mask_min_;
  }
  return s;
}

// ---- Raw outputs --------------------------------------------------------------------------

std::string Dims(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s.append(",");
    s.append(std::to_string(shape[i]));
  }
  s.append("]");
  return s;
}

namespace {

// Summary statistics of samples in milliseconds, as the public report holds them.
TimingSummary Timing(std::vector<double> samples) {
  const bench::Summary x = bench::Summarize(std::move(samples));
  return {x.min, x.mean, x.p50, x.p90, x.p99, x.count};
}

// Shape of one batch item (the batch axis dropped).
std::vector<int64_t> ItemShape(const std::vector<int64_t>& shape) {
  return shape.size() > 1 ? std::vector<int64_t>(shape.begin() + 1, shape.end()) : shape;
}

const NamedTensorView* FindOutput(const std::vector<NamedTensorView>& outputs,
                                  const std::string& name) {
  for (const NamedTensorView& t : outputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace

OutputDiff& OutputDiffAccumulator::Entry(const std::string& name) {
  for (OutputDiff& d : outputs_) {
    if (d.name == name) return d;
  }
  OutputDiff& d = outputs_.emplace_back();
  d.name = name;
  d.compared = true;
  for (const auto& [output, parts] : parts_) {
    if (output != name) continue;
    for (const OutputPart& p : parts) d.parts.push_back({p, DiffStats{}});
  }
  return d;
}

void OutputDiffAccumulator::SetParts(const std::string& output, std::vector<OutputPart> parts) {
  parts_.emplace_back(output, std::move(parts));
}

void OutputDiffAccumulator::Skip(const std::vector<NamedTensorView>& a,
                                 const std::vector<NamedTensorView>& b, const std::string& reason) {
  for (const NamedTensorView& t : a) {
    OutputDiff& d = Entry(t.name);
    d.shape_a = t.tensor.shape();
    if (d.compared) d.skipped = reason;
    d.compared = false;
  }
  for (const NamedTensorView& t : b) {
    OutputDiff& d = Entry(t.name);
    d.shape_b = t.tensor.shape();
    if (d.compared) d.skipped = reason;
    d.compared = false;
  }
}

void OutputDiffAccumulator::Add(const std::vector<NamedTensorView>& a,
                                const std::vector<NamedTensorView>& b) {
  for (const NamedTensorView& ta : a) {
    OutputDiff& d = Entry(ta.name);
    const std::vector<int64_t>& shape_a = ta.tensor.shape();
    d.shape_a = shape_a;
    const NamedTensorView* tb = FindOutput(b, ta.name);
    if (!tb) {
      if (d.compared) d.skipped = "model B has no output named '" + ta.name + "'";
      d.compared = false;
      continue;
    }
    d.shape_b = tb->tensor.shape();
    if (ItemShape(shape_a) != ItemShape(d.shape_b)) {
      if (d.compared) {
        d.skipped = "shapes differ: ";
        d.skipped.append(Dims(shape_a)).append(" vs ").append(Dims(d.shape_b));
      }
      d.compared = false;
    }
    if (!d.compared) continue;
    const float* xa = ta.tensor.Data<float>();
    const float* xb = tb->tensor.Data<float>();
    const int64_t batch = shape_a.empty() ? 1 : std::max<int64_t>(1, shape_a[0]);
    const size_t n = ta.tensor.elements() / static_cast<size_t>(batch);
    if (n > tb->tensor.elements()) continue;  // malformed tensor; cannot happen with the engine
    for (size_t k = 0; k < n; ++k) d.total.Add(xa[k], xb[k]);
    if (d.parts.empty() || shape_a.size() != 3) continue;
    const int64_t rows = shape_a[1], cols = shape_a[2];
    for (auto& [part, stats] : d.parts) {
      const int64_t end = part.end < 0 ? rows : std::min(part.end, rows);
      for (int64_t r = part.begin; r < end; ++r) {
        for (int64_t c = 0; c < cols; ++c) stats.Add(xa[r * cols + c], xb[r * cols + c]);
      }
    }
  }
  for (const NamedTensorView& tb : b) {
    if (FindOutput(a, tb.name)) continue;
    OutputDiff& d = Entry(tb.name);
    d.shape_b = tb.tensor.shape();
    if (d.compared) d.skipped = "model A has no output named '" + tb.name + "'";
    d.compared = false;
  }
}

// ---- The whole comparison -----------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool SameGeometry(const Letterbox& a, const Letterbox& b) {
  return a.dst == b.dst && a.resized == b.resized && a.pad_left == b.pad_left &&
         a.pad_top == b.pad_top;
}

// One model's pass over one image: the predictor's own stages (Prepare, Run, Decode), so
// compare feeds each model exactly what predict would.
struct Ran {
  std::optional<Batch> batch;            // owns the buffers `outputs` views
  std::vector<NamedTensorView> outputs;  // valid while `batch` lives
  Result result;                         // at the compared thresholds
  Result map_result;                     // at map_conf (labelled only)
  double preprocess_ms = 0, inference_ms = 0, postprocess_ms = 0;
};

void Prepare(const Predictor& p, const cv::Mat& image, const CompareOptions& options, Ran& out) {
  out.outputs.clear();
  out.batch.reset();  // returns the previous image's buffers to the pool first
  out.batch.emplace(p.Prepare({image}, options.predict));
  out.preprocess_ms = out.batch->prepare_ms();
}

void Run(const Predictor& p, const CompareOptions& options, bool labelled, Ran& out) {
  out.outputs = p.Run(*out.batch);
  out.inference_ms = out.batch->run_ms();
  const auto t0 = Clock::now();
  out.result = std::move(p.Decode(out.outputs, *out.batch, options.predict)[0]);
  out.postprocess_ms = MsSince(t0);
  if (labelled) {
    PredictOptions map_options = options.predict;
    map_options.conf = options.map_conf;
    out.map_result = std::move(p.Decode(out.outputs, *out.batch, map_options)[0]);
  }
}

void CheckRange(const char* what, float value) {
  if (!(value >= 0.f && value <= 1.f)) {
    std::string msg = what;
    msg.append(" must be in [0, 1], got ").append(std::to_string(value));
    throw InvalidArgument(msg);
  }
}

void CheckSupported(const Predictor& p, const PredictOptions& o) {
  const ModelMeta& meta = p.meta();
  const std::string& name = p.info().path;
  if (meta.task == Task::kClassify) {
    throw InvalidArgument(name + ": compare supports detect, segment, pose and obb models");
  }
  if (o.imgsz == 0) return;
  if (!meta.dynamic && (o.imgsz != meta.imgsz_h || o.imgsz != meta.imgsz_w)) {
    throw InvalidArgument(name + ": imgsz " + std::to_string(o.imgsz) +
                          " differs from the model's fixed input size");
  }
  if (meta.dynamic && o.imgsz % meta.stride != 0) {
    throw InvalidArgument(name + ": imgsz " + std::to_string(o.imgsz) +
                          " is not a multiple of the stride " + std::to_string(meta.stride));
  }
}

// Boxes, class scores and the task's extra rows of a [B, 4+nc+extra, N] head, reported apart
// because their scales differ (pixels vs probabilities).
std::vector<OutputPart> HeadParts(const ModelMeta& meta) {
  const int64_t nc = static_cast<int64_t>(meta.names.size());
  std::vector<OutputPart> parts = {{"boxes", 0, 4}, {"scores", 4, 4 + nc}};
  if (meta.task == Task::kSegment) parts.push_back({"mask_coefficients", 4 + nc, -1});
  if (meta.task == Task::kPose) parts.push_back({"keypoints", 4 + nc, -1});
  if (meta.task == Task::kObb) parts.push_back({"angle", 4 + nc, -1});
  return parts;
}

void AddNotes(const Predictor& a, const Predictor& b, const CompareOptions& options,
              std::vector<std::string>& notes) {
  const ModelMeta &ma = a.meta(), &mb = b.meta();
  if (ma.task != mb.task) {
    std::string n = "tasks differ (";
    n.append(TaskName(ma.task)).append(" vs ").append(TaskName(mb.task));
    n.append("): boxes and classes compared");
    notes.push_back(n);
  }
  if (ma.names != mb.names) notes.push_back("class names differ: detections matched by class id");
  if (ma.task == Task::kObb && mb.task == Task::kObb) {
    notes.push_back("obb: pairs matched by probabilistic IoU (ProbIou) of the rotated boxes");
  }
  if (ma.task == Task::kPose && mb.task == Task::kPose) {
    notes.push_back("pose: boxes matched; keypoint distances measured on matched pairs");
  }
  if (ma.task == Task::kSegment && mb.task == Task::kSegment && options.predict.masks) {
    notes.push_back("segment: boxes matched; mask IoU measured on matched pairs");
  }
}

}  // namespace

CompareReport CompareModels(const Predictor& a, const Predictor& b,
                            const std::vector<LabelledImage>& images, bool labelled,
                            const CompareOptions& options, const std::function<void()>& step) {
  CheckRange("conf", options.predict.conf);
  CheckRange("iou", options.predict.iou);
  CheckRange("match IoU", options.match_iou);
  CheckRange("map conf", options.map_conf);
  CheckRange("conf band", options.conf_band);
  if (options.predict.max_det <= 0) throw InvalidArgument("max_det must be positive");
  CheckSupported(a, options.predict);
  CheckSupported(b, options.predict);
  if (images.empty()) throw InvalidArgument("compare: no images");

  CompareReport report;
  AddNotes(a, b, options, report.notes);
  // Detections are decoded down to the band's lower edge and counted from its upper edge.
  CompareOptions banded = options;
  banded.predict.conf = std::max(0.f, options.predict.conf - options.conf_band);
  AgreementAccumulator agreement(options.match_iou,
                                 std::min(1.f, options.predict.conf + options.conf_band));
  OutputDiffAccumulator outputs;
  const ModelMeta &ma = a.meta(), &mb = b.meta();
  if (ma.layout == OutputLayout::kChannelsFirst && mb.layout == OutputLayout::kChannelsFirst &&
      ma.task == mb.task && ma.names.size() == mb.names.size() && !a.info().outputs.empty()) {
    outputs.SetParts(a.info().outputs[0].name, HeadParts(ma));
  }
  std::optional<Evaluator> eval_a, eval_b;
  if (labelled) {
    eval_a.emplace(ma.names, ma.task);
    eval_b.emplace(mb.names, mb.task);
  }
  std::vector<double> decode, pre_a, pre_b, inf_a, inf_b, post_a, post_b, e2e_a, e2e_b;
  Ran ran_a, ran_b;
  for (size_t i = 0; i < images.size(); ++i) {
    const LabelledImage& item = images[i];
    const auto t0 = Clock::now();
    const cv::Mat image = ReadImage(item.image_path);
    decode.push_back(MsSince(t0));

    // Alternate which model goes first, so that neither always runs on a warmer cache.
    const bool a_first = i % 2 == 0;
    Prepare(a, image, banded, ran_a);
    Prepare(b, image, banded, ran_b);
    if (i == 0) {  // untimed warm-up: the first session run allocates ONNX Runtime's arenas
      a.Run(*ran_a.batch);
      b.Run(*ran_b.batch);
    }
    if (a_first) {
      Run(a, banded, labelled, ran_a);
      Run(b, banded, labelled, ran_b);
    } else {
      Run(b, banded, labelled, ran_b);
      Run(a, banded, labelled, ran_a);
    }

    // Raw outputs are comparable when both models saw the same letterboxed input (same
    // geometry: the one preprocessing makes them bit-identical) and batch layout.
    const TensorView in_a = ran_a.batch->input(), in_b = ran_b.batch->input();
    if (in_a.shape() == in_b.shape() &&
        SameGeometry(ran_a.batch->letterboxes()[0], ran_b.batch->letterboxes()[0])) {
      outputs.Add(ran_a.outputs, ran_b.outputs);
    } else {
      std::string reason = "inputs differ (";
      reason.append(Dims(in_a.shape())).append(" vs ").append(Dims(in_b.shape()));
      reason.append("): raw outputs are not comparable");
      outputs.Skip(ran_a.outputs, ran_b.outputs, reason);
    }
    ImageAgreement counted;
    agreement.Add(ran_a.result, ran_b.result, &counted);
    counted.path = item.image_path;
    report.per_image.push_back(std::move(counted));
    if (labelled) {
      eval_a->Add(ran_a.map_result, item.labels, image.cols, image.rows);
      eval_b->Add(ran_b.map_result, item.labels, image.cols, image.rows);
    }
    pre_a.push_back(ran_a.preprocess_ms);
    pre_b.push_back(ran_b.preprocess_ms);
    inf_a.push_back(ran_a.inference_ms);
    inf_b.push_back(ran_b.inference_ms);
    post_a.push_back(ran_a.postprocess_ms);
    post_b.push_back(ran_b.postprocess_ms);
    e2e_a.push_back(decode.back() + ran_a.preprocess_ms + ran_a.inference_ms +
                    ran_a.postprocess_ms);
    e2e_b.push_back(decode.back() + ran_b.preprocess_ms + ran_b.inference_ms +
                    ran_b.postprocess_ms);
    if (step) step();
  }
  report.images = static_cast<int>(images.size());
  report.outputs = outputs.Summary();
  report.detections = agreement.Summary(ma.names);
  if (labelled) {
    report.map_a = eval_a->Compute();
    report.map_b = eval_b->Compute();
  }
  report.speed_a = {Timing(decode), Timing(pre_a), Timing(inf_a), Timing(post_a), Timing(e2e_a)};
  report.speed_b = {Timing(decode), Timing(pre_b), Timing(inf_b), Timing(post_b), Timing(e2e_b)};
  return report;
}

// ---- JSON ---------------------------------------------------------------------------------

namespace {

nlohmann::ordered_json StatsToJson(const DiffStats& s) {
  return {{"max_abs_error", s.max_abs_error}, {"mean_abs_error", s.MeanAbsError()},
          {"max_abs_a", s.max_abs_a},         {"max_rel_error", s.MaxRelativeError()},
          {"elements", s.elements},           {"non_finite_a", s.non_finite_a},
          {"non_finite_b", s.non_finite_b}};
}

nlohmann::ordered_json SpeedToJson(const SpeedStats& s) {
  auto ms = [](const TimingSummary& x) {
    return nlohmann::ordered_json{{"mean", bench::RoundTo(x.mean, 3)},
                                  {"p50", bench::RoundTo(x.p50, 3)}};
  };
  return {{"decode_ms", ms(s.decode)},
          {"preprocess_ms", ms(s.preprocess)},
          {"inference_ms", ms(s.inference)},
          {"postprocess_ms", ms(s.postprocess)},
          {"end_to_end_ms", ms(s.end_to_end)}};
}

nlohmann::ordered_json MapToJson(const EvalReport& r) {
  nlohmann::ordered_json j = {{"map50", r.box.map50},
                              {"map50_95", r.box.map50_95},
                              {"precision", r.box.precision},
                              {"recall", r.box.recall}};
  if (r.mask) j["mask"] = {{"map50", r.mask->map50}, {"map50_95", r.mask->map50_95}};
  if (r.pose) j["pose"] = {{"map50", r.pose->map50}, {"map50_95", r.pose->map50_95}};
  return j;
}

}  // namespace

nlohmann::ordered_json ReportToJson(const CompareReport& report) {
  nlohmann::ordered_json j;
  j["images"] = report.images;
  nlohmann::ordered_json outputs = nlohmann::ordered_json::array();
  for (const OutputDiff& d : report.outputs) {
    nlohmann::ordered_json o = {
        {"name", d.name}, {"shape_a", d.shape_a}, {"shape_b", d.shape_b}, {"compared", d.compared}};
    if (d.compared) {
      o.update(StatsToJson(d.total));
      nlohmann::ordered_json parts = nlohmann::ordered_json::array();
      for (const auto& [part, stats] : d.parts) {
        nlohmann::ordered_json p = {{"name", part.name}, {"rows_begin", part.begin}};
        if (part.end >= 0) p["rows_end"] = part.end;
        p.update(StatsToJson(stats));
        parts.push_back(std::move(p));
      }
      if (!parts.empty()) o["parts"] = std::move(parts);
    } else {
      o["skipped"] = d.skipped;
    }
    outputs.push_back(std::move(o));
  }
  j["outputs"] = std::move(outputs);

  const Agreement& a = report.detections;
  nlohmann::ordered_json det = {{"a_total", a.a_total},
                                {"b_total", a.b_total},
                                {"matched", a.matched},
                                {"b_matched", a.b_matched},
                                {"agreement", a.agreement},
                                {"b_agreement", a.b_agreement},
                                {"a_unmatched", a.a_total - a.matched},
                                {"b_unmatched", a.b_total - a.b_matched},
                                {"images_all_matched", a.images_all_matched},
                                {"iou_mean", a.iou_mean},
                                {"iou_min", a.iou_min},
                                {"conf_delta_mean", a.conf_delta_mean},
                                {"conf_delta_max", a.conf_delta_max}};
  if (a.keypoints_compared > 0) {
    det["keypoints"] = {{"compared", a.keypoints_compared},
                        {"distance_mean_px", a.keypoint_distance_mean},
                        {"distance_max_px", a.keypoint_distance_max}};
  }
  if (a.masks_compared > 0) {
    det["masks"] = {
        {"compared", a.masks_compared}, {"iou_mean", a.mask_iou_mean}, {"iou_min", a.mask_iou_min}};
  }
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const ClassAgreement& c : a.per_class) {
    classes.push_back({{"class_id", c.class_id},
                       {"name", c.name},
                       {"a_total", c.a_total},
                       {"b_total", c.b_total},
                       {"matched", c.matched},
                       {"agreement", c.agreement}});
  }
  det["per_class"] = std::move(classes);
  // The images with the most unmatched detections (either side), for a look at what changed.
  std::vector<const ImageAgreement*> worst;
  for (const ImageAgreement& im : report.per_image) {
    if (im.matched < im.a_total || im.b_matched < im.b_total) worst.push_back(&im);
  }
  auto unmatched = [](const ImageAgreement* im) {
    return (im->a_total - im->matched) + (im->b_total - im->b_matched);
  };
  std::stable_sort(worst.begin(), worst.end(),
                   [&](const auto* x, const auto* y) { return unmatched(x) > unmatched(y); });
  if (worst.size() > 10) worst.resize(10);
  nlohmann::ordered_json images = nlohmann::ordered_json::array();
  for (const ImageAgreement* im : worst) {
    images.push_back({{"path", im->path},
                      {"a_total", im->a_total},
                      {"b_total", im->b_total},
                      {"matched", im->matched},
                      {"b_matched", im->b_matched}});
  }
  det["worst_images"] = std::move(images);
  j["detections"] = std::move(det);

  if (report.map_a && report.map_b) {
    j["map"] = {{"a", MapToJson(*report.map_a)}, {"b", MapToJson(*report.map_b)}};
  }
  const double inf_a = report.speed_a.inference.mean, inf_b = report.speed_b.inference.mean;
  const double e2e_a = report.speed_a.end_to_end.mean, e2e_b = report.speed_b.end_to_end.mean;
  j["speed"] = {{"a", SpeedToJson(report.speed_a)},
                {"b", SpeedToJson(report.speed_b)},
                {"throughput_ratio_b_over_a",
                 {{"inference", inf_b > 0 ? bench::RoundTo(inf_a / inf_b, 3) : 0.0},
                  {"end_to_end", e2e_b > 0 ? bench::RoundTo(e2e_a / e2e_b, 3) : 0.0}}}};
  j["notes"] = report.notes;
  return j;
}

}  // namespace cvdeploy::eval

namespace cvdeploy {

void DiffStats::Add(float a, float b) {
  const bool fa = std::isfinite(a), fb = std::isfinite(b);
  if (!fa || !fb) {
    non_finite_a += !fa;
    non_finite_b += !fb;
    return;
  }
  const double e = std::abs(static_cast<double>(a) - static_cast<double>(b));
  max_abs_error = std::max(max_abs_error, e);
  sum_abs_error += e;
  max_abs_a = std::max(max_abs_a, std::abs(static_cast<double>(a)));
  ++elements;
}

CompareReport Compare(const Predictor& a, const Predictor& b,
                      const std::vector<LabelledImage>& images, bool labelled,
                      const CompareOptions& options, const std::function<void()>& step) {
  return eval::CompareModels(a, b, images, labelled, options, step);
}

nlohmann::ordered_json CompareReportToJson(const CompareReport& report) {
  return eval::ReportToJson(report);
}

std::string DimsText(const std::vector<int64_t>& shape) { return eval::Dims(shape); }

}  // namespace cvdeploy
