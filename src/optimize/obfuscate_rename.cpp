// SPDX-License-Identifier: Apache-2.0
// The renaming and stripping pass of obfuscation (optimize/obfuscate_graph.h): every name that
// is not API becomes "t" + 8 hex digits from a seeded generator, and every free-text field that
// can carry a name, a path or an origin (doc strings, producer, domain, graph name, metadata)
// goes.
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "optimize/obfuscate_graph.h"

namespace cvdeploy::optimize {
namespace {

// Seeded opaque names: unique, and never a name of the original graph (so no new name can be
// mistaken for, or collide with, an old one).
class OpaqueNames {
 public:
  OpaqueNames(uint64_t seed, const std::set<std::string>& reserved)
      : rng_(seed ^ 0x6e616d6573ULL), reserved_(reserved) {}  // "names": a stream of its own

  std::string Next() {
    for (;;) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "t%08x", static_cast<unsigned>(rng_() >> 32));
      if (!reserved_.count(buf) && used_.insert(buf).second) return buf;
    }
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  const std::set<std::string>& reserved_;
  std::set<std::string> used_;
};

// Old tensor name -> new one; API names (graph inputs and outputs) and "" (an omitted optional
// input) map to themselves.
class TensorNames {
 public:
  TensorNames(OpaqueNames& names, std::set<std::string> kept)
      : names_(names), kept_(std::move(kept)) {}

  std::string Map(const std::string& old) {
    if (old.empty() || kept_.count(old)) return old;
    auto [it, fresh] = map_.try_emplace(old);
    if (fresh) it->second = names_.Next();
    return it->second;
  }
  bool Kept(const std::string& name) const { return kept_.count(name) > 0; }

 private:
  OpaqueNames& names_;
  std::set<std::string> kept_;
  std::map<std::string, std::string> map_;
};

// clear_*() and not mutable_*()->clear(): an empty but present field would still be written.
template <class Proto>
int ClearDoc(Proto* proto) {
  const int had = proto->doc_string().empty() ? 0 : 1;
  proto->clear_doc_string();
  return had;
}

// A tensor inside an attribute (Constant's value) carries a name and a doc string of its own.
int StripTensor(onnx::TensorProto* t) {
  t->clear_name();
  return ClearDoc(t);
}

int StripAttributes(onnx::NodeProto& node) {
  int docs = 0;
  for (auto& attr : *node.mutable_attribute()) {
    docs += ClearDoc(&attr);
    if (attr.has_t()) docs += StripTensor(attr.mutable_t());
    for (auto& t : *attr.mutable_tensors()) docs += StripTensor(&t);
    if (attr.has_sparse_tensor()) {
      docs += StripTensor(attr.mutable_sparse_tensor()->mutable_values());
      StripTensor(attr.mutable_sparse_tensor()->mutable_indices());
    }
    for (auto& st : *attr.mutable_sparse_tensors()) {
      docs += StripTensor(st.mutable_values());
      StripTensor(st.mutable_indices());
    }
  }
  return docs;
}

// Drops initializers listed as graph inputs (IR >= 4 does not need them there; they were
// overridable inputs, not the model's API). Returns the names of the remaining real inputs.
std::set<std::string> ApiNames(onnx::GraphProto& graph, int64_t ir_version,
                               ObfuscateReport& report) {
  std::set<std::string> inits;
  for (const auto& init : graph.initializer()) inits.insert(init.name());
  for (const auto& init : graph.sparse_initializer()) inits.insert(init.values().name());
  std::set<std::string> api;
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> inputs;
  for (const auto& in : graph.input()) {
    if (!inits.count(in.name())) {
      api.insert(in.name());
    } else if (ir_version >= 4) {
      ++report.initializer_inputs_removed;
      continue;
    }
    *inputs.Add() = in;
  }
  graph.mutable_input()->Swap(&inputs);
  for (const auto& out : graph.output()) api.insert(out.name());
  return api;
}

void RenameGraph(onnx::GraphProto& graph, OpaqueNames& names, TensorNames& tensors,
                 ObfuscateReport& report) {
  int docs = 0;
  for (auto& node : *graph.mutable_node()) {
    node.set_name(names.Next());
    docs += ClearDoc(&node);
    for (auto& in : *node.mutable_input()) in = tensors.Map(in);
    for (auto& out : *node.mutable_output()) {
      if (!out.empty() && !tensors.Kept(out)) ++report.values_renamed;
      out = tensors.Map(out);
    }
    docs += StripAttributes(node);
  }
  for (auto& init : *graph.mutable_initializer()) {
    init.set_name(tensors.Map(init.name()));
    docs += ClearDoc(&init);
  }
  for (auto& init : *graph.mutable_sparse_initializer()) {
    init.mutable_values()->set_name(tensors.Map(init.values().name()));
    docs += ClearDoc(init.mutable_values());
    init.mutable_indices()->clear_name();
  }
  report.nodes_renamed = graph.node_size();
  report.initializers_renamed = graph.initializer_size() + graph.sparse_initializer_size();
  for (auto* list : {graph.mutable_input(), graph.mutable_output()}) {
    for (auto& v : *list) {
      v.set_name(tensors.Map(v.name()));  // an initializer input of IR < 3 gets renamed
      docs += ClearDoc(&v);
    }
  }
  for (auto& v : *graph.mutable_value_info()) {
    v.set_name(tensors.Map(v.name()));
    docs += ClearDoc(&v);
    v.mutable_type()->clear_denotation();
    if (v.type().has_tensor_type() && v.type().tensor_type().has_shape()) {
      auto* shape = v.mutable_type()->mutable_tensor_type()->mutable_shape();
      for (auto& d : *shape->mutable_dim()) {
        d.clear_dim_param();  // exporters name them after the op that made them
        d.clear_denotation();
      }
    }
    ++report.value_infos_renamed;
  }
  graph.clear_quantization_annotation();
  docs += ClearDoc(&graph);
  report.doc_strings_removed += docs;
}

void Note(const std::string& field, const char* what, ObfuscateReport& report) {
  if (!field.empty()) report.cleared.push_back(std::string(what) + " '" + field + "'");
}

void StripModel(onnx::ModelProto& model, const ObfuscateOptions& options, ObfuscateReport& report) {
  Note(model.producer_name(), "producer_name", report);
  Note(model.producer_version(), "producer_version", report);
  Note(model.domain(), "domain", report);
  model.clear_producer_name();
  model.clear_producer_version();
  model.clear_domain();
  if (model.model_version() != 0) {
    report.cleared.push_back("model_version " + std::to_string(model.model_version()));
    model.clear_model_version();
  }
  report.doc_strings_removed += ClearDoc(&model);
  // The checker needs a graph name; one every obfuscated model shares says nothing.
  if (model.graph().name() != "main") {
    Note(model.graph().name(), "graph name", report);
    model.mutable_graph()->set_name("main");
  }
  const std::set<std::string> keep(options.keep_metadata.begin(), options.keep_metadata.end());
  google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto> kept;
  for (const auto& prop : model.metadata_props()) {
    (keep.count(prop.key()) ? report.metadata_kept : report.metadata_dropped).push_back(prop.key());
    if (keep.count(prop.key())) *kept.Add() = prop;
  }
  model.mutable_metadata_props()->Swap(&kept);
}

}  // namespace

void CheckObfuscatable(const onnx::ModelProto& model, const std::string& name) {
  const std::string prefix = name + ": cannot obfuscate: ";
  if (model.functions_size() > 0) {
    throw BadInput(prefix + "the model defines local functions ('" + model.functions(0).name() +
                   "'), whose bodies this tool does not rename");
  }
  if (model.training_info_size() > 0) {
    throw BadInput(prefix + "the model carries training information (training_info)");
  }
  for (const auto& node : model.graph().node()) {
    for (const auto& attr : node.attribute()) {
      if (attr.has_g() || attr.graphs_size() > 0) {
        throw BadInput(prefix + node.op_type() + " node '" + node.name() +
                       "' has a subgraph (control flow); subgraphs are not supported");
      }
    }
  }
  for (const auto& init : model.graph().initializer()) {
    if (init.data_location() == onnx::TensorProto::EXTERNAL) {
      throw BadInput(prefix + "initializer '" + init.name() + "' is stored as external data");
    }
  }
}

std::set<std::string> GraphNames(const onnx::GraphProto& graph) {
  std::set<std::string> names;
  for (const auto& node : graph.node()) {
    names.insert(node.name());
    names.insert(node.input().begin(), node.input().end());
    names.insert(node.output().begin(), node.output().end());
  }
  for (const auto& init : graph.initializer()) names.insert(init.name());
  for (const auto& init : graph.sparse_initializer()) names.insert(init.values().name());
  for (const auto* list : {&graph.input(), &graph.output(), &graph.value_info()})
    for (const auto& v : *list) names.insert(v.name());
  names.erase("");
  return names;
}

void RenameAndStrip(onnx::ModelProto& model, const ObfuscateOptions& options,
                    const std::set<std::string>& reserved, ObfuscateReport& report) {
  onnx::GraphProto& graph = *model.mutable_graph();
  OpaqueNames names(options.seed, reserved);
  TensorNames tensors(names, ApiNames(graph, model.ir_version(), report));
  RenameGraph(graph, names, tensors, report);
  StripModel(model, options, report);
  if (options.reorder_initializers) {
    auto& inits = *graph.mutable_initializer();
    for (int i = inits.size() - 1; i > 0; --i) {  // Fisher-Yates on raw draws
      inits.SwapElements(i, static_cast<int>(names.rng()() % static_cast<uint64_t>(i + 1)));
    }
    report.initializers_reordered = true;
  }
}

}  // namespace cvdeploy::optimize
