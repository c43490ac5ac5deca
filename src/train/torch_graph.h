// SPDX-License-Identifier: Apache-2.0
// An interpreter that runs an Ultralytics YOLO ONNX graph as a libtorch computation, with the
// Conv/ConvTranspose weights and biases as trainable parameters, and writes the trained
// values back into the same graph's initializers.
//
// Op set: what the sample exports and the project's tools produce (convert --dynamic-shape,
// prune, quantize): Conv, ConvTranspose, Sigmoid, Mul, Add, Sub, Div, Concat, Split, Slice,
// MaxPool, Resize (nearest), Reshape, Transpose, Softmax, MatMul, Identity, Shape, Gather,
// Unsqueeze, Squeeze, Range, Cast, Constant(OfShape), Expand, Floor/Ceil, ... and
// QuantizeLinear/DequantizeLinear (per tensor and per channel). ONNX Runtime's dynamic
// quantization (DynamicQuantizeLinear/ConvInteger) is run forward only (no parameters).
//
// QDQ models (quantize's output): an int8 weight initializer that feeds a DequantizeLinear
// becomes a float master weight w = (q - zp) * s; its forward applies fake quantization with
// the fixed scale and zero point (straight-through gradient), and WriteBack re-quantizes it
// with the same scale. An int32 bias feeding a DequantizeLinear is trained likewise with its
// existing scale (s_x * s_w). So the exported Q/DQ structure stays exactly quantize's.
//
// The DFL convolution (the fixed arange(reg_max) projection after the head's Softmax) is not
// trainable, as in Ultralytics.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cvdeploy::train {

// The detection head's raw outputs, found in the graph: the class logits (the input of the
// Sigmoid whose output goes to the output Concat) and the box-distribution logits (the DFL
// Softmax's input), with the layout needed to bring them to canonical form.
struct HeadTaps {
  std::string class_logits;  // tensor name, [B, nc, A]
  std::string box_logits;    // tensor name: the DFL Softmax input
  int reg_max = 16;
  int nc = 0;
  // box_logits == canonical.permute(box_perm), canonical being [B, 4, reg_max, A].
  std::vector<int64_t> box_perm{0, 1, 2, 3};
  std::vector<int64_t> strides{8, 16, 32};  // of the levels, in the output's anchor order
  std::string output;                       // the graph output holding boxes + scores
};

// Canonical raw head: cls [B, nc, A] logits, box [B, 4, reg_max, A] logits.
struct RawHead {
  torch::Tensor cls, box;
};

class TorchGraph {
 public:
  // Parses serialized ONNX bytes (`name` for messages). Throws Error(kBadInput)
  // "NAME: node N (OpType): unsupported ..." naming the first op/attribute it cannot run, or
  // "NAME: not an ONNX model".
  // Fixed-shape exports hard-code batch 1 and their image size in Reshape constants: to train
  // at another batch or size, convert first (MakeBatchDynamic, MakeShapeDynamic: measured
  // here, batch 2 at 320x480 equals ONNX Runtime) and WriteBackInto the original.
  static TorchGraph FromBytes(const std::vector<uint8_t>& bytes, const std::string& name);

  TorchGraph(TorchGraph&&) noexcept;
  TorchGraph& operator=(TorchGraph&&) noexcept;
  ~TorchGraph();

  // Runs the graph on named float inputs ([B,3,H,W] images in [0,1]); returns the graph
  // outputs plus any intermediate value named in `extra` (a tensor name of the graph).
  // Throws Error(kBadInput) for a missing input or an unknown extra name. Gradients flow to
  // Parameters() unless the caller holds a torch::NoGradGuard. Not thread-safe against
  // concurrent optimizer steps on the same parameters.
  std::map<std::string, torch::Tensor> Forward(const std::map<std::string, torch::Tensor>& inputs,
                                               const std::vector<std::string>& extra = {}) const;

  // The trainable tensors (requires_grad, float32, CPU). They are the interpreter's own
  // storage: an optimizer updating them (or copy_ into them, e.g. to restore a checkpoint)
  // changes what Forward and WriteBack use.
  std::vector<torch::Tensor> Parameters() const;
  // Initializer name of each Parameters() entry (same order).
  std::vector<std::string> ParameterNames() const;
  int64_t ParameterCount() const;  // elements in Parameters()
  int TrainableTensorCount() const;
  // Parameters trained through fake quantization (QDQ weights/biases); 0 for float models.
  int FakeQuantTensorCount() const;
  // Whether Parameters()[index] is such a fake-quantized master (its initializer is integer).
  bool IsFakeQuantized(size_t index) const;

  std::vector<std::string> InputNames() const;
  std::vector<std::string> OutputNames() const;
  // Declared shape of a graph input (-1 for symbolic dimensions).
  std::vector<int64_t> InputShape(const std::string& input) const;

  // The model bytes with every trained parameter written back into its initializer (same
  // graph, node/tensor names, shapes, opset and metadata_props), checked with the ONNX
  // checker.
  std::vector<uint8_t> WriteBack() const;
  // Writes the parameters into another model that holds initializers of the same names and
  // shapes (e.g. the fixed-shape original of a graph that was made dynamic for training with
  // MakeBatchDynamic/MakeShapeDynamic). Throws Error(kBadInput) naming the first initializer
  // that is missing or differs in shape.
  std::vector<uint8_t> WriteBackInto(const std::vector<uint8_t>& target_bytes,
                                     const std::string& target_name) const;

  // The detection head's taps. Throws Error(kBadInput) "NAME: no YOLO detection head found:
  // REASON" for graphs without one.
  HeadTaps Head() const;

  // The tensors that leave an Ultralytics block: produced by a node named "/model.N/..." (not
  // a Concat or Resize, which only move other blocks' outputs) and read by a node of another
  // block, for every block but the last (the detection head), in the order they are first
  // read. Distillation's feature hints match them between a
  // student and its teacher (pruning keeps the names).
  std::vector<std::string> BlockOutputs() const;

  const std::string& name() const;

  // Converts the parameters and float constants to `type` (kDouble for gradient checks
  // against finite differences); Parameters() returned before are stale afterwards.
  // Throws Error(kBadInput) for graphs with fake-quantized parameters (float32 only).
  void SetFloatType(torch::ScalarType type);

  struct Impl;

 private:
  explicit TorchGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The canonical raw head from a Forward() result that included the taps as extra.
RawHead CanonicalHead(const HeadTaps& taps, const std::map<std::string, torch::Tensor>& values);

// Anchor points (x+0.5, y+0.5 in grid units) [A,2] and strides [A] for an input HxW and the
// strides of the model (8,16,32 for these models), in the export's anchor order (levels in
// order, rows then columns within a level; grid size ceil(h/stride) x ceil(w/stride)).
std::pair<torch::Tensor, torch::Tensor> MakeAnchors(int64_t h, int64_t w,
                                                    const std::vector<int64_t>& strides);

// Decodes a canonical head as the export does: boxes [B, 4, A] (cx, cy, w, h in input
// pixels) from the softmax-expected DFL distances (dist2bbox * stride), scores sigmoid(cls).
std::pair<torch::Tensor, torch::Tensor> DecodeHead(const RawHead& head,
                                                   const torch::Tensor& anchors,
                                                   const torch::Tensor& strides);

}  // namespace cvdeploy::train
