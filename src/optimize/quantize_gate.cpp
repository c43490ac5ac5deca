// SPDX-License-Identifier: Apache-2.0
#include "optimize/quantize_gate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "model/onnx_model.h"

namespace cvdeploy::optimize {
namespace {

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

// Runs `model` with `tensors` exposed as extra outputs over `inputs` (the engine inputs
// Predictor::Prepare made, one image each, fed to `input_name`); returns, per tensor, the
// values of every image concatenated.
std::map<std::string, std::vector<float>> RunWithOutputs(onnx::ModelProto model,
                                                         const std::vector<std::string>& tensors,
                                                         const std::string& input_name,
                                                         const std::vector<Tensor>& inputs,
                                                         const std::string& name, int threads) {
  std::set<std::string> outputs;
  for (const auto& o : model.graph().output()) outputs.insert(o.name());
  // Tensors that already are graph outputs are not exposed (nor measured), as before.
  std::vector<std::string> exposed;
  for (const auto& t : tensors) {
    if (outputs.count(t)) continue;
    auto* out = model.mutable_graph()->add_output();
    out->set_name(t);
    out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    exposed.push_back(t);
  }
  backends::BackendOptions options;
  options.intra_op_threads = threads;
  const auto engine = backends::CreateOrtGraphBackend(SerializeModel(model), name, options);
  std::map<std::string, std::vector<float>> values;
  for (const Tensor& input : inputs) {
    engine->RunNamed({{input_name, input}}, exposed,
                     [&](const std::vector<backends::OutputView>& views) {
                       for (size_t k = 0; k < views.size(); ++k) {
                         auto& v = values[exposed[k]];
                         const TensorView& t = views[k].tensor;
                         v.insert(v.end(), t.Data<float>(), t.Data<float>() + t.elements());
                       }
                     });
  }
  return values;
}

double NoiseToSignal(const std::vector<float>& reference, const std::vector<float>& test) {
  if (reference.size() != test.size() || reference.empty()) return 0;
  double noise = 0, signal = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double d = static_cast<double>(test[i]) - reference[i];
    noise += d * d;
    signal += static_cast<double>(reference[i]) * reference[i];
  }
  return noise / std::max(signal, 1e-12);
}

std::vector<LayerSensitivity> RankLayers(const std::vector<uint8_t>& float_bytes,
                                         const std::string& name, const onnx::ModelProto& prepared,
                                         const onnx::ModelProto& quantized, const QuantPlan& plan,
                                         const Dataset& dataset, const GateOptions& gate) {
  // Inputs: the first images of the dataset, preprocessed by the predictor itself (the one
  // preprocessing implementation), as validation feeds them.
  SessionOptions session;
  session.intra_op_threads = gate.threads;
  const auto predictor = Predictor::LoadFromMemory(float_bytes, name, session);
  const std::string input_name = predictor->info().inputs.at(0).name;
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < dataset.images.size() && static_cast<int>(i) < gate.sensitivity_images;
       ++i) {
    const Batch batch = predictor->Prepare({ReadImage(dataset.images[i].image_path)});
    inputs.push_back(Tensor::CopyOf(batch.input()));
  }
  std::vector<std::string> tensors;
  std::set<std::string> seen;
  for (const auto& layer : plan.layers) {
    for (const auto& t : layer.inputs) {
      if (seen.insert(t).second) tensors.push_back(t);
    }
    if (seen.insert(layer.output).second) tensors.push_back(layer.output);
  }
  const auto reference = RunWithOutputs(prepared, tensors, input_name, inputs, name, gate.threads);
  const auto test = RunWithOutputs(quantized, tensors, input_name, inputs, name, gate.threads);
  std::map<std::string, double> nsr;
  for (const auto& t : tensors) {
    auto r = reference.find(t), q = test.find(t);
    nsr[t] = (r == reference.end() || q == test.end()) ? 0 : NoiseToSignal(r->second, q->second);
  }
  std::vector<LayerSensitivity> ranking;
  for (const auto& layer : plan.layers) {
    double in = 0;
    for (const auto& t : layer.inputs) in = std::max(in, nsr[t]);
    ranking.push_back({layer.name, nsr[layer.output], nsr[layer.output] - in});
  }
  std::stable_sort(ranking.begin(), ranking.end(),
                   [](const LayerSensitivity& a, const LayerSensitivity& b) {
                     return a.added_nsr > b.added_nsr;
                   });
  return ranking;
}

}  // namespace

double ValidateBytes(const std::vector<uint8_t>& bytes, const std::string& name,
                     const Dataset& dataset, int threads) {
  SessionOptions session;
  session.intra_op_threads = threads;
  auto predictor = Predictor::LoadFromMemory(bytes, name, session);
  PredictOptions options;  // the defaults of `cvdeploy validate`
  options.conf = 0.001f;
  options.iou = 0.7f;
  return ValidateModel(*predictor, dataset, options).report.box.map50_95;
}

GateResult RunAccuracyGate(const std::vector<uint8_t>& float_bytes, const std::string& name,
                           const onnx::ModelProto& prepared, const CalibrationTable& table,
                           QuantizeOptions options, const onnx::ModelProto& quantized,
                           const Dataset& dataset, const GateOptions& gate) {
  auto log = [&](const std::string& line) {
    if (gate.log) gate.log(line);
  };
  GateResult result;
  result.plan = PlanQuantization(prepared, options);
  result.model = quantized;
  result.map_float = ValidateBytes(float_bytes, name, dataset, gate.threads);
  log(Format("gate: float mAP50-95 %.4f", result.map_float));
  result.map_initial =
      ValidateBytes(SerializeModel(quantized), name + " (int8)", dataset, gate.threads);
  result.validations = 1;
  result.map_final = result.map_initial;
  double best_drop = result.map_float - result.map_initial;
  log(Format("gate: int8 mAP50-95 %.4f, drop %.4f (limit %.4f)", result.map_initial, best_drop,
             gate.max_map_drop));
  if (best_drop <= gate.max_map_drop) {
    result.met = true;
    return result;
  }

  result.ranking = RankLayers(float_bytes, name, prepared, quantized, result.plan, dataset, gate);
  std::map<std::string, std::vector<std::string>> layer_nodes;  // of the fully quantized plan
  for (const auto& layer : result.plan.layers) layer_nodes[layer.name] = layer.nodes;
  const int limit = std::min<int>(gate.max_float_layers, static_cast<int>(result.ranking.size()));
  // One layer at a time for the first four (the usual case: one or two layers matter), then
  // growing steps (2, 4, 8, ...) so the loop needs O(log n) validations at worst.
  int returned = 0, step = 1;
  std::vector<std::string> float_layers;
  while (returned < limit) {
    const int take = std::min(step, limit - returned);
    for (int k = 0; k < take; ++k) {
      const std::string& layer = result.ranking[returned + k].layer;
      float_layers.push_back(layer);
      for (const auto& node : layer_nodes.at(layer)) options.keep_float.insert(node);
    }
    returned += take;
    if (returned >= 4) step *= 2;
    const QuantPlan plan = PlanQuantization(prepared, options);
    onnx::ModelProto model = ApplyQuantization(prepared, plan, table, options);
    const double map =
        ValidateBytes(SerializeModel(model), name + " (int8)", dataset, gate.threads);
    ++result.validations;
    const double drop = result.map_float - map;
    log(Format("gate: %d layer(s) float (last: %s): mAP50-95 %.4f, drop %.4f", returned,
               float_layers.back().c_str(), map, drop));
    if (drop < best_drop) {
      best_drop = drop;
      result.model = std::move(model);
      result.plan = plan;
      result.map_final = map;
      result.float_layers = float_layers;
    }
    if (drop <= gate.max_map_drop) {
      result.met = true;
      break;
    }
  }
  return result;
}

}  // namespace cvdeploy::optimize
