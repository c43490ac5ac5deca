// SPDX-License-Identifier: Apache-2.0
// Decoding of every supported head layout. The main head is only ever read through a
// strided view: candidates are found by a threshold scan of the class scores, and boxes and
// extras (mask coefficients, keypoints, angle) are gathered for survivors only.
#include "vision/postprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "cvdeploy/error.h"
#include "vision/mask.h"
#include "vision/nms.h"
#include "vision/obb.h"

namespace cvdeploy::vision {
namespace {

// Ultralytics' cap on boxes entering NMS (max_nms).
constexpr size_t kMaxNms = 30000;

// Strided read-only view of one image's main head: At(anchor, channel).
struct Head {
  const float* base = nullptr;
  int64_t anchors = 0, channels = 0;
  int64_t anchor_stride = 0, channel_stride = 0;
  float At(int64_t i, int64_t c) const { return base[i * anchor_stride + c * channel_stride]; }
};

struct Candidate {
  int anchor;
  int class_id;
  float score;
};

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Views batch item `b` of a rank-3 output; channels_first: [B, C, N], else [B, N, C].
Head MakeHead(const TensorView& t, int b, bool channels_first) {
  if (t.empty() || t.dtype() != DataType::kFloat32 || t.shape().size() != 3 || b < 0 ||
      b >= t.shape()[0]) {
    throw BadInput("unexpected detection output shape " + ShapeString(t.shape()) +
                   " for batch item " + std::to_string(b));
  }
  Head h;
  h.channels = channels_first ? t.shape()[1] : t.shape()[2];
  h.anchors = channels_first ? t.shape()[2] : t.shape()[1];
  h.base = t.Data<float>() + b * h.channels * h.anchors;
  h.anchor_stride = channels_first ? 1 : h.channels;
  h.channel_stride = channels_first ? h.anchors : 1;
  return h;
}

// Channels that follow the box and class channels for the task.
int64_t ExtraChannels(const ModelMeta& meta) {
  switch (meta.task) {
    case Task::kSegment:
      return meta.mask_channels > 0 ? meta.mask_channels : 32;
    case Task::kPose:
      return meta.kpt_shape ? int64_t{meta.kpt_shape->first} * meta.kpt_shape->second : 0;
    case Task::kObb:
      return 1;
    default:
      return 0;
  }
}

bool ClassAllowed(const std::vector<int>& classes, int c) {
  return classes.empty() || std::find(classes.begin(), classes.end(), c) != classes.end();
}

// Per-thread scratch reused between calls, so steady-state decoding does not allocate
// O(anchors) memory each time.
std::vector<float>& BestScoreScratch() {
  thread_local std::vector<float> best;
  return best;
}

// YOLOv8/11: class scores start at channel 4. A class-major max pass (contiguous, SIMD
// friendly) finds the anchors whose best score passes; only those are scanned per class.
void CollectChannelsFirst(const Head& h, int nc, const PredictOptions& o,
                          std::vector<Candidate>& out) {
  std::vector<float>& best = BestScoreScratch();
  best.assign(h.anchors, -std::numeric_limits<float>::infinity());
  for (int c = 0; c < nc; ++c) {
    const float* row = h.base + (4 + c) * h.anchors;
    for (int64_t i = 0; i < h.anchors; ++i) best[i] = std::max(best[i], row[i]);
  }
  for (int64_t i = 0; i < h.anchors; ++i) {
    if (!(best[i] > o.conf)) continue;
    if (o.multi_label) {
      for (int c = 0; c < nc; ++c) {
        const float s = h.At(i, 4 + c);
        if (s > o.conf && ClassAllowed(o.classes, c)) out.push_back({static_cast<int>(i), c, s});
      }
      continue;
    }
    int arg = 0;  // first class reaching the maximum, as torch.max
    while (arg < nc - 1 && h.At(i, 4 + arg) != best[i]) ++arg;
    if (ClassAllowed(o.classes, arg)) out.push_back({static_cast<int>(i), arg, best[i]});
  }
}

// YOLOv5: objectness at channel 4, class scores from 5; score = obj * cls.
void CollectYoloV5(const Head& h, int nc, const PredictOptions& o, std::vector<Candidate>& out) {
  for (int64_t i = 0; i < h.anchors; ++i) {
    const float obj = h.At(i, 4);
    if (!(obj > o.conf)) continue;
    int arg = -1;
    float best = -std::numeric_limits<float>::infinity();
    for (int c = 0; c < nc; ++c) {
      const float s = obj * h.At(i, 5 + c);
      if (o.multi_label) {
        if (s > o.conf && ClassAllowed(o.classes, c)) out.push_back({static_cast<int>(i), c, s});
      } else if (s > best) {
        best = s;
        arg = c;
      }
    }
    if (!o.multi_label && arg >= 0 && best > o.conf && ClassAllowed(o.classes, arg)) {
      out.push_back({static_cast<int>(i), arg, best});
    }
  }
}

// End-to-end: rows are already final detections (score at 4, class id at 5).
void CollectEndToEnd(const Head& h, int nc, const PredictOptions& o, std::vector<Candidate>& out) {
  for (int64_t i = 0; i < h.anchors; ++i) {
    const float s = h.At(i, 4);
    if (!(s > o.conf)) continue;
    const float cls = h.At(i, 5);
    if (!(cls >= 0.f && cls < static_cast<float>(nc))) continue;  // also rejects NaN
    const int c = static_cast<int>(std::lround(cls));
    if (c < nc && ClassAllowed(o.classes, c)) out.push_back({static_cast<int>(i), c, s});
  }
}

float Clamp(float v, float hi) { return std::clamp(v, 0.f, hi); }

BoxXYXY ToImage(const BoxXYXY& b, const LetterboxInfo& lb) {
  const float w = static_cast<float>(lb.src.width), h = static_cast<float>(lb.src.height);
  return {Clamp(lb.ToSrcX(b.x1), w), Clamp(lb.ToSrcY(b.y1), h), Clamp(lb.ToSrcX(b.x2), w),
          Clamp(lb.ToSrcY(b.y2), h)};
}

BoxXYXY ClipToImage(const BoxXYXY& b, const LetterboxInfo& lb) {
  const float w = static_cast<float>(lb.src.width), h = static_cast<float>(lb.src.height);
  return {Clamp(b.x1, w), Clamp(b.y1, h), Clamp(b.x2, w), Clamp(b.y2, h)};
}

// Everything decoding one image needs; built once per call.
struct Decoder {
  const Head& head;
  const ModelMeta& meta;
  const LetterboxInfo& lb;
  const PredictOptions& options;
  bool xyxy = false;          // end-to-end boxes are corners, others centre + size
  int64_t extra_offset = 0;   // first channel after boxes and scores
  Prototypes protos = {};     // segment only
  std::vector<float> coeffs;  // scratch for one detection's mask coefficients

  BoxXYXY InputBox(int i) const {
    const float a = head.At(i, 0), b = head.At(i, 1), c = head.At(i, 2), d = head.At(i, 3);
    if (xyxy) return {a, b, c, d};
    return {a - c / 2, b - d / 2, a + c / 2, b + d / 2};
  }
  RotatedBox InputRotated(int i) const {
    return {head.At(i, 0), head.At(i, 1), head.At(i, 2), head.At(i, 3),
            head.At(i, head.channels - 1)};
  }

  Detection Make(const Candidate& cand) {
    Detection d;
    d.class_id = cand.class_id;
    d.class_name = meta.names[cand.class_id];
    d.confidence = cand.score;
    if (meta.task == Task::kObb) {
      RotatedBox r = RegularizeRotatedBox(InputRotated(cand.anchor));
      r.cx = Clamp(lb.ToSrcX(r.cx), static_cast<float>(lb.src.width));
      r.cy = Clamp(lb.ToSrcY(r.cy), static_cast<float>(lb.src.height));
      r.w /= lb.scale;
      r.h /= lb.scale;
      d.rotated = r;
      d.box = ClipToImage(RotatedBounds(r), lb);
      return d;
    }
    d.box = ToImage(InputBox(cand.anchor), lb);
    if (meta.task == Task::kPose && meta.kpt_shape) AddKeypoints(cand.anchor, d);
    if (meta.task == Task::kSegment && options.masks) AddMask(cand.anchor, d);
    return d;
  }

  void AddKeypoints(int i, Detection& d) const {
    const auto [k, dims] = *meta.kpt_shape;
    const float w = static_cast<float>(lb.src.width), h = static_cast<float>(lb.src.height);
    d.keypoints.resize(k);
    for (int j = 0; j < k; ++j) {
      const int64_t c = extra_offset + int64_t{j} * dims;
      Keypoint& kp = d.keypoints[j];
      kp.x = Clamp(lb.ToSrcX(head.At(i, c)), w);
      kp.y = Clamp(lb.ToSrcY(head.At(i, c + 1)), h);
      kp.visibility = dims >= 3 ? head.At(i, c + 2) : 1.f;
    }
  }

  void AddMask(int i, Detection& d) {
    for (int c = 0; c < protos.channels; ++c) coeffs[c] = head.At(i, extra_offset + c);
    if (options.retina_masks) {
      ComputeMaskRetina(protos, coeffs, d.box, lb, d.mask, d.mask_roi);
    } else {
      ComputeMask(protos, coeffs, InputBox(i), lb, d.mask, d.mask_roi);
    }
    MaskOutline outline = OutlineMask(d.mask, d.mask_roi.tl(), options.all_contours);
    d.polygon = std::move(outline.polygon);
    d.polygons = std::move(outline.parts);
  }
};

Prototypes ProtoView(const std::vector<TensorView>& outputs, int b, int64_t channels) {
  if (outputs.size() < 2 || outputs[1].empty() || outputs[1].dtype() != DataType::kFloat32 ||
      outputs[1].shape().size() != 4 || b >= outputs[1].shape()[0] ||
      outputs[1].shape()[1] != channels) {
    throw BadInput("segment model: expected prototypes [B, " + std::to_string(channels) +
                   ", H, W] as second output");
  }
  const auto& s = outputs[1].shape();
  return {outputs[1].Data<float>() + b * s[1] * s[2] * s[3], static_cast<int>(s[1]),
          static_cast<int>(s[2]), static_cast<int>(s[3])};
}

std::vector<Detection> Classify(const TensorView& t, int b, const ModelMeta& meta,
                                const LetterboxInfo& lb) {
  if (t.empty() || t.dtype() != DataType::kFloat32 || t.shape().empty() || b < 0 ||
      b >= t.shape()[0]) {
    throw BadInput("unexpected classification output shape " + ShapeString(t.shape()));
  }
  int64_t nc = 1;
  for (size_t i = 1; i < t.shape().size(); ++i) nc *= t.shape()[i];
  if (nc <= 0) return {};
  const float* x = t.Data<float>() + b * nc;
  // Exported classifiers usually end in softmax; raw logits are normalized here.
  std::vector<float> p(x, x + nc);
  double sum = 0;
  bool in_range = true;
  for (float v : p) {
    in_range = in_range && v >= 0.f && v <= 1.f;
    sum += v;
  }
  if (!in_range || std::abs(sum - 1.0) > 1e-3) {
    const float mx = *std::max_element(p.begin(), p.end());
    double z = 0;
    for (float& v : p) z += (v = std::exp(v - mx));
    for (float& v : p) v = static_cast<float>(v / z);
  }
  std::vector<int> order = OrderByScore(p);
  order.resize(std::min<size_t>(order.size(), 5));
  auto name = [&](int c) {
    return c < static_cast<int>(meta.names.size()) ? meta.names[c] : std::to_string(c);
  };
  Detection d;
  d.class_id = order[0];
  d.class_name = name(order[0]);
  d.confidence = p[order[0]];
  d.box = {0.f, 0.f, static_cast<float>(lb.src.width), static_cast<float>(lb.src.height)};
  for (int c : order) d.top5.push_back({c, name(c), p[c]});
  return {std::move(d)};
}

}  // namespace

std::vector<Detection> Postprocess(const std::vector<TensorView>& outputs, int b,
                                   const ModelMeta& meta, const LetterboxInfo& lb,
                                   const PredictOptions& options) {
  if (outputs.empty()) throw BadInput("model produced no outputs");
  if (meta.layout == OutputLayout::kClassify || meta.task == Task::kClassify) {
    return Classify(outputs[0], b, meta, lb);
  }
  const int nc = static_cast<int>(meta.names.size());
  const bool channels_first = meta.layout == OutputLayout::kChannelsFirst;
  const Head head = MakeHead(outputs[0], b, channels_first);
  const int64_t extra = ExtraChannels(meta);
  int64_t extra_offset = 0;
  switch (meta.layout) {
    case OutputLayout::kChannelsFirst:
      extra_offset = 4 + nc;
      break;
    case OutputLayout::kYoloV5:
      extra_offset = 5 + nc;
      break;
    default:
      extra_offset = 6;
      break;
  }
  if (head.channels < extra_offset + extra) {
    throw BadInput("output shape " + ShapeString(outputs[0].shape()) +
                   " has too few channels for " + std::to_string(nc) + " classes and " +
                   std::to_string(extra) + " extra");
  }

  std::vector<Candidate> cands;
  switch (meta.layout) {
    case OutputLayout::kChannelsFirst:
      CollectChannelsFirst(head, nc, options, cands);
      break;
    case OutputLayout::kYoloV5:
      CollectYoloV5(head, nc, options, cands);
      break;
    default:
      CollectEndToEnd(head, nc, options, cands);
      break;
  }
  // Score descending, ties in scan order (anchor, then class): the same order as a stable
  // sort, but it lets nth_element drop everything past max_nms before the full sort.
  const auto better = [](const Candidate& x, const Candidate& y) {
    if (x.score != y.score) return x.score > y.score;
    return x.anchor != y.anchor ? x.anchor < y.anchor : x.class_id < y.class_id;
  };
  if (meta.layout != OutputLayout::kEndToEnd && cands.size() > kMaxNms) {
    std::nth_element(cands.begin(), cands.begin() + kMaxNms, cands.end(), better);
    cands.resize(kMaxNms);
  }
  std::sort(cands.begin(), cands.end(), better);

  const bool is_obb = meta.task == Task::kObb;
  Decoder dec{.head = head,
              .meta = meta,
              .lb = lb,
              .options = options,
              .xyxy = meta.layout == OutputLayout::kEndToEnd && !is_obb,
              .extra_offset = extra_offset,
              .protos = {},
              .coeffs = {}};
  if (meta.task == Task::kSegment && options.masks) {
    dec.protos = ProtoView(outputs, b, extra);
    dec.coeffs.resize(extra);
  }

  std::vector<int> keep;
  if (meta.layout == OutputLayout::kEndToEnd) {
    // NMS-free heads: the model already suppressed duplicates.
    const size_t n =
        options.max_det > 0 ? std::min<size_t>(cands.size(), options.max_det) : cands.size();
    for (size_t k = 0; k < n; ++k) keep.push_back(static_cast<int>(k));
  } else {
    std::vector<float> scores(cands.size());
    std::vector<int> classes(cands.size());
    for (size_t k = 0; k < cands.size(); ++k) {
      scores[k] = cands[k].score;
      classes[k] = cands[k].class_id;
    }
    if (is_obb) {
      std::vector<RotatedBox> boxes(cands.size());
      for (size_t k = 0; k < cands.size(); ++k) boxes[k] = dec.InputRotated(cands[k].anchor);
      keep = NmsRotated(boxes, scores, classes, options.iou, options.agnostic, options.max_det);
    } else {
      std::vector<BoxXYXY> boxes(cands.size());
      for (size_t k = 0; k < cands.size(); ++k) boxes[k] = dec.InputBox(cands[k].anchor);
      keep = Nms(boxes, scores, classes, options.iou, options.agnostic, options.max_det);
    }
  }

  std::vector<Detection> dets;
  dets.reserve(keep.size());
  const bool drop_empty = meta.task == Task::kSegment && options.masks && !options.keep_empty_masks;
  for (int k : keep) {
    Detection d = dec.Make(cands[k]);
    if (drop_empty && (d.mask.empty() || cv::countNonZero(d.mask) == 0)) continue;
    dets.push_back(std::move(d));
  }
  return dets;
}

}  // namespace cvdeploy::vision
