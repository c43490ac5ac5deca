// SPDX-License-Identifier: Apache-2.0
// TorchGraph's state, shared by its translation units (torch_graph.cpp, torch_head.cpp).
#pragma once

#include <onnx/onnx_pb.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "train/torch_graph.h"
#include "train/torch_ops.h"

namespace cvdeploy::train::detail {

// One trainable initializer: a float Conv weight/bias, or the float master of a quantized
// initializer read by a DequantizeLinear (fake_quant, with that DequantizeLinear's scale).
struct Param {
  std::string initializer;
  int32_t onnx_type = onnx::TensorProto::FLOAT;
  torch::Tensor value;  // float master, requires_grad
  bool fake_quant = false;
  QuantSpec spec;
};

inline std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace cvdeploy::train::detail

namespace cvdeploy::train {

struct TorchGraph::Impl {
  std::string name;
  onnx::ModelProto model;
  int opset = 0;
  // Initializers and Constant outputs, in their own element types.
  std::unordered_map<std::string, torch::Tensor> constants;
  std::vector<detail::Param> params;
  std::unordered_map<std::string, size_t> float_param;  // initializer -> params index
  std::unordered_map<int, size_t> dq_param;             // DequantizeLinear node -> params index
  std::unordered_map<std::string, int> uses;            // readers of each tensor
  std::vector<std::string> inputs, outputs;
  std::map<std::string, std::vector<int64_t>> input_shapes;
};

}  // namespace cvdeploy::train
