// SPDX-License-Identifier: Apache-2.0
// ONNX operators as libtorch functions (see torch_ops.h). Semantics follow the ONNX operator
// specification at the opsets the sample exports use (11..20); where ONNX Runtime rounds
// (QuantizeLinear, DynamicQuantizeLinear) the same rounding (half to even) is used.
#include "train/torch_ops.h"

#include <torch/torch.h>

#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "model/onnx_model.h"

namespace cvdeploy::train::detail {
namespace {

using Tensors = std::vector<torch::Tensor>;
using model::FindAttribute;
using model::IntAttribute;

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

std::vector<int64_t> Ints(const onnx::NodeProto& node, const std::string& name,
                          std::vector<int64_t> fallback = {}) {
  const onnx::AttributeProto* a = FindAttribute(node, name);
  if (a == nullptr) return fallback;
  return {a->ints().begin(), a->ints().end()};
}

std::string StringAttribute(const onnx::NodeProto& node, const std::string& name,
                            const std::string& fallback) {
  const onnx::AttributeProto* a = FindAttribute(node, name);
  return a == nullptr ? fallback : a->s();
}

std::vector<int64_t> IntValues(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kLong).contiguous().flatten();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

int64_t NormAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) Fail("axis out of range");
  return axis < 0 ? axis + rank : axis;
}

bool IsFloat(const torch::Tensor& t) { return torch::isFloatingType(t.scalar_type()); }

// Spatial padding [begin..., end...] must be symmetric for libtorch's convolution/pooling.
std::vector<int64_t> SymmetricPads(const onnx::NodeProto& node, size_t spatial) {
  std::vector<int64_t> pads = Ints(node, "pads", std::vector<int64_t>(2 * spatial, 0));
  if (pads.size() != 2 * spatial) Fail("pads of the wrong length");
  for (size_t i = 0; i < spatial; ++i)
    if (pads[i] != pads[i + spatial]) Fail("asymmetric pads");
  pads.resize(spatial);
  return pads;
}

torch::Tensor Convolve(const onnx::NodeProto& node, const torch::Tensor& x, const torch::Tensor& w,
                       const torch::Tensor& b, bool transposed) {
  const size_t spatial = static_cast<size_t>(w.dim() - 2);
  std::vector<int64_t> strides = Ints(node, "strides", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> dilations = Ints(node, "dilations", std::vector<int64_t>(spatial, 1));
  std::vector<int64_t> out_pad = Ints(node, "output_padding", std::vector<int64_t>(spatial, 0));
  return at::convolution(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt, strides,
                         SymmetricPads(node, spatial), dilations, transposed, out_pad,
                         IntAttribute(node, "group", 1));
}

Tensors Conv(const onnx::NodeProto& n, const Tensors& in, int) {
  return {Convolve(n, in[0], in[1], in.size() > 2 ? in[2] : torch::Tensor(), false)};
}

Tensors ConvTranspose(const onnx::NodeProto& n, const Tensors& in, int) {
  return {Convolve(n, in[0], in[1], in.size() > 2 ? in[2] : torch::Tensor(), true)};
}

// Integer convolution computed in double (exact for 8-bit operands and kernels far larger
// than these models'), returned as int32 like ONNX's ConvInteger.
Tensors ConvInteger(const onnx::NodeProto& n, const Tensors& in, int) {
  auto shifted = [&](size_t i, size_t zp) {
    torch::Tensor v = in[i].to(torch::kDouble);
    if (in.size() > zp && in[zp].defined()) {
      torch::Tensor z = in[zp].to(torch::kDouble);
      if (i == 1 && z.numel() > 1) z = z.reshape({-1, 1, 1, 1});
      v = v - z;
    }
    return v;
  };
  torch::Tensor y = Convolve(n, shifted(0, 2), shifted(1, 3), torch::Tensor(), false);
  return {torch::round(y).to(torch::kInt)};
}

torch::Tensor RoundSte(const torch::Tensor& x) {
  return x.requires_grad() ? x + (torch::round(x) - x).detach() : torch::round(x);
}

std::pair<int64_t, int64_t> QuantRange(torch::ScalarType type) {
  switch (type) {
    case torch::kChar:
      return {-128, 127};
    case torch::kByte:
      return {0, 255};
    case torch::kInt:
      return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    default:
      Fail("zero point of an unsupported element type");
  }
}

// Scale/zero point broadcast along `axis` of a rank-`rank` tensor (per-axis when 1-D with
// more than one element).
torch::Tensor AlongAxis(const torch::Tensor& v, int64_t axis, int64_t rank) {
  if (v.dim() == 0 || v.numel() == 1) return v.reshape({});
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[static_cast<size_t>(NormAxis(axis, rank))] = v.numel();
  return v.reshape(shape);
}

Tensors QuantizeLinear(const onnx::NodeProto& n, const Tensors& in, int) {
  const int64_t axis = IntAttribute(n, "axis", 1);
  const bool has_zp = in.size() > 2 && in[2].defined();
  auto [qmin, qmax] = QuantRange(has_zp ? in[2].scalar_type() : torch::kByte);
  torch::Tensor s = AlongAxis(in[1].to(torch::kFloat), axis, in[0].dim());
  torch::Tensor q = RoundSte(in[0] / s);
  if (has_zp) q = q + AlongAxis(in[2].to(torch::kFloat), axis, in[0].dim());
  return {torch::clamp(q, static_cast<double>(qmin), static_cast<double>(qmax))};
}

Tensors DequantizeLinear(const onnx::NodeProto& n, const Tensors& in, int) {
  const int64_t axis = IntAttribute(n, "axis", 1);
  torch::Tensor x = in[0].to(torch::kFloat);
  if (in.size() > 2 && in[2].defined()) x = x - AlongAxis(in[2].to(torch::kFloat), axis, x.dim());
  return {x * AlongAxis(in[1].to(torch::kFloat), axis, x.dim())};
}

// ONNX Runtime's uint8 dynamic quantization: range widened to include 0, scale range/255,
// zero point rounded, values rounded half to even.
Tensors DynamicQuantizeLinear(const onnx::NodeProto&, const Tensors& in, int) {
  torch::Tensor x = in[0].to(torch::kFloat);
  const float lo = std::min(0.0f, x.min().item<float>());
  const float hi = std::max(0.0f, x.max().item<float>());
  float scale = (hi - lo) / 255.0f;
  if (scale == 0.0f) scale = 1.0f;
  const float zp = std::nearbyint(std::clamp(0.0f - lo / scale, 0.0f, 255.0f));
  torch::Tensor q = torch::clamp(torch::round(x / scale) + zp, 0.0, 255.0);
  return {q, torch::tensor(scale), torch::tensor(static_cast<uint8_t>(zp), torch::kByte)};
}

Tensors Softmax(const onnx::NodeProto& n, const Tensors& in, int opset) {
  const torch::Tensor& x = in[0];
  const int64_t axis = NormAxis(IntAttribute(n, "axis", opset >= 13 ? -1 : 1), x.dim());
  if (opset >= 13 || axis == x.dim() - 1) return {torch::softmax(x, axis)};
  // Before opset 13: softmax over the flattened trailing block [axis:].
  return {torch::softmax(x.flatten(axis), axis).reshape(x.sizes())};
}

Tensors Concat(const onnx::NodeProto& n, const Tensors& in, int) {
  std::vector<torch::Tensor> parts;
  for (const auto& t : in)
    if (t.defined()) parts.push_back(t);
  if (parts.empty()) Fail("no inputs");
  return {torch::cat(parts, NormAxis(IntAttribute(n, "axis", 0), parts[0].dim()))};
}

Tensors Split(const onnx::NodeProto& n, const Tensors& in, int opset) {
  const torch::Tensor& x = in[0];
  const int64_t axis = NormAxis(IntAttribute(n, "axis", 0), x.dim());
  std::vector<int64_t> sizes = opset < 13 ? Ints(n, "split") : std::vector<int64_t>{};
  if (in.size() > 1 && in[1].defined()) sizes = IntValues(in[1]);
  if (sizes.empty()) {
    const int64_t parts = n.output_size(), total = x.size(axis);
    const int64_t each = (total + parts - 1) / parts;
    for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(each, total - i * each));
  }
  return torch::split_with_sizes(x, sizes, axis);
}

Tensors Slice(const onnx::NodeProto& n, const Tensors& in, int opset) {
  torch::Tensor x = in[0];
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    starts = Ints(n, "starts"), ends = Ints(n, "ends"), axes = Ints(n, "axes");
  } else {
    if (in.size() < 3 || !in[1].defined() || !in[2].defined()) Fail("Slice without starts/ends");
    starts = IntValues(in[1]), ends = IntValues(in[2]);
    if (in.size() > 3 && in[3].defined()) axes = IntValues(in[3]);
    if (in.size() > 4 && in[4].defined()) steps = IntValues(in[4]);
  }
  if (ends.size() != starts.size() || (!axes.empty() && axes.size() != starts.size()) ||
      (!steps.empty() && steps.size() != starts.size()))
    Fail("Slice starts, ends, axes and steps of different lengths");
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t axis = NormAxis(axes.empty() ? static_cast<int64_t>(i) : axes[i], x.dim());
    const int64_t step = steps.empty() ? 1 : steps[i], dim = x.size(axis);
    if (step <= 0) Fail("non-positive Slice steps");
    auto clampi = [dim](int64_t v) { return std::clamp(v < 0 ? v + dim : v, int64_t{0}, dim); };
    const int64_t s = clampi(starts[i]), e = clampi(ends[i]);
    x = x.slice(axis, s, std::max(s, e), step);
  }
  return {x};
}

Tensors MaxPool(const onnx::NodeProto& n, const Tensors& in, int) {
  const std::vector<int64_t> kernel = Ints(n, "kernel_shape");
  const size_t spatial = kernel.size();
  if (spatial != 2 || n.output_size() > 1) Fail("only 2-D MaxPool without indices");
  return {torch::max_pool2d(in[0], kernel, Ints(n, "strides", {1, 1}), SymmetricPads(n, spatial),
                            Ints(n, "dilations", {1, 1}), IntAttribute(n, "ceil_mode", 0) != 0)};
}

// Nearest resize with the asymmetric/floor rule: out[i] = in[floor(i / scale)], which is
// libtorch's "nearest" given the scale factors.
Tensors Resize(const onnx::NodeProto&, const Tensors& in, int opset) {
  const torch::Tensor& x = in[0];
  if (x.dim() != 4) Fail("only 4-D Resize");
  const size_t scales_at = opset >= 11 ? 2 : 1;
  std::vector<int64_t> size;
  std::vector<double> scales;
  if (opset >= 11 && in.size() > 3 && in[3].defined() && in[3].numel() == 4) {
    std::vector<int64_t> sizes = IntValues(in[3]);
    size = {sizes[2], sizes[3]};
    scales = {static_cast<double>(size[0]) / static_cast<double>(x.size(2)),
              static_cast<double>(size[1]) / static_cast<double>(x.size(3))};
  } else if (in.size() > scales_at && in[scales_at].defined() && in[scales_at].numel() == 4) {
    torch::Tensor s = in[scales_at].to(torch::kDouble).contiguous();
    scales = {s[2].item<double>(), s[3].item<double>()};
    if (s[0].item<double>() != 1.0 || s[1].item<double>() != 1.0) Fail("Resize of N or C");
    size = {static_cast<int64_t>(std::floor(static_cast<double>(x.size(2)) * scales[0])),
            static_cast<int64_t>(std::floor(static_cast<double>(x.size(3)) * scales[1]))};
  } else {
    Fail("Resize without 4 scales or sizes");
  }
  return {torch::upsample_nearest2d(x, size, scales[0], scales[1])};
}

Tensors Reshape(const onnx::NodeProto& n, const Tensors& in, int) {
  std::vector<int64_t> shape = IntValues(in[1]);
  const bool allowzero = IntAttribute(n, "allowzero", 0) != 0;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 0 && !allowzero) shape[i] = in[0].size(static_cast<int64_t>(i));
  return {in[0].reshape(shape)};
}

Tensors Transpose(const onnx::NodeProto& n, const Tensors& in, int) {
  std::vector<int64_t> perm = Ints(n, "perm");
  if (perm.empty())
    for (int64_t i = in[0].dim() - 1; i >= 0; --i) perm.push_back(i);
  return {in[0].permute(perm).contiguous()};
}

Tensors Shape(const onnx::NodeProto& n, const Tensors& in, int) {
  const int64_t rank = in[0].dim();
  int64_t start = IntAttribute(n, "start", 0), end = IntAttribute(n, "end", rank);
  start = std::clamp(start < 0 ? start + rank : start, int64_t{0}, rank);
  end = std::clamp(end < 0 ? end + rank : end, int64_t{0}, rank);
  std::vector<int64_t> dims(in[0].sizes().begin() + start,
                            in[0].sizes().begin() + std::max(start, end));
  return {torch::tensor(dims, torch::kLong)};
}

Tensors Gather(const onnx::NodeProto& n, const Tensors& in, int) {
  const torch::Tensor& x = in[0];
  const int64_t axis = NormAxis(IntAttribute(n, "axis", 0), x.dim());
  torch::Tensor idx = in[1].to(torch::kLong);
  idx = torch::where(idx < 0, idx + x.size(axis), idx);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().begin() + axis);
  for (int64_t d : idx.sizes()) shape.push_back(d);
  shape.insert(shape.end(), x.sizes().begin() + axis + 1, x.sizes().end());
  return {x.index_select(axis, idx.flatten()).reshape(shape)};
}

std::vector<int64_t> AxesOf(const onnx::NodeProto& n, const Tensors& in, int opset) {
  if (opset >= 13)
    return in.size() > 1 && in[1].defined() ? IntValues(in[1]) : std::vector<int64_t>{};
  return Ints(n, "axes");
}

Tensors Unsqueeze(const onnx::NodeProto& n, const Tensors& in, int opset) {
  std::vector<int64_t> axes = AxesOf(n, in, opset);
  const int64_t rank = in[0].dim() + static_cast<int64_t>(axes.size());
  for (int64_t& a : axes) a = NormAxis(a, rank);
  std::sort(axes.begin(), axes.end());
  torch::Tensor x = in[0];
  for (int64_t a : axes) x = x.unsqueeze(a);
  return {x};
}

Tensors Squeeze(const onnx::NodeProto& n, const Tensors& in, int opset) {
  std::vector<int64_t> axes = AxesOf(n, in, opset);
  if (axes.empty()) return {in[0].squeeze()};
  for (int64_t& a : axes) a = NormAxis(a, in[0].dim());
  std::sort(axes.rbegin(), axes.rend());
  torch::Tensor x = in[0];
  for (int64_t a : axes) x = x.squeeze(a);
  return {x};
}

}  // namespace

torch::ScalarType ScalarTypeOf(int64_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT:
      return torch::kFloat;
    case onnx::TensorProto::DOUBLE:
      return torch::kDouble;
    case onnx::TensorProto::FLOAT16:
      return torch::kHalf;
    case onnx::TensorProto::INT64:
      return torch::kLong;
    case onnx::TensorProto::INT32:
      return torch::kInt;
    case onnx::TensorProto::INT8:
      return torch::kChar;
    case onnx::TensorProto::UINT8:
      return torch::kByte;
    case onnx::TensorProto::BOOL:
      return torch::kBool;
    default:
      Fail("element type " + std::to_string(onnx_type));
  }
}

namespace {

Tensors Cast(const onnx::NodeProto& n, const Tensors& in, int) {
  const torch::ScalarType to = ScalarTypeOf(IntAttribute(n, "to", onnx::TensorProto::FLOAT));
  // A quantized value carried as float keeps its gradient path when cast to float.
  if (IsFloat(in[0]) && torch::isFloatingType(to)) return {in[0].to(to)};
  if (IsFloat(in[0])) return {torch::trunc(in[0]).to(to)};
  return {in[0].to(to)};
}

Tensors Range(const onnx::NodeProto&, const Tensors& in, int) {
  if (IsFloat(in[0]))
    return {torch::arange(in[0].item<double>(), in[1].item<double>(), in[2].item<double>(),
                          torch::TensorOptions().dtype(in[0].scalar_type()))};
  return {torch::arange(in[0].item<int64_t>(), in[1].item<int64_t>(), in[2].item<int64_t>(),
                        torch::TensorOptions().dtype(in[0].scalar_type()))};
}

Tensors Expand(const onnx::NodeProto&, const Tensors& in, int) {
  std::vector<int64_t> shape = IntValues(in[1]);
  std::vector<int64_t> out = at::infer_size(in[0].sizes(), shape);
  return {in[0].expand(out).contiguous()};
}

Tensors Constant(const onnx::NodeProto& n, const Tensors&, int) {
  const onnx::AttributeProto* a = FindAttribute(n, "value");
  if (a == nullptr) Fail("Constant without 'value'");
  return {TensorFromProto(a->t())};
}

Tensors ConstantOfShape(const onnx::NodeProto& n, const Tensors& in, int) {
  const onnx::AttributeProto* a = FindAttribute(n, "value");
  torch::Tensor v = a != nullptr ? TensorFromProto(a->t()) : torch::zeros({1});
  return {torch::full(IntValues(in[0]), v.flatten()[0].item(), v.options())};
}

torch::Tensor Divide(const torch::Tensor& a, const torch::Tensor& b) {
  if (IsFloat(a) || IsFloat(b)) return a / b;
  return torch::div(a, b, "trunc");
}

using OpFn = std::function<Tensors(const onnx::NodeProto&, const Tensors&, int)>;

OpFn Unary(torch::Tensor (*f)(const torch::Tensor&)) {
  return [f](const onnx::NodeProto&, const Tensors& in, int) { return Tensors{f(in[0])}; };
}

OpFn Binary(torch::Tensor (*f)(const torch::Tensor&, const torch::Tensor&)) {
  return [f](const onnx::NodeProto&, const Tensors& in, int) { return Tensors{f(in[0], in[1])}; };
}

// An operator and the number of leading inputs it cannot run without.
struct OpDef {
  OpFn fn;
  int required = 1;
};

const std::unordered_map<std::string, OpDef>& Ops() {
  static const std::unordered_map<std::string, OpDef> ops = {
      {"Conv", {Conv, 2}},
      {"ConvTranspose", {ConvTranspose, 2}},
      {"ConvInteger", {ConvInteger, 2}},
      {"QuantizeLinear", {QuantizeLinear, 2}},
      {"DequantizeLinear", {DequantizeLinear, 2}},
      {"DynamicQuantizeLinear", {DynamicQuantizeLinear, 1}},
      {"Sigmoid", {Unary([](const torch::Tensor& x) { return torch::sigmoid(x); }), 1}},
      {"Relu", {Unary([](const torch::Tensor& x) { return torch::relu(x); }), 1}},
      {"Floor", {Unary([](const torch::Tensor& x) { return torch::floor(x); }), 1}},
      {"Ceil", {Unary([](const torch::Tensor& x) { return torch::ceil(x); }), 1}},
      {"Sqrt", {Unary([](const torch::Tensor& x) { return torch::sqrt(x); }), 1}},
      {"Exp", {Unary([](const torch::Tensor& x) { return torch::exp(x); }), 1}},
      {"Neg", {Unary([](const torch::Tensor& x) { return torch::neg(x); }), 1}},
      {"Identity", {Unary([](const torch::Tensor& x) { return x; }), 1}},
      {"Add", {Binary([](const torch::Tensor& a, const torch::Tensor& b) { return a + b; }), 2}},
      {"Sub", {Binary([](const torch::Tensor& a, const torch::Tensor& b) { return a - b; }), 2}},
      {"Mul", {Binary([](const torch::Tensor& a, const torch::Tensor& b) { return a * b; }), 2}},
      {"Div", {Binary(Divide), 2}},
      {"Pow",
       {Binary([](const torch::Tensor& a, const torch::Tensor& b) { return torch::pow(a, b); }),
        2}},
      {"MatMul",
       {Binary([](const torch::Tensor& a, const torch::Tensor& b) { return torch::matmul(a, b); }),
        2}},
      {"Softmax", {Softmax, 1}},
      {"Concat", {Concat, 1}},
      {"Split", {Split, 1}},
      {"Slice", {Slice, 1}},
      {"MaxPool", {MaxPool, 1}},
      {"Resize", {Resize, 1}},
      {"Reshape", {Reshape, 2}},
      {"Transpose", {Transpose, 1}},
      {"Shape", {Shape, 1}},
      {"Gather", {Gather, 2}},
      {"Unsqueeze", {Unsqueeze, 1}},
      {"Squeeze", {Squeeze, 1}},
      {"Cast", {Cast, 1}},
      {"Range", {Range, 3}},
      {"Expand", {Expand, 2}},
      {"Constant", {Constant, 0}},
      {"ConstantOfShape", {ConstantOfShape, 1}},
  };
  return ops;
}

// Attribute values the ops above do not implement.
std::string AttributeReason(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  if (op == "Conv" || op == "ConvTranspose" || op == "ConvInteger" || op == "MaxPool") {
    const std::string pad = StringAttribute(n, "auto_pad", "NOTSET");
    if (pad != "NOTSET") return "attribute auto_pad='" + pad + "'";
    if (FindAttribute(n, "output_shape") != nullptr) return "attribute output_shape";
    if (FindAttribute(n, "storage_order") != nullptr && IntAttribute(n, "storage_order", 0) != 0)
      return "attribute storage_order";
  }
  if (op == "Resize") {
    const std::string mode = StringAttribute(n, "mode", "nearest");
    const std::string ctm = StringAttribute(n, "coordinate_transformation_mode", "half_pixel");
    const std::string nearest = StringAttribute(n, "nearest_mode", "round_prefer_floor");
    if (mode != "nearest") return "attribute mode='" + mode + "' (only nearest)";
    if (ctm != "asymmetric") return "attribute coordinate_transformation_mode='" + ctm + "'";
    if (nearest != "floor") return "attribute nearest_mode='" + nearest + "'";
  }
  if (op == "Cast") {
    try {
      ScalarTypeOf(IntAttribute(n, "to", 0));
    } catch (const std::exception&) {
      return "attribute to=" + std::to_string(IntAttribute(n, "to", 0));
    }
  }
  if (op == "Constant" && FindAttribute(n, "value") == nullptr) return "Constant without 'value'";
  return "";
}

}  // namespace

std::vector<torch::Tensor> RunOp(const onnx::NodeProto& node,
                                 const std::vector<torch::Tensor>& inputs, int opset) {
  auto it = Ops().find(node.op_type());
  if (it == Ops().end()) Fail("unsupported op type");
  const int required = it->second.required;
  if (static_cast<int>(inputs.size()) < required) Fail("too few inputs");
  for (int i = 0; i < required; ++i)
    if (!inputs[static_cast<size_t>(i)].defined()) Fail("input " + std::to_string(i) + " missing");
  return it->second.fn(node, inputs, opset);
}

std::string UnsupportedReason(const onnx::NodeProto& node, int) {
  if (!node.domain().empty() && node.domain() != "ai.onnx")
    return "op domain '" + node.domain() + "'";
  auto it = Ops().find(node.op_type());
  if (it == Ops().end()) return "op type";
  if (node.input_size() < it->second.required)
    return "number of inputs " + std::to_string(node.input_size());
  return AttributeReason(node);
}

torch::Tensor TensorFromProto(const onnx::TensorProto& proto) {
  const torch::ScalarType type = ScalarTypeOf(proto.data_type());
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) Fail("external tensor data");
  // The element count is checked against the stored data before anything is allocated: the
  // dims of an untrusted file must not size an allocation on their own.
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d > 0 && count > (int64_t{1} << 40) / d))
      Fail("tensor '" + proto.name() + "' dims");
    count *= d;
  }
  const size_t stored =
      !proto.raw_data().empty()
          ? proto.raw_data().size() / c10::elementSize(type)
          : static_cast<size_t>(std::max({proto.float_data_size(), proto.int32_data_size(),
                                          proto.int64_data_size(), proto.double_data_size()}));
  if (stored != static_cast<size_t>(count))
    Fail("tensor '" + proto.name() + "' data size mismatch");
  torch::Tensor t = torch::empty(dims, torch::TensorOptions().dtype(type));
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (!proto.raw_data().empty()) {
    if (proto.raw_data().size() != bytes) Fail("tensor '" + proto.name() + "' data size mismatch");
    std::memcpy(t.data_ptr(), proto.raw_data().data(), bytes);
    return t;
  }
  auto fill = [&](const auto& field, torch::ScalarType from) {
    if (static_cast<int64_t>(field.size()) != t.numel())
      Fail("tensor '" + proto.name() + "' data size mismatch");
    using V = typename std::decay_t<decltype(field)>::value_type;
    torch::Tensor src = torch::empty({t.numel()}, torch::TensorOptions().dtype(from));
    std::memcpy(src.data_ptr(), field.data(), sizeof(V) * field.size());
    if (type == torch::kHalf) src = src.to(torch::kShort).view(torch::kHalf);
    t.copy_(src.reshape(dims).to(type));
  };
  switch (proto.data_type()) {
    case onnx::TensorProto::FLOAT:
      fill(proto.float_data(), torch::kFloat);
      break;
    case onnx::TensorProto::DOUBLE:
      fill(proto.double_data(), torch::kDouble);
      break;
    case onnx::TensorProto::INT64:
      fill(proto.int64_data(), torch::kLong);
      break;
    default:  // INT32, INT8, UINT8, BOOL, FLOAT16 are stored in int32_data
      fill(proto.int32_data(), torch::kInt);
  }
  return t;
}

torch::Tensor Requantize(const torch::Tensor& w, const QuantSpec& spec) {
  torch::Tensor s = spec.scale, zp = spec.zero_point.to(torch::kFloat);
  if (spec.axis >= 0) {
    s = AlongAxis(s, spec.axis, w.dim());
    zp = AlongAxis(zp, spec.axis, w.dim());
  }
  torch::Tensor q = torch::round(w.detach() * torch::reciprocal(s)) + zp;
  return torch::clamp(q, static_cast<double>(spec.qmin), static_cast<double>(spec.qmax))
      .to(torch::kLong);
}

torch::Tensor FakeQuantize(const torch::Tensor& w, const QuantSpec& spec) {
  const bool eight_bit = spec.qmax - spec.qmin <= 255;
  if (eight_bit && spec.axis < 0)
    return torch::fake_quantize_per_tensor_affine(
        w, spec.scale.item<double>(), spec.zero_point.item<int64_t>(), spec.qmin, spec.qmax);
  if (eight_bit)
    return torch::fake_quantize_per_channel_affine(w, spec.scale, spec.zero_point.to(torch::kInt),
                                                   spec.axis, spec.qmin, spec.qmax);
  // 32-bit biases: the same arithmetic by hand, straight-through gradient.
  torch::Tensor s = spec.axis >= 0 ? AlongAxis(spec.scale, spec.axis, w.dim()) : spec.scale;
  torch::Tensor zp = spec.zero_point.to(torch::kFloat);
  if (spec.axis >= 0) zp = AlongAxis(zp, spec.axis, w.dim());
  torch::Tensor dq = (Requantize(w, spec).to(torch::kFloat) - zp) * s;
  return w + (dq - w).detach();
}

}  // namespace cvdeploy::train::detail
