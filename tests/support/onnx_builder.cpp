// SPDX-License-Identifier: Apache-2.0
#include "support/onnx_builder.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

#include <onnx/onnx_pb.h>

namespace cvdeploy::testing {
namespace {

void SetShape(onnx::ValueInfoProto* info, const std::vector<int64_t>& dims,
              const std::vector<std::string>& dim_names) {
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto* shape = tensor->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* dim = shape->add_dim();
    if (dims[i] >= 0) {
      dim->set_dim_value(dims[i]);
    } else if (i < dim_names.size() && !dim_names[i].empty()) {
      dim->set_dim_param(dim_names[i]);
    } else {
      dim->set_dim_param(i == 0 ? "batch" : "dim" + std::to_string(i));
    }
  }
}

void AddFloatInitializer(onnx::GraphProto* graph, const std::string& name,
                         const std::vector<int64_t>& dims, const std::vector<float>& values) {
  onnx::TensorProto* tensor = graph->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) tensor->add_dims(d);
  // raw_data is little-endian float32, which is the host layout on every target we build for.
  std::string raw(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  tensor->set_raw_data(raw);
}

void AddInt64Initializer(onnx::GraphProto* graph, const std::string& name,
                         const std::vector<int64_t>& values) {
  onnx::TensorProto* tensor = graph->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto_DataType_INT64);
  tensor->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) tensor->add_int64_data(v);
}

onnx::NodeProto* AddNode(onnx::GraphProto* graph, const std::string& op,
                         const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name(output + "_" + op);
  for (const auto& input : inputs) node->add_input(input);
  node->add_output(output);
  return node;
}

void AddIntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
  onnx::AttributeProto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto_AttributeType_INT);
  attr->set_i(value);
}

onnx::ModelProto NewModel(int64_t ir_version, int64_t opset, const std::string& producer) {
  onnx::ModelProto model;
  model.set_ir_version(ir_version);
  model.set_producer_name(producer);
  model.set_producer_version("1");
  onnx::OperatorSetIdProto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  return model;
}

std::vector<uint8_t> Serialize(const onnx::ModelProto& model) {
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw std::runtime_error("ModelProto serialization failed");
  return {bytes.begin(), bytes.end()};
}

}  // namespace

std::vector<uint8_t> BuildModel(const SyntheticModel& spec) {
  if (spec.outputs.empty()) throw std::invalid_argument("synthetic model needs an output");
  if (spec.input_shape.empty()) throw std::invalid_argument("synthetic model needs an input");
  onnx::ModelProto model = NewModel(spec.ir_version, spec.opset, spec.producer_name);
  for (const auto& [key, value] : spec.metadata) {
    onnx::StringStringEntryProto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(spec.graph_name);
  onnx::ValueInfoProto* input = graph->add_input();
  input->set_name(spec.input_name);
  SetShape(input, spec.input_shape, spec.input_dim_names);

  // batch = Gather(Shape(input), [0]) : int64 [1], shared by every output.
  AddInt64Initializer(graph, "zero_index", {0});
  AddNode(graph, "Shape", {spec.input_name}, "input_shape");
  AddIntAttribute(AddNode(graph, "Gather", {"input_shape", "zero_index"}, "batch_size"), "axis", 0);

  for (const SyntheticOutput& out : spec.outputs) {
    if (out.shape.size() < 2) {
      throw std::invalid_argument("output " + out.name +
                                  ": needs a batch dim and at least one more");
    }
    std::vector<int64_t> item_dims(out.shape.begin() + 1, out.shape.end());
    size_t count = 1;
    for (int64_t d : item_dims) {
      if (d <= 0) throw std::invalid_argument("output " + out.name + ": non-positive dim");
      count *= static_cast<size_t>(d);
    }
    if (count != out.values.size()) {
      throw std::invalid_argument("output " + out.name + ": " + std::to_string(out.values.size()) +
                                  " values for " + std::to_string(count) + " elements");
    }
    std::vector<int64_t> const_dims = item_dims;
    const_dims.insert(const_dims.begin(), 1);
    AddFloatInitializer(graph, out.name + "_values", const_dims, out.values);
    AddInt64Initializer(graph, out.name + "_item_dims", item_dims);
    AddIntAttribute(AddNode(graph, "Concat", {"batch_size", out.name + "_item_dims"},
                            out.name + "_target_shape"),
                    "axis", 0);
    AddNode(graph, "Expand", {out.name + "_values", out.name + "_target_shape"}, out.name);

    std::vector<int64_t> declared = out.shape;
    std::vector<std::string> names;
    declared[0] = spec.input_shape[0];
    if (declared[0] < 0) {
      names.push_back(spec.input_dim_names.empty() || spec.input_dim_names[0].empty()
                          ? "batch"
                          : spec.input_dim_names[0]);
    }
    onnx::ValueInfoProto* info = graph->add_output();
    info->set_name(out.name);
    SetShape(info, declared, names);
  }
  return Serialize(model);
}

void WriteBytes(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot write " + path);
}

void WriteModel(const SyntheticModel& model, const std::string& path) {
  WriteBytes(BuildModel(model), path);
}

std::vector<uint8_t> BuildNonYoloModel() {
  onnx::ModelProto model = NewModel(8, 17, "cvdeploy-tests");
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name("not_yolo");
  onnx::ValueInfoProto* input = graph->add_input();
  input->set_name("x");
  SetShape(input, {1, 10}, {});
  AddNode(graph, "Relu", {"x"}, "y");
  onnx::ValueInfoProto* output = graph->add_output();
  output->set_name("y");
  SetShape(output, {1, 10}, {});
  return Serialize(model);
}

std::vector<uint8_t> BuildWrongRankModel() {
  SyntheticModel spec;
  spec.input_shape = {1, 3, 640};
  spec.outputs.push_back({"output0", {1, 6, 84}, std::vector<float>(6 * 84, 0.f)});
  return BuildModel(spec);
}

std::string NamesDict(const std::vector<std::string>& names) {
  std::string dict = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(i) + ": '" + names[i] + "'";
  }
  return dict + "}";
}

std::map<std::string, std::string> UltralyticsMetadata(const std::string& task,
                                                       const std::vector<std::string>& names,
                                                       int imgsz_h, int imgsz_w) {
  // Built with += rather than "[" + ...: GCC 12 reports a false -Wrestrict on the latter.
  std::string imgsz = "[";
  imgsz += std::to_string(imgsz_h);
  imgsz += ", ";
  imgsz += std::to_string(imgsz_w);
  imgsz += "]";
  return {
      {"description", "synthetic test model"},
      {"author", "cvdeploy tests"},
      {"version", "8.3.0"},
      {"task", task},
      {"names", NamesDict(names)},
      {"imgsz", imgsz},
      {"stride", "32"},
      {"batch", "1"},
  };
}

}  // namespace cvdeploy::testing
