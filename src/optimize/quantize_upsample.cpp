// SPDX-License-Identifier: Apache-2.0
// Nearest-neighbour upsampling (the Resize of a YOLO neck) as uint8 data movement that ONNX
// Runtime runs at memcpy speed in a quantized graph.
#include <cmath>
#include <string>
#include <vector>

#include "model/onnx_model.h"
#include "optimize/quantize.h"

namespace cvdeploy::optimize {
namespace {

std::string StringAttribute(const onnx::NodeProto& node, const std::string& name,
                            const std::string& fallback) {
  const onnx::AttributeProto* a = FindAttribute(node, name);
  return a == nullptr ? fallback : a->s();
}

// Input position that ONNX Resize (nearest) reads for output position `o` of an axis
// resized from `in` to `out` by `scale`; -1 for a mode this rewrite does not support.
int64_t NearestSource(int64_t o, int64_t in, int64_t out, float scale, const std::string& ctm,
                      const std::string& rounding) {
  const float of = static_cast<float>(o);
  float x;
  if (ctm == "asymmetric") {
    x = of / scale;
  } else if (ctm == "half_pixel" || ctm == "half_pixel_symmetric") {
    // half_pixel_symmetric equals half_pixel when out == in * scale exactly (checked by the
    // caller): its adjustment factor is then 1.
    x = (of + 0.5f) / scale - 0.5f;
  } else if (ctm == "pytorch_half_pixel") {
    x = out > 1 ? (of + 0.5f) / scale - 0.5f : 0.0f;
  } else if (ctm == "tf_half_pixel_for_nn") {
    x = (of + 0.5f) / scale;
  } else if (ctm == "align_corners") {
    x = out == 1 ? 0.0f : of * static_cast<float>(in - 1) / static_cast<float>(out - 1);
  } else {
    return -1;
  }
  float r;
  if (rounding == "floor") {
    r = std::floor(x);
  } else if (rounding == "ceil") {
    r = std::ceil(x);
  } else if (rounding == "round_prefer_floor") {
    r = x == std::floor(x) + 0.5f ? std::floor(x) : std::round(x);
  } else if (rounding == "round_prefer_ceil") {
    r = std::round(x);  // std::round rounds halves away from zero: up for x >= 0
    if (x < 0 && x == std::floor(x) + 0.5f) r = std::ceil(x);
  } else {
    return -1;
  }
  const int64_t i = static_cast<int64_t>(r);
  return i < 0 ? 0 : (i > in - 1 ? in - 1 : i);
}

}  // namespace

UpsampleFactors NearestUpsampleFactors(const onnx::NodeProto& node, const GraphIndex& index) {
  if (node.op_type() != "Resize" || node.input_size() < 2) return {};
  if (StringAttribute(node, "mode", "nearest") != "nearest") return {};
  if (FindAttribute(node, "axes") != nullptr) return {};
  const std::vector<int64_t> in = index.Shape(node.input(0));
  if (in.size() != 4 || in[1] <= 0 || in[2] <= 0 || in[3] <= 0) return {};

  // Opset 10: (X, scales). Opset 11+: (X, roi, scales, sizes), scales or sizes empty.
  std::vector<float> scales;
  const std::string scales_name = node.input_size() == 2 ? node.input(1) : node.input(2);
  if (const onnx::TensorProto* s = scales_name.empty() ? nullptr : index.Constant(scales_name);
      s != nullptr && NumElements(*s) > 0) {
    if (s->data_type() != onnx::TensorProto::FLOAT) return {};
    scales = FloatData(*s);
  } else if (node.input_size() > 3 && !node.input(3).empty()) {
    const onnx::TensorProto* sizes = index.Constant(node.input(3));
    if (sizes == nullptr || sizes->data_type() != onnx::TensorProto::INT64) return {};
    const std::vector<int64_t> n = IntData(*sizes);
    if (n.size() != 4) return {};
    for (int a = 0; a < 4; ++a) {
      if (in[a] <= 0 || n[a] % in[a] != 0) return {};
      scales.push_back(static_cast<float>(n[a] / in[a]));
    }
  }
  if (scales.size() != 4 || scales[0] != 1.0f || scales[1] != 1.0f) return {};
  UpsampleFactors f;
  for (int a = 2; a < 4; ++a) {
    if (!(scales[a] >= 1.0f) || scales[a] != std::floor(scales[a]) || scales[a] > 64) return {};
  }
  f.rows = static_cast<int64_t>(scales[2]);
  f.cols = static_cast<int64_t>(scales[3]);
  if (f.rows == 1 && f.cols == 1) return {};  // an identity: nothing to gain

  const std::string ctm = StringAttribute(node, "coordinate_transformation_mode", "half_pixel");
  const std::string rounding = StringAttribute(node, "nearest_mode", "round_prefer_floor");
  for (int a = 2; a < 4; ++a) {
    const int64_t factor = a == 2 ? f.rows : f.cols;
    const int64_t out = in[a] * factor;
    for (int64_t o = 0; o < out; ++o) {
      if (NearestSource(o, in[a], out, scales[a], ctm, rounding) != o / factor) return {};
    }
  }
  return f;
}

std::vector<onnx::NodeProto> NearestUpsampleNodes(const std::string& input,
                                                  const std::string& output,
                                                  const std::vector<int64_t>& nchw,
                                                  UpsampleFactors factors, GraphIndex& names,
                                                  std::vector<onnx::TensorProto>& initializers) {
  const int64_t c = nchw[1], h = nchw[2], w = nchw[3];
  std::vector<onnx::NodeProto> nodes;
  auto add = [&](const std::string& op, const std::vector<std::string>& inputs,
                 const std::string& out) {
    onnx::NodeProto n;
    n.set_op_type(op);
    n.set_name(names.UniqueName(output + "_upsample_" + op));
    for (const auto& i : inputs) n.add_input(i);
    n.add_output(out);
    nodes.push_back(std::move(n));
    return &nodes.back();
  };
  auto perm = [](onnx::NodeProto* n, const std::vector<int64_t>& p) {
    auto* a = n->add_attribute();
    a->set_name("perm");
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : p) a->add_ints(v);
  };
  auto constant = [&](const std::string& base, const std::vector<int64_t>& values) {
    const std::string name = names.UniqueName(output + base);
    initializers.push_back(Int64Tensor(name, {static_cast<int64_t>(values.size())}, values));
    return name;
  };
  const std::string nhwc = names.UniqueName(output + "_nhwc");
  const std::string split = names.UniqueName(output + "_pixels");
  const std::string copies = names.UniqueName(output + "_copies");
  const std::string merged = names.UniqueName(output + "_nhwc_up");
  perm(add("Transpose", {input}, nhwc), {0, 2, 3, 1});
  add("Reshape", {nhwc, constant("_pixels_shape", {-1, h, 1, w, 1, c})}, split);
  add("Expand", {split, constant("_copies_shape", {1, 1, factors.rows, 1, factors.cols, 1})},
      copies);
  add("Reshape", {copies, constant("_up_shape", {-1, h * factors.rows, w * factors.cols, c})},
      merged);
  perm(add("Transpose", {merged}, output), {0, 3, 1, 2});
  return nodes;
}

}  // namespace cvdeploy::optimize
