// SPDX-License-Identifier: Apache-2.0
// TorchGraph (torch_graph.h): loading, parameters, the forward pass and the write-back.
// The operators themselves are in torch_ops.cpp; the head taps in torch_head.cpp.
#include "train/torch_graph.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "train/torch_graph_impl.h"
#include "train/torch_ops.h"

namespace cvdeploy::train {

using detail::Param;

namespace {

Error BadInput(const std::string& message) { return Error(ErrorCode::kBadInput, message); }

std::string NodeMessage(const std::string& name, int index, const onnx::NodeProto& node,
                        const std::string& what) {
  std::string m = name;
  m += ": node ";
  m += std::to_string(index);
  m += " (";
  m += node.op_type();
  m += "): ";
  m += what;
  if (!node.name().empty()) {
    m += " in '";
    m += node.name();
    m += "'";
  }
  return m;
}

// True when the Conv reads the output of a Softmax (through Transposes only): the DFL
// projection, a fixed arange(reg_max) that Ultralytics does not train.
bool IsDflConv(const onnx::GraphProto& graph, const model::GraphIndex& index,
               const onnx::NodeProto& conv) {
  std::string t = conv.input(0);
  for (int hops = 0; hops < 4; ++hops) {
    const int p = index.Producer(t);
    if (p < 0) return false;
    const onnx::NodeProto& node = graph.node(p);
    if (node.op_type() == "Softmax") return true;
    if (node.op_type() != "Transpose") return false;
    t = node.input(0);
  }
  return false;
}

bool IsIntegerType(int32_t type) {
  return type == onnx::TensorProto::INT8 || type == onnx::TensorProto::UINT8 ||
         type == onnx::TensorProto::INT32;
}

// A trainable master weight for the quantized initializer `init` read by DequantizeLinear `dq`.
Param FakeQuantParam(const TorchGraph::Impl& g, const onnx::NodeProto& dq,
                     const onnx::TensorProto& init) {
  Param p;
  p.initializer = init.name();
  p.onnx_type = init.data_type();
  p.spec.scale = g.constants.at(dq.input(1)).to(torch::kFloat).contiguous();
  const bool has_zp = dq.input_size() > 2 && !dq.input(2).empty();
  p.spec.zero_point = has_zp ? g.constants.at(dq.input(2)).to(torch::kLong).contiguous()
                             : torch::zeros_like(p.spec.scale, torch::kLong);
  torch::Tensor q = g.constants.at(init.name());
  if (p.spec.scale.numel() > 1) {
    int64_t axis = model::IntAttribute(dq, "axis", 1);
    p.spec.axis = axis < 0 ? axis + q.dim() : axis;
    if (p.spec.axis < 0 || p.spec.axis >= q.dim() || q.size(p.spec.axis) != p.spec.scale.numel() ||
        p.spec.zero_point.numel() != p.spec.scale.numel())
      throw BadInput(g.name + ": DequantizeLinear of '" + init.name() +
                     "': scale or zero point does not match its axis");
  } else {
    p.spec.scale = p.spec.scale.reshape({});
    p.spec.zero_point = p.spec.zero_point.reshape({});
  }
  switch (init.data_type()) {
    case onnx::TensorProto::INT8:
      p.spec.qmin = -128, p.spec.qmax = 127;
      break;
    case onnx::TensorProto::UINT8:
      p.spec.qmin = 0, p.spec.qmax = 255;
      break;
    default:
      p.spec.qmin = std::numeric_limits<int32_t>::min();
      p.spec.qmax = std::numeric_limits<int32_t>::max();
  }
  // The master starts at the dequantized value, as ONNX Runtime computes it.
  torch::Tensor scale = p.spec.scale, zp = p.spec.zero_point.to(torch::kFloat);
  if (p.spec.axis >= 0) {
    std::vector<int64_t> shape(static_cast<size_t>(q.dim()), 1);
    shape[static_cast<size_t>(p.spec.axis)] = scale.numel();
    scale = scale.reshape(shape);
    zp = zp.reshape(shape);
  }
  p.value = ((q.to(torch::kFloat) - zp) * scale).detach().clone().set_requires_grad(true);
  p.fake_quant = true;
  return p;
}

void FindParameters(TorchGraph::Impl& g, const model::GraphIndex& index) {
  const onnx::GraphProto& graph = g.model.graph();
  std::unordered_map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : graph.initializer()) inits[t.name()] = &t;
  std::set<std::string> seen;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (node.op_type() != "Conv" && node.op_type() != "ConvTranspose") continue;
    if (IsDflConv(graph, index, node)) continue;
    for (int k = 1; k < std::min(node.input_size(), 3); ++k) {
      const std::string& t = node.input(k);
      if (t.empty() || !seen.insert(t).second) continue;
      auto it = inits.find(t);
      if (it != inits.end() && it->second->data_type() == onnx::TensorProto::FLOAT) {
        Param p;
        p.initializer = t;
        p.onnx_type = onnx::TensorProto::FLOAT;
        p.value = g.constants.at(t).clone().set_requires_grad(true);
        g.float_param[t] = g.params.size();
        g.params.push_back(std::move(p));
        continue;
      }
      const int producer = index.Producer(t);
      if (producer < 0 || graph.node(producer).op_type() != "DequantizeLinear") continue;
      const onnx::NodeProto& dq = graph.node(producer);
      auto q = inits.find(dq.input(0));
      if (q == inits.end() || !IsIntegerType(q->second->data_type())) continue;
      if (g.constants.count(dq.input(1)) == 0) continue;
      if (dq.input_size() > 2 && !dq.input(2).empty() && g.constants.count(dq.input(2)) == 0)
        continue;
      g.dq_param[producer] = g.params.size();
      g.params.push_back(FakeQuantParam(g, dq, *q->second));
    }
  }
}

void LoadConstants(TorchGraph::Impl& g) {
  const onnx::GraphProto& graph = g.model.graph();
  for (const auto& t : graph.initializer()) {
    try {
      g.constants[t.name()] = detail::TensorFromProto(t);
    } catch (const std::exception& e) {
      throw BadInput(g.name + ": initializer '" + t.name() + "': unsupported " + e.what());
    }
  }
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    const std::string reason = detail::UnsupportedReason(node, g.opset);
    if (!reason.empty()) throw BadInput(NodeMessage(g.name, i, node, "unsupported " + reason));
    if (node.op_type() != "Constant") continue;
    try {
      g.constants[node.output(0)] = detail::RunOp(node, {}, g.opset)[0];
    } catch (const std::exception& e) {
      throw BadInput(NodeMessage(g.name, i, node, std::string("unsupported ") + e.what()));
    }
  }
}

void Index(TorchGraph::Impl& g) {
  const onnx::GraphProto& graph = g.model.graph();
  for (const auto& in : graph.input()) {
    if (g.constants.count(in.name()) > 0) continue;
    g.inputs.push_back(in.name());
    std::vector<int64_t> shape;
    for (const auto& d : in.type().tensor_type().shape().dim())
      shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
    g.input_shapes[in.name()] = shape;
  }
  for (const auto& out : graph.output()) g.outputs.push_back(out.name());
  for (const auto& node : graph.node())
    for (const auto& t : node.input())
      if (!t.empty()) ++g.uses[t];
}

}  // namespace

TorchGraph::TorchGraph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TorchGraph::TorchGraph(TorchGraph&&) noexcept = default;
TorchGraph& TorchGraph::operator=(TorchGraph&&) noexcept = default;
TorchGraph::~TorchGraph() = default;

TorchGraph TorchGraph::FromBytes(const std::vector<uint8_t>& bytes, const std::string& name) {
  auto g = std::make_unique<Impl>();
  g->name = name;
  g->model = model::ParseModel(bytes, name);
  g->opset = model::DefaultOpset(g->model);
  LoadConstants(*g);
  Index(*g);
  model::GraphIndex index(g->model.graph());
  FindParameters(*g, index);
  return TorchGraph(std::move(g));
}

std::map<std::string, torch::Tensor> TorchGraph::Forward(
    const std::map<std::string, torch::Tensor>& inputs,
    const std::vector<std::string>& extra) const {
  const Impl& g = *impl_;
  std::unordered_map<std::string, torch::Tensor> values;
  for (const std::string& in : g.inputs) {
    auto it = inputs.find(in);
    if (it == inputs.end()) throw BadInput(g.name + ": missing input '" + in + "'");
    values[in] = it->second;
  }
  for (const auto& [init, i] : g.float_param) values[init] = g.params[i].value;
  std::set<std::string> keep(g.outputs.begin(), g.outputs.end());
  keep.insert(extra.begin(), extra.end());
  std::unordered_map<std::string, int> left = g.uses;
  const onnx::GraphProto& graph = g.model.graph();
  auto lookup = [&](const std::string& t) -> torch::Tensor {
    auto v = values.find(t);
    if (v != values.end()) return v->second;
    auto c = g.constants.find(t);
    if (c != g.constants.end()) return c->second;
    throw BadInput(g.name + ": tensor '" + t + "' is not produced before it is used");
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (node.op_type() == "Constant") continue;
    std::vector<torch::Tensor> args;
    std::vector<torch::Tensor> outs;
    auto dq = g.dq_param.find(i);
    try {
      if (dq != g.dq_param.end()) {
        const Param& p = g.params[dq->second];
        outs = {detail::FakeQuantize(p.value, p.spec)};
      } else {
        for (const auto& t : node.input()) args.push_back(t.empty() ? torch::Tensor() : lookup(t));
        outs = detail::RunOp(node, args, g.opset);
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kBadInput, NodeMessage(g.name, i, node, detail::FirstLine(e.what())));
    }
    for (int k = 0; k < node.output_size() && k < static_cast<int>(outs.size()); ++k)
      if (!node.output(k).empty()) values[node.output(k)] = outs[static_cast<size_t>(k)];
    for (const auto& t : node.input()) {
      if (t.empty() || keep.count(t) > 0) continue;
      auto it = left.find(t);
      if (it != left.end() && --it->second == 0) values.erase(t);
    }
  }
  std::map<std::string, torch::Tensor> result;
  for (const std::string& t : keep) {
    auto v = values.find(t);
    if (v != values.end()) {
      result[t] = v->second;
    } else if (g.constants.count(t) > 0) {
      result[t] = g.constants.at(t);
    } else {
      throw BadInput(g.name + ": no tensor named '" + t + "' in the graph");
    }
  }
  return result;
}

namespace {

// N of a node named "/model.N/...", else -1.
int BlockOf(const std::string& node_name) {
  static const std::string kPrefix = "/model.";
  if (node_name.rfind(kPrefix, 0) != 0) return -1;
  const size_t end = node_name.find('/', kPrefix.size());
  if (end == std::string::npos || end == kPrefix.size() || end - kPrefix.size() > 4) return -1;
  int n = 0;
  for (size_t i = kPrefix.size(); i < end; ++i) {
    if (node_name[i] < '0' || node_name[i] > '9') return -1;
    n = n * 10 + (node_name[i] - '0');
  }
  return n;
}

}  // namespace

std::vector<std::string> TorchGraph::BlockOutputs() const {
  const onnx::GraphProto& graph = impl_->model.graph();
  std::unordered_map<std::string, int> producer;
  int last = -1;
  for (const auto& node : graph.node()) {
    const int b = BlockOf(node.name());
    last = std::max(last, b);
    // Concat and Resize blocks only move other blocks' outputs: not a feature of their own.
    const bool moves = node.op_type() == "Concat" || node.op_type() == "Resize";
    for (const auto& out : node.output()) producer[out] = moves ? -1 : b;
  }
  std::vector<std::string> result;
  std::set<std::string> seen;
  for (const auto& node : graph.node()) {
    const int b = BlockOf(node.name());
    for (const auto& in : node.input()) {
      auto it = producer.find(in);
      if (it == producer.end() || it->second < 0 || it->second == b || it->second == last) continue;
      if (seen.insert(in).second) result.push_back(in);
    }
  }
  return result;
}

std::vector<torch::Tensor> TorchGraph::Parameters() const {
  std::vector<torch::Tensor> out;
  for (const Param& p : impl_->params) out.push_back(p.value);
  return out;
}

std::vector<std::string> TorchGraph::ParameterNames() const {
  std::vector<std::string> out;
  for (const Param& p : impl_->params) out.push_back(p.initializer);
  return out;
}

int64_t TorchGraph::ParameterCount() const {
  int64_t n = 0;
  for (const Param& p : impl_->params) n += p.value.numel();
  return n;
}

int TorchGraph::TrainableTensorCount() const { return static_cast<int>(impl_->params.size()); }

int TorchGraph::FakeQuantTensorCount() const {
  int n = 0;
  for (const Param& p : impl_->params) n += p.fake_quant ? 1 : 0;
  return n;
}

bool TorchGraph::IsFakeQuantized(size_t index) const { return impl_->params.at(index).fake_quant; }

std::vector<std::string> TorchGraph::InputNames() const { return impl_->inputs; }
std::vector<std::string> TorchGraph::OutputNames() const { return impl_->outputs; }

std::vector<int64_t> TorchGraph::InputShape(const std::string& input) const {
  auto it = impl_->input_shapes.find(input);
  if (it == impl_->input_shapes.end())
    throw BadInput(impl_->name + ": no graph input named '" + input + "'");
  return it->second;
}

const std::string& TorchGraph::name() const { return impl_->name; }

void TorchGraph::SetFloatType(torch::ScalarType type) {
  for (Param& p : impl_->params) {
    if (p.fake_quant) throw BadInput(impl_->name + ": fake-quantized graphs stay float32");
    p.value = p.value.detach().to(type).set_requires_grad(true);
  }
  for (auto& [name, t] : impl_->constants)
    if (torch::isFloatingType(t.scalar_type())) t = t.to(type);
}

namespace {

// Stores `values` (a CPU tensor already of the initializer's element type) as raw data.
void StoreRaw(onnx::TensorProto& init, const torch::Tensor& values) {
  torch::Tensor c = values.contiguous();
  const size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
  init.clear_float_data();
  init.clear_int32_data();
  init.clear_int64_data();
  init.clear_double_data();
  init.set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), bytes));
}

}  // namespace

std::vector<uint8_t> TorchGraph::WriteBackInto(const std::vector<uint8_t>& target_bytes,
                                               const std::string& target_name) const {
  onnx::ModelProto target = model::ParseModel(target_bytes, target_name);
  std::unordered_map<std::string, onnx::TensorProto*> inits;
  for (auto& t : *target.mutable_graph()->mutable_initializer()) inits[t.name()] = &t;
  torch::NoGradGuard no_grad;
  for (const Param& p : impl_->params) {
    auto it = inits.find(p.initializer);
    if (it == inits.end())
      throw BadInput(target_name + ": no initializer '" + p.initializer + "' to write back into");
    onnx::TensorProto& init = *it->second;
    std::vector<int64_t> dims(init.dims().begin(), init.dims().end());
    if (dims != p.value.sizes().vec() || init.data_type() != p.onnx_type)
      throw BadInput(target_name + ": initializer '" + p.initializer +
                     "' differs in shape or element type from the trained one");
    torch::Tensor v = p.fake_quant ? detail::Requantize(p.value, p.spec) : p.value.detach();
    StoreRaw(init, v.to(torch::kCPU).to(detail::ScalarTypeOf(p.onnx_type)));
  }
  model::CheckModel(target, target_name);
  return model::SerializeModel(target);
}

std::vector<uint8_t> TorchGraph::WriteBack() const {
  return WriteBackInto(model::SerializeModel(impl_->model), impl_->name);
}

}  // namespace cvdeploy::train
