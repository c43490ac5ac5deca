// SPDX-License-Identifier: Apache-2.0
// The ONNX operators TorchGraph runs, each as a libtorch function of the node's input values
// (autograd flows through every float path). Quantized values (QuantizeLinear outputs,
// DynamicQuantizeLinear outputs) are carried as float tensors holding the integer values, so
// that the straight-through gradient can pass through the uint8 Transpose/Reshape/Expand
// chains quantize writes; integer shape arithmetic stays int64.
#pragma once

#include <onnx/onnx_pb.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace cvdeploy::train::detail {

// Runs one node. `inputs` holds one tensor per node input, undefined for an omitted optional
// input. Throws std::runtime_error on values it cannot handle (the caller adds the node).
std::vector<torch::Tensor> RunOp(const onnx::NodeProto& node,
                                 const std::vector<torch::Tensor>& inputs, int opset);

// Empty when RunOp can run `node` at `opset`; else what is unsupported ("op type",
// "attribute mode='linear'", ...), checked before any run.
std::string UnsupportedReason(const onnx::NodeProto& node, int opset);

// The libtorch element type of an ONNX element type (FLOAT, DOUBLE, FLOAT16, INT64, INT32,
// INT8, UINT8, BOOL). Throws std::runtime_error for others.
torch::ScalarType ScalarTypeOf(int64_t onnx_type);

// The tensor an initializer or Constant value holds (its own element type: float, int64,
// int32, int8, uint8, double, bool, float16).
torch::Tensor TensorFromProto(const onnx::TensorProto& proto);

// Fixed quantization of a trainable tensor: the scale and zero point of its
// DequantizeLinear, per tensor (axis < 0) or per channel along `axis`.
struct QuantSpec {
  torch::Tensor scale;       // float32, [] or [C]
  torch::Tensor zero_point;  // int64 of the same shape
  int64_t axis = -1;
  int64_t qmin = -128, qmax = 127;
};
// Fake quantization with a straight-through gradient (torch's fake_quantize_* for 8-bit
// ranges): what the DequantizeLinear outputs when fed requantized `w`.
torch::Tensor FakeQuantize(const torch::Tensor& w, const QuantSpec& spec);
// The integer values WriteBack stores: clamp(round(w / s) + zp), as int64, computed as the
// fake quantization does.
torch::Tensor Requantize(const torch::Tensor& w, const QuantSpec& spec);

}  // namespace cvdeploy::train::detail
