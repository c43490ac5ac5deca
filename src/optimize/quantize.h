// SPDX-License-Identifier: Apache-2.0
// Static QDQ INT8 quantization: which nodes run on integers (the plan) and the rewrite that
// puts QuantizeLinear -> DequantizeLinear pairs on their tensors (the application), in the
// form ONNX Runtime's CPU provider fuses into integer kernels (QLinearConv, QLinearSigmoid,
// QLinearMul, QLinearAdd, QLinearConcat, uint8 MaxPool/Resize/Split/Reshape, ...).
//
// Activations are uint8 asymmetric, weights int8 symmetric (per output channel by default),
// Conv biases int32 with scale x_scale * w_scale, as ORT's Conv selector requires. One Q->DQ
// pair sits on each activation tensor that a quantized node reads or writes, shared by all
// its consumers, so chains of quantized nodes stay uint8 between the fused kernels.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/onnx_model.h"
#include "optimize/calibration.h"

namespace cvdeploy::optimize {

struct QuantizeOptions {
  CalibrationMethod method = CalibrationMethod::kPercentile;
  double percentile = 99.999;
  bool per_channel = true;
  // 7-bit weights ([-64, 64]). x86 CPUs without VNNI multiply uint8 x int8 with vpmaddubsw,
  // whose int16 pair sums can saturate with 8-bit weights (255 * 127 * 2 > 32767). Measured
  // on yolov8n/yolo11n: the saturation that costs accuracy happens in the Conv on the image
  // (kept float by default); elsewhere 8-bit weights are more accurate than 7-bit ones.
  bool reduce_range = false;
  // 7-bit weights on the Conv that reads the model input only (when it is quantized): the
  // ISA placement's choice for CPUs whose int8 arithmetic saturates (see PlaceForIsa).
  bool reduce_range_input_conv = false;
  std::vector<std::string> exclude;  // node names the user keeps float (--exclude)
  std::set<std::string> keep_float;  // node names the accuracy gate returned to float
  // Concat inputs share the Concat's parameters (byte copies instead of requantization).
  bool unify_concat = true;
  // Quantize the Conv that reads the model input (off: it stays float, see quantize_plan).
  bool quantize_input_conv = false;
  // Run quantized nearest-neighbour upsampling (Resize with integer factors) as uint8
  // Transpose/Reshape/Expand instead of Resize (see NearestUpsampleNodes).
  bool rewrite_upsample = true;
};

// A unit the accuracy gate returns to float as a whole: a Conv with its activation (SiLU:
// Sigmoid and Mul), or a single other quantized node.
struct QuantLayer {
  std::string name;                 // the Conv's (or the node's) name
  std::vector<std::string> nodes;   // names of the nodes of the layer
  std::vector<std::string> inputs;  // activation tensors it reads
  std::string output;               // the tensor it produces
};

struct QuantPlan {
  std::vector<std::string> quantized;  // node names, in graph order
  // Every node left float: name -> reason ("decode", "--exclude", "accuracy gate",
  // "no integer kernel", "between float nodes").
  std::map<std::string, std::string> float_reason;
  std::vector<std::string> qdq_tensors;  // activation tensors carrying a Q->DQ pair
  // qdq tensor -> the tensor whose calibrated range sets its scale and zero point (itself,
  // or the input of the data-movement node that produced it: ORT drops the Q/DQ around
  // MaxPool, Resize, Split, Reshape, ... only when both sides share the parameters).
  std::map<std::string, std::string> param_source;
  // Parameter sources whose range is the union of several calibrated tensors' (Concat
  // inputs sharing the Concat's parameters): source -> the tensors.
  std::map<std::string, std::vector<std::string>> range_group;
  std::vector<QuantLayer> layers;  // in graph order
};

// How the target CPU multiplies uint8 activations by int8 weights in ONNX Runtime's kernels.
enum class Int8Arithmetic {
  kAmx,        // x86 AMX-INT8 (with AVX-512 VNNI): the VNNI kernels serve QLinearConv
  kVnni,       // x86 AVX-512 VNNI or AVX-VNNI: vpdpbusd, exact int32 accumulation
  kPairInt16,  // x86 without VNNI (AVX2, AVX-512BW: vpmaddubsw) or unknown: int16 pair sums
               // that saturate with 255 x 127 x 2
  kArm,        // ARM NEON (dot products or widening multiplies): exact
};
const char* ToString(Int8Arithmetic arithmetic);

// The placement decisions that depend on the target CPU. Pure function of the ISA flags, so
// a test injects any CPU and `quantize --target-isa` quantizes for another host.
struct IsaPlacement {
  std::vector<std::string> isa;  // the flags it was made from (MachineInfo::isa order)
  std::string target;            // "amx_int8", "avx512_vnni", "avx_vnni", "arm", "avx2", ...
  Int8Arithmetic arithmetic = Int8Arithmetic::kPairInt16;
  std::string activations = "uint8";
  // 7-bit weights on the Conv on the image when the user quantizes it (saturating arithmetic).
  bool input_conv_reduce_range = true;
  std::vector<std::string> decisions;  // one sentence per decision, with its reason
};
IsaPlacement PlaceForIsa(const std::vector<std::string>& isa);

// Converts the float model to opset >= 13 (per-axis DequantizeLinear for per-channel
// weights) and names unnamed nodes, so plans, calibration and the gate refer to the same
// graph. Throws Error(kBadInput) for a model that has no float Conv or cannot be converted.
onnx::ModelProto PrepareForQuantization(const onnx::ModelProto& model, const std::string& name);

// The decode of a detection head, left float by default: every node between the graph
// outputs and the last learned Convs (box/class concatenation across scales, DFL
// Reshape/Transpose/Softmax and its fixed arange Conv, anchor/stride arithmetic, class
// sigmoid, the final Concat). Found structurally, not by name. Node names in graph order.
std::vector<std::string> FindDecodeNodes(const onnx::GraphProto& graph);

// Names of the graph's nodes that are not in `graph` (for --exclude validation).
std::vector<std::string> UnknownNodes(const onnx::GraphProto& graph,
                                      const std::vector<std::string>& names);

// Places quantization on a prepared model.
QuantPlan PlanQuantization(const onnx::ModelProto& prepared, const QuantizeOptions& options);

// Activation tensors any plan of this model may need a range for (the plan with only the
// decode excluded); calibrating these once serves every --exclude and gate variation.
std::vector<std::string> CalibrationTensors(const onnx::ModelProto& prepared);

struct QuantParams {
  float scale = 1;
  uint8_t zero_point = 0;
};
// uint8 asymmetric parameters of a real interval containing 0.
QuantParams ActivationParams(const TensorRange& range);

// Integer factors of a Resize that is exact nearest-neighbour upsampling of an NCHW tensor
// with static C, H and W: output pixel (y, x) is input pixel (y / rows, x / cols) for every
// pixel, whatever the coordinate transformation and rounding modes say in general (checked
// position by position). Zero factors when the Resize is anything else.
struct UpsampleFactors {
  int64_t rows = 0, cols = 0;
  explicit operator bool() const { return rows > 0 && cols > 0; }
};
UpsampleFactors NearestUpsampleFactors(const onnx::NodeProto& resize, const GraphIndex& index);

// Nodes computing such an upsampling of `input` (shape `nchw`, batch may be -1) into
// `output` by data movement only: Transpose to NHWC, Reshape [N, H, 1, W, 1, C], Expand by
// the factors, Reshape, Transpose back. ONNX Runtime's CPU provider upsamples uint8 NCHW
// with a per-element loop (about 1.5 ns per output byte); here the Expand copies whole
// C-byte pixels, and in a QLinearConv graph, which ORT runs in NHWC, both Transposes cancel
// against the layout transposes ORT inserts. Shape constants are appended to `initializers`.
std::vector<onnx::NodeProto> NearestUpsampleNodes(const std::string& input,
                                                  const std::string& output,
                                                  const std::vector<int64_t>& nchw,
                                                  UpsampleFactors factors, GraphIndex& names,
                                                  std::vector<onnx::TensorProto>& initializers);

// Rewrites a prepared model according to `plan`, with activation ranges from `table`
// (method and percentile of `options`). Throws Error(kBadInput) naming a tensor the table
// lacks. The result keeps the input/output names, shapes and metadata; it is not checked.
onnx::ModelProto ApplyQuantization(const onnx::ModelProto& prepared, const QuantPlan& plan,
                                   const CalibrationTable& table, const QuantizeOptions& options);

}  // namespace cvdeploy::optimize
