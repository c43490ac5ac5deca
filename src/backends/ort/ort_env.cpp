// SPDX-License-Identifier: Apache-2.0
#include "backends/ort/ort_env.h"

#include <algorithm>

#include "cvdeploy/system.h"
#include "cvdeploy/tensor.h"

namespace cvdeploy::backends::ort {

Ort::Env& Environment() {
  static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "cvdeploy");
  return env;
}

int ResolveThreads(int requested) { return requested > 0 ? requested : PhysicalCores(); }

Ort::SessionOptions SessionPolicy(int threads, bool spin, GraphOptimization level) {
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(threads);
  so.SetInterOpNumThreads(1);
  // By default engine threads block instead of spinning between runs. Measured with cvdeploy
  // bench on 2 cores (docs/performance.md): a spinning thread takes the core that decode,
  // letterbox and postprocess need, so with spinning the whole pipeline was slower over the
  // bare engine (1.04-1.09x without decode) than without (1.02x) at the same end-to-end
  // latency. The model tools get it too: they letterbox, histogram and compare on the same
  // cores. `spin` (Spin::kOn) is for one call that owns every core.
  so.AddConfigEntry("session.intra_op.allow_spinning", spin ? "1" : "0");
  so.AddConfigEntry("session.inter_op.allow_spinning", spin ? "1" : "0");
  so.AddConfigEntry("session.force_spinning_stop", spin ? "0" : "1");
  switch (level) {
    case GraphOptimization::kDisabled:
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_DISABLE_ALL);
      break;
    case GraphOptimization::kBasic:
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_BASIC);
      break;
    case GraphOptimization::kExtended:
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_EXTENDED);
      break;
    default:
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  }
  return so;
}

std::string EngineMessage(const Ort::Exception& e) {
  const std::string s = e.what();
  return s.substr(0, s.find('\n'));
}

EngineError FromOrt(ErrorCode code, const std::string& context, const Ort::Exception& e) {
  const std::string message = EngineMessage(e);
  return EngineError(code, context + ": " + message, message);
}

std::string ElementTypeName(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
      return std::string(DataTypeName(DataType::kBool));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      return std::string(DataTypeName(DataType::kUint8));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
      return std::string(DataTypeName(DataType::kUint16));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
      return std::string(DataTypeName(DataType::kUint32));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64:
      return std::string(DataTypeName(DataType::kUint64));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      return std::string(DataTypeName(DataType::kInt8));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      return std::string(DataTypeName(DataType::kInt16));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return std::string(DataTypeName(DataType::kInt32));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return std::string(DataTypeName(DataType::kInt64));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      return std::string(DataTypeName(DataType::kFloat16));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return std::string(DataTypeName(DataType::kFloat32));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      return std::string(DataTypeName(DataType::kFloat64));
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16:
      return "bfloat16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING:
      return "string";
    default:
      return "type" + std::to_string(static_cast<int>(type));
  }
}

void ToHalf(const float* in, size_t count, Ort::Float16_t* out) {
  for (size_t i = 0; i < count; ++i) out[i] = Ort::Float16_t(in[i]);
}

void ToFloat(const Ort::Float16_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = in[i].ToFloat();
}

const Ort::MemoryInfo& CpuMemory() {
  static const Ort::MemoryInfo cpu =
      Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  return cpu;
}

}  // namespace cvdeploy::backends::ort
