// SPDX-License-Identifier: Apache-2.0
// Placement decisions that depend on the target CPU's int8 arithmetic in ONNX Runtime's
// kernels (MLAS), from the ISA flags `cvdeploy doctor` and `bench` report (MachineInfo::isa).
#include <algorithm>

#include "cvdeploy/error.h"
#include "cvdeploy/quantize.h"
#include "cvdeploy/system.h"
#include "optimize/quantize.h"

namespace cvdeploy {

std::vector<std::string> ParseIsaFlags(const std::string& text) {
  std::vector<std::string> flags;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string flag = text.substr(begin, end - begin);
    if (std::find(kIsaFlags.begin(), kIsaFlags.end(), flag) == kIsaFlags.end()) {
      std::string known;
      for (const auto& f : kIsaFlags) known.append(known.empty() ? "" : ", ").append(f);
      throw InvalidArgument("quantize: --target-isa: unknown ISA flag '" + flag +
                            "' (known: " + known + ")");
    }
    if (std::find(flags.begin(), flags.end(), flag) == flags.end()) flags.push_back(flag);
    begin = end + 1;
  }
  return flags;
}

namespace optimize {
namespace {

bool Has(const std::vector<std::string>& isa, const char* flag) {
  return std::find(isa.begin(), isa.end(), flag) != isa.end();
}

}  // namespace

const char* ToString(Int8Arithmetic arithmetic) {
  switch (arithmetic) {
    case Int8Arithmetic::kAmx:
      return "amx_int8";
    case Int8Arithmetic::kVnni:
      return "vnni";
    case Int8Arithmetic::kPairInt16:
      return "int16 pairs";
    case Int8Arithmetic::kArm:
      return "arm";
  }
  return "?";
}

IsaPlacement PlaceForIsa(const std::vector<std::string>& isa) {
  IsaPlacement p;
  p.isa = isa;
  const bool arm = Has(isa, "neon") || Has(isa, "asimd");
  if (Has(isa, "amx_int8")) {
    p.arithmetic = Int8Arithmetic::kAmx;
    p.target = "amx_int8";
  } else if (Has(isa, "avx512_vnni") || Has(isa, "avx_vnni")) {
    p.arithmetic = Int8Arithmetic::kVnni;
    p.target = Has(isa, "avx512_vnni") ? "avx512_vnni" : "avx_vnni";
  } else if (arm) {
    p.arithmetic = Int8Arithmetic::kArm;
    p.target = "arm";
  } else {
    // x86 without VNNI, or nothing known: assume the arithmetic that can saturate.
    p.arithmetic = Int8Arithmetic::kPairInt16;
    p.target = Has(isa, "avx512bw") ? "avx512bw" : Has(isa, "avx2") ? "avx2" : "unknown";
  }
  const bool x86 = !arm;
  // Activations: MLAS's x86 kernels multiply uint8 by int8 (vpdpbusd, vpmaddubsw); int8
  // activations would be shifted to uint8 by ORT at load time, one more pass per tensor.
  p.activations = "uint8";
  p.decisions.push_back(
      x86 ? "activations uint8: the x86 int8 kernels multiply uint8 x int8; int8 activations "
            "would be shifted to uint8 by ONNX Runtime at load"
          : "activations uint8: ONNX Runtime's ARM symmetric kernels take uint8 or int8 alike");
  // Weights: symmetric int8 (zero point 0) selects QLinearConv's direct NHWC kernel
  // (MlasConvSym) on every ISA that has one; per channel costs it nothing.
  p.decisions.push_back(
      "weights int8 symmetric: QLinearConv's direct symmetric kernel (MLAS ConvSym) needs zero "
      "weight zero points; it serves Convs with input channels % 4 == 0 and >= 16 output "
      "channels, the others run as im2col + GEMM");
  if (p.arithmetic == Int8Arithmetic::kAmx) {
    p.decisions.push_back(
        "AMX: ONNX Runtime's symmetric Conv kernel is the AVX-512 VNNI one; AMX tiles serve its "
        "GEMM path (MatMul, non-symmetric Conv) only, so the placement is the VNNI one (not "
        "measured on an AMX host)");
  }
  // The Conv on the image: 3 input channels have no direct symmetric kernel (im2col, K = 27),
  // slower than the float direct convolution on every x86 ISA measured; and its bright pixels
  // (uint8 near 255) times 8-bit weights overflow int16 pair sums without VNNI.
  p.input_conv_reduce_range = p.arithmetic == Int8Arithmetic::kPairInt16;
  p.decisions.push_back(
      std::string("input Conv float: 3 input channels run as im2col + GEMM in int8, slower than "
                  "the float direct Conv") +
      (p.input_conv_reduce_range
           ? "; if quantized (--quantize-input-conv), 7-bit weights on it: 255 x 127 pair sums "
             "saturate int16 without VNNI"
           : "; if quantized, 8-bit weights: this arithmetic accumulates in int32 exactly"));
  p.decisions.push_back(
      p.arithmetic == Int8Arithmetic::kPairInt16
          ? "other Convs 8-bit weights: measured without loss on yolov8n/yolo11n although pair "
            "sums can saturate (--reduce-range makes all 7-bit)"
          : "other Convs 8-bit weights: no saturation with this arithmetic");
  return p;
}

}  // namespace optimize
}  // namespace cvdeploy
