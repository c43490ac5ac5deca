// SPDX-License-Identifier: Apache-2.0
// Parameter and FLOP counts of an ONNX graph, computed from the graph itself (weights and the
// tensor shapes that ONNX shape inference derives), so every model tool and the benchmark
// table report the same figures.
//
// Conventions, chosen to match what Ultralytics prints ("GFLOPs" from thop, x2):
//   - FLOPs = 2 x multiply-accumulates (MACs) of Conv, ConvTranspose, MatMul and Gemm. Bias
//     additions, activations, pooling, resizing and other element-wise work are NOT in
//     `flops`; they are counted separately in `elementwise_ops` (one op per output element).
//   - Conv MACs = Cout * (Cin / group) * kh * kw * Hout * Wout * batch.
//     ConvTranspose MACs = Cin * (Cout / group) * kh * kw * Hin * Win * batch.
//     MatMul MACs = (product of output dims) * K. Gemm MACs = M * N * K.
//   - Parameters = elements of the constant weight and bias inputs of Conv, ConvTranspose,
//     Gemm and MatMul (each constant counted once), plus BatchNormalization scale and bias.
//     Constants such as anchor grids or reshape targets are not parameters.
//   - Quantized models count as their float form: ConvInteger and QLinearConv as Conv,
//     MatMulInteger and QLinearMatMul as MatMul (integer weights are parameters); the float
//     bias that dynamic quantization adds after ConvInteger (Add of a constant to the
//     dequantized Cast/Mul result) is that Conv's bias.
// Differences from Ultralytics' figure: thop only sees torch.nn modules, so the attention
// MatMuls of YOLO11's C2PSA (functional torch.matmul) are in our count but not in theirs;
// `by_op["MatMul"]` holds them separately.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cvdeploy/cost.h"

// Declared, not included: front ends (the CLI) use these headers without the ONNX build flags.
namespace onnx {
class ModelProto;
}  // namespace onnx

namespace cvdeploy::model {

struct OpCost {
  int64_t nodes = 0;
  int64_t params = 0;
  double flops = 0;  // 2 x MACs
};

// Per-node figures for the nodes that have MACs or parameters.
struct NodeCost {
  std::string name;  // node name (or its first output when unnamed)
  std::string op_type;
  int64_t params = 0;
  double flops = 0;                   // 2 x MACs
  std::vector<int64_t> output_shape;  // as shape inference derived it
};

struct GraphCost {
  int64_t params = 0;
  double flops = 0;            // 2 x MACs of Conv/ConvTranspose/MatMul/Gemm
  double elementwise_ops = 0;  // output elements of every other op, except pure data movement
  std::map<std::string, OpCost> by_op;
  std::vector<NodeCost> nodes;  // graph order
  // Nodes whose FLOPs could not be counted because a shape is unknown or dynamic (their
  // parameters are counted). Empty for the fixed-size models cvdeploy works with.
  std::vector<std::string> uncounted;
  // When the model input has symbolic dims, the input shape the figures are for: batch 1 and
  // the Ultralytics `imgsz` of the metadata (empty for fixed-size models).
  std::vector<int64_t> assumed_input;

  double gflops() const { return flops / 1e9; }
};

// Counts `model` (not modified: shape inference runs on a copy). A symbolic batch dim of the
// first input counts as 1 and symbolic height/width as the metadata's `imgsz` (what
// Ultralytics reports for such a model); dims still unknown make the affected nodes land in
// `uncounted` instead of throwing.
GraphCost CountCost(const onnx::ModelProto& model);

// The public summary of a count (cvdeploy/cost.h).
ModelCost ToModelCost(const GraphCost& cost);

}  // namespace cvdeploy::model
