// SPDX-License-Identifier: Apache-2.0
// The QDQ rewrite of a quantization plan: Q->DQ pairs on activations, int8 weights and int32
// biases behind DequantizeLinear, in the layout ONNX Runtime's QDQ selectors match.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "optimize/quantize.h"

namespace cvdeploy::optimize {
namespace {

onnx::NodeProto MakeNode(const std::string& op, const std::string& name,
                         const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  for (const auto& in : inputs) node.add_input(in);
  node.add_output(output);
  return node;
}

void SetAxis(onnx::NodeProto& node, int64_t axis) {
  auto* attr = node.add_attribute();
  attr->set_name("axis");
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(axis);
}

// Data-movement ops quantize only their data input (input 0).
bool IsSingleInputOp(const std::string& op) {
  return op != "Add" && op != "Mul" && op != "MatMul" && op != "Concat";
}

template <typename T>
onnx::TensorProto Typed(const std::string& name, int32_t type, const std::vector<int64_t>& dims,
                        const std::vector<T>& values) {
  return RawTensor(name, type, dims, values.data(), values.size() * sizeof(T));
}

// Rewrite state: the output graph's nodes and initializers being assembled.
class Rewriter {
 public:
  Rewriter(const onnx::ModelProto& prepared, const QuantPlan& plan, const QuantizeOptions& options)
      : source_(prepared.graph()), index_(prepared.graph()), plan_(plan), options_(options) {
    for (const auto& n : plan.quantized) quantized_names_.insert(n);
    for (int i = 0; options.rewrite_upsample && i < source_.node_size(); ++i) {
      const onnx::NodeProto& node = source_.node(i);
      if (!IsQuantized(i) || node.op_type() != "Resize") continue;
      const UpsampleFactors f = NearestUpsampleFactors(node, index_);
      // Byte copies are exact only when input and output share scale and zero point.
      if (f && plan.param_source.at(node.input(0)) == plan.param_source.at(node.output(0))) {
        upsample_[i] = f;
      }
    }
  }

  onnx::ModelProto Run(const onnx::ModelProto& prepared, const CalibrationTable& table) {
    ComputeParams(table);
    // The Q->DQ of each tensor goes right after its producer (graph inputs: first).
    std::unordered_map<int, std::vector<std::string>> after;  // producer -> tensors
    std::vector<std::string> first;
    for (const auto& t : plan_.qdq_tensors) {
      const int p = index_.Producer(t);
      (p < 0 ? first : after[p]).push_back(t);
    }
    // Consumer input renames for tensors whose producer stays float.
    for (const auto& t : plan_.qdq_tensors) {
      const int p = index_.Producer(t);
      if (p >= 0 && IsQuantized(p)) continue;
      dq_of_float_[t] = index_.UniqueName(t + "_dequantized");
    }

    for (const auto& t : first) EmitPair(t);
    for (int i = 0; i < source_.node_size(); ++i) {
      onnx::NodeProto node = source_.node(i);
      if (auto up = upsample_.find(i); up != upsample_.end()) {
        // uint8 in, uint8 out: the output's pair reduces to its DequantizeLinear.
        const std::string& y = node.output(0);
        uint8_of_[y] = index_.UniqueName(y + "_quantized");
        for (auto& n : NearestUpsampleNodes(uint8_of_.at(node.input(0)), uint8_of_[y],
                                            index_.Shape(node.input(0)), up->second, index_,
                                            new_initializers_)) {
          nodes_.push_back(std::move(n));
        }
        for (const auto& t : after[i]) EmitPair(t);
        continue;
      }
      if (IsQuantized(i)) {
        // Quantized consumers read the DQ copy of float-produced tensors.
        const bool first_only = node.op_type() == "Conv" || IsSingleInputOp(node.op_type());
        for (int k = 0; k < node.input_size(); ++k) {
          if (first_only && k > 0) break;
          auto it = dq_of_float_.find(node.input(k));
          if (it != dq_of_float_.end()) node.set_input(k, it->second);
        }
        // Outputs go through Q->DQ; the DQ keeps the original name for every reader.
        for (int k = 0; k < node.output_size(); ++k) {
          const std::string& t = node.output(k);
          if (t.empty() || !plan_.param_source.count(t)) continue;
          const std::string pre = index_.UniqueName(t + "_prequant");
          prequant_[t] = pre;
          node.set_output(k, pre);
        }
        if (node.op_type() == "Conv") QuantizeConvParameters(node, source_.node(i));
      }
      nodes_.push_back(std::move(node));
      for (const auto& t : after[i]) EmitPair(t);
    }

    onnx::ModelProto out = prepared;
    onnx::GraphProto* graph = out.mutable_graph();
    graph->clear_node();
    for (auto& n : weight_nodes_) *graph->add_node() = std::move(n);
    for (auto& n : nodes_) *graph->add_node() = std::move(n);
    for (auto& init : new_initializers_) *graph->add_initializer() = std::move(init);
    RemoveUnusedInitializers(*graph);
    InferShapes(out);
    return out;
  }

 private:
  bool IsQuantized(int node) const { return quantized_names_.count(source_.node(node).name()) > 0; }

  void ComputeParams(const CalibrationTable& table) {
    for (const auto& t : plan_.qdq_tensors) {
      const std::string& root = plan_.param_source.at(t);
      if (params_.count(root)) continue;
      auto group = plan_.range_group.find(root);
      TensorRange range;
      for (const auto& member :
           group == plan_.range_group.end() ? std::vector<std::string>{root} : group->second) {
        const TensorRange r = Range(member, table);
        range.lo = std::min(range.lo, r.lo);
        range.hi = std::max(range.hi, r.hi);
      }
      const QuantParams p = ActivationParams(range);
      params_[root] = p;
      scale_name_[root] = index_.UniqueName(root + "_scale");
      zero_name_[root] = index_.UniqueName(root + "_zero_point");
      new_initializers_.push_back(FloatTensor(scale_name_[root], {}, {p.scale}));
      new_initializers_.push_back(
          Typed<uint8_t>(zero_name_[root], onnx::TensorProto::UINT8, {}, {p.zero_point}));
    }
  }

  TensorRange Range(const std::string& tensor, const CalibrationTable& table) const {
    auto it = table.stats.find(tensor);
    if (it == table.stats.end()) {
      throw BadInput("the calibration table has no statistics for tensor '" + tensor +
                     "' (made for another model or placement; calibrate again)");
    }
    // The model input is bounded pixel data (0..1 after /255): its exact range loses
    // nothing, clipping its brightest pixels gains nothing.
    const CalibrationMethod method =
        index_.IsGraphInput(tensor) ? CalibrationMethod::kMinMax : options_.method;
    TensorRange range = ComputeRange(it->second, method, options_.percentile);
    if (IsSiluInput(tensor)) range.lo = std::max(range.lo, -kSiluFloor);
    return range;
  }

  // x read only by Sigmoid(x) and Mul(x, Sigmoid(x)): SiLU maps everything below -6 to
  // (-0.015, 0], so the negative tail of x carries no information; dropping it from the
  // range halves the quantization step of the values that matter.
  bool IsSiluInput(const std::string& t) const {
    const auto& consumers = index_.Consumers(t);
    if (consumers.size() != 2) return false;
    const onnx::NodeProto *sigmoid = nullptr, *mul = nullptr;
    for (int c : consumers) {
      const onnx::NodeProto& n = source_.node(c);
      if (n.op_type() == "Sigmoid") sigmoid = &n;
      if (n.op_type() == "Mul") mul = &n;
    }
    if (sigmoid == nullptr || mul == nullptr) return false;
    const std::string& s = sigmoid->output(0);
    return (mul->input(0) == t && mul->input(1) == s) || (mul->input(0) == s && mul->input(1) == t);
  }
  static constexpr float kSiluFloor = 6.0f;

  // The Q->DQ pair of tensor t (only the DQ when t was produced in uint8). The DQ output
  // keeps t's name when a quantized node produced t, so every reader finds it unchanged.
  void EmitPair(const std::string& t) {
    const std::string& root = plan_.param_source.at(t);
    const bool uint8_produced = uint8_of_.count(t) > 0;
    const bool from_quantized = prequant_.count(t) > 0 || uint8_produced;
    const std::string q_out =
        uint8_produced ? uint8_of_.at(t) : index_.UniqueName(t + "_quantized");
    uint8_of_[t] = q_out;
    const std::string dq_out = from_quantized ? t : dq_of_float_.at(t);
    if (!uint8_produced) {
      const std::string q_in = from_quantized ? prequant_.at(t) : t;
      nodes_.push_back(MakeNode("QuantizeLinear", index_.UniqueName(t + "_QuantizeLinear"),
                                {q_in, scale_name_.at(root), zero_name_.at(root)}, q_out));
    }
    nodes_.push_back(MakeNode("DequantizeLinear", index_.UniqueName(t + "_DequantizeLinear"),
                              {q_out, scale_name_.at(root), zero_name_.at(root)}, dq_out));
  }

  // int8 symmetric weights (per output channel or per tensor) and int32 bias with scale
  // x_scale * w_scale, zero point 0: the only bias form ORT's Conv selector accepts.
  void QuantizeConvParameters(onnx::NodeProto& conv, const onnx::NodeProto& original) {
    const onnx::TensorProto& w = *index_.Constant(original.input(1));
    const std::vector<float> values = FloatData(w);
    std::vector<int64_t> dims(w.dims().begin(), w.dims().end());
    const int64_t channels = dims[0];
    const int64_t per_channel = static_cast<int64_t>(values.size()) / channels;
    const bool seven_bit = options_.reduce_range || (options_.reduce_range_input_conv &&
                                                     index_.IsGraphInput(original.input(0)));
    const float qmax = seven_bit ? 64.0f : 127.0f;
    const int64_t groups = options_.per_channel ? channels : 1;
    std::vector<float> scales(groups, 0.0f);
    for (int64_t c = 0; c < channels; ++c) {
      float m = 0;
      for (int64_t k = 0; k < per_channel; ++k)
        m = std::max(m, std::fabs(values[c * per_channel + k]));
      float& s = scales[options_.per_channel ? c : 0];
      s = std::max(s, m);
    }
    for (float& s : scales) s = s > 0 ? s / qmax : 1.0f;
    if (options_.per_channel) {
      // Per channel, the scale with the least squared weight error among max/qmax shrunk
      // by 0..50%: clipping a few outlying weights buys a finer step for all the others,
      // which 7-bit weights need (on yolo11n: +0.01 mAP50-95 over max/qmax).
      for (int64_t c = 0; c < channels; ++c) {
        const float* v = values.data() + c * per_channel;
        double best = -1;
        float best_scale = scales[c];
        for (int step = 0; step <= 100; ++step) {
          const float sc = scales[c] * (1.0f - 0.005f * step);
          double err = 0;
          for (int64_t k = 0; k < per_channel; ++k) {
            const float r = std::clamp(std::nearbyint(v[k] / sc), -qmax, qmax) * sc - v[k];
            err += static_cast<double>(r) * r;
          }
          if (best < 0 || err < best) best = err, best_scale = sc;
        }
        scales[c] = best_scale;
      }
    }
    std::vector<int8_t> q(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const float s = scales[options_.per_channel ? i / per_channel : 0];
      q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(values[i] / s), -qmax, qmax));
    }
    const std::vector<int64_t> param_dims =
        options_.per_channel ? std::vector<int64_t>{channels} : std::vector<int64_t>{};
    const std::string wq = index_.UniqueName(w.name() + "_quantized");
    const std::string ws = index_.UniqueName(w.name() + "_scale");
    const std::string wz = index_.UniqueName(w.name() + "_zero_point");
    const std::string wdq = index_.UniqueName(w.name() + "_dequantized");
    new_initializers_.push_back(Typed<int8_t>(wq, onnx::TensorProto::INT8, dims, q));
    new_initializers_.push_back(FloatTensor(ws, param_dims, scales));
    new_initializers_.push_back(
        Typed<int8_t>(wz, onnx::TensorProto::INT8, param_dims, std::vector<int8_t>(groups, 0)));
    onnx::NodeProto dq = MakeNode(
        "DequantizeLinear", index_.UniqueName(w.name() + "_DequantizeLinear"), {wq, ws, wz}, wdq);
    if (options_.per_channel) SetAxis(dq, 0);
    weight_nodes_.push_back(std::move(dq));
    conv.set_input(1, wdq);

    if (conv.input_size() < 3 || conv.input(2).empty()) return;
    const onnx::TensorProto& b = *index_.Constant(conv.input(2));
    const std::vector<float> bias = FloatData(b);
    const float x_scale = params_.at(plan_.param_source.at(original.input(0))).scale;
    std::vector<float> bias_scales(groups);
    for (int64_t g = 0; g < groups; ++g) bias_scales[g] = x_scale * scales[g];
    std::vector<int32_t> bq(bias.size());
    constexpr double kMax = std::numeric_limits<int32_t>::max();
    for (size_t i = 0; i < bias.size(); ++i) {
      const double s = bias_scales[options_.per_channel ? i : 0];
      bq[i] = static_cast<int32_t>(std::clamp(std::nearbyint(bias[i] / s), -kMax, kMax));
    }
    const std::string bqn = index_.UniqueName(b.name() + "_quantized");
    const std::string bs = index_.UniqueName(b.name() + "_scale");
    const std::string bz = index_.UniqueName(b.name() + "_zero_point");
    const std::string bdq = index_.UniqueName(b.name() + "_dequantized");
    new_initializers_.push_back(
        Typed<int32_t>(bqn, onnx::TensorProto::INT32, {static_cast<int64_t>(bias.size())}, bq));
    new_initializers_.push_back(FloatTensor(bs, param_dims, bias_scales));
    new_initializers_.push_back(
        Typed<int32_t>(bz, onnx::TensorProto::INT32, param_dims, std::vector<int32_t>(groups, 0)));
    onnx::NodeProto bdq_node = MakeNode(
        "DequantizeLinear", index_.UniqueName(b.name() + "_DequantizeLinear"), {bqn, bs, bz}, bdq);
    if (options_.per_channel) SetAxis(bdq_node, 0);
    weight_nodes_.push_back(std::move(bdq_node));
    conv.set_input(2, bdq);
  }

  static void RemoveUnusedInitializers(onnx::GraphProto& graph) {
    std::unordered_set<std::string> used;
    for (const auto& n : graph.node()) {
      for (const auto& in : n.input()) used.insert(in);
    }
    for (const auto& o : graph.output()) used.insert(o.name());
    auto* inits = graph.mutable_initializer();
    std::unordered_set<std::string> removed;
    for (int i = inits->size() - 1; i >= 0; --i) {
      if (!used.count(inits->Get(i).name())) {
        removed.insert(inits->Get(i).name());
        inits->DeleteSubrange(i, 1);
      }
    }
    auto* inputs = graph.mutable_input();
    for (int i = inputs->size() - 1; i >= 0; --i) {
      if (removed.count(inputs->Get(i).name())) inputs->DeleteSubrange(i, 1);
    }
  }

  const onnx::GraphProto& source_;
  GraphIndex index_;
  const QuantPlan& plan_;
  const QuantizeOptions& options_;
  std::unordered_set<std::string> quantized_names_;
  std::unordered_map<std::string, QuantParams> params_;
  std::unordered_map<std::string, std::string> scale_name_, zero_name_;
  std::unordered_map<std::string, std::string> dq_of_float_, prequant_;
  // Activation tensor -> its uint8 tensor (the output of its QuantizeLinear, or of the
  // uint8 nodes that replaced its producer).
  std::unordered_map<std::string, std::string> uint8_of_;
  std::unordered_map<int, UpsampleFactors> upsample_;  // quantized Resize node -> factors
  std::vector<onnx::NodeProto> nodes_, weight_nodes_;
  std::vector<onnx::TensorProto> new_initializers_;
};

}  // namespace

QuantParams ActivationParams(const TensorRange& range) {
  const float lo = std::min(range.lo, 0.0f), hi = std::max(range.hi, 0.0f);
  QuantParams p;
  if (!(hi - lo > 1e-12f) || !std::isfinite(hi - lo)) {
    p.scale = 1.0f / 255.0f;  // a constant-zero tensor: any scale represents it exactly
    return p;
  }
  p.scale = (hi - lo) / 255.0f;
  p.zero_point = static_cast<uint8_t>(std::clamp(std::nearbyint(-lo / p.scale), 0.0f, 255.0f));
  return p;
}

onnx::ModelProto ApplyQuantization(const onnx::ModelProto& prepared, const QuantPlan& plan,
                                   const CalibrationTable& table, const QuantizeOptions& options) {
  return Rewriter(prepared, plan, options).Run(prepared, table);
}

}  // namespace cvdeploy::optimize
