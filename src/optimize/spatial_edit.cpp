// SPDX-License-Identifier: Apache-2.0
#include "optimize/spatial_edit.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"

namespace cvdeploy::optimize {
namespace {

constexpr const char* kPrefix = "/cvdeploy_dynamic_shape/";

Error Fail(const std::string& name, const std::string& reason) {
  return BadInput(name + ": cannot make height/width dynamic: " + reason);
}

// a + b through append (g++ 12 warns falsely about chains of std::string operator+).
std::string Cat(std::string a, const std::string& b) {
  a.append(b);
  return a;
}

std::string IntsText(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s.append(", ");
    s.append(std::to_string(v[i]));
  }
  return s + "]";
}

// One detection level: its stride and its map size at the export size.
struct Level {
  int64_t stride, h, w;
};

// Per-anchor values of the export: grid x, grid y and stride of every anchor, level by level
// in the order the head concatenates them (row-major within a level).
struct Anchors {
  std::vector<float> x, y, stride;
  size_t size() const { return x.size(); }
};

Anchors ExportAnchors(const std::vector<Level>& levels) {
  Anchors a;
  for (const Level& l : levels) {
    for (int64_t y = 0; y < l.h; ++y) {
      for (int64_t x = 0; x < l.w; ++x) {
        a.x.push_back(static_cast<float>(x));
        a.y.push_back(static_cast<float>(y));
        a.stride.push_back(static_cast<float>(l.stride));
      }
    }
  }
  return a;
}

// How a float constant with one entry per anchor on its last axis is computed from the grid.
struct AnchorForm {
  enum Kind { kStride, kGrid } kind = kStride;
  float offset = 0;           // kGrid: x + offset, y + offset
  bool times_stride = false;  // kGrid: (x + offset) * stride
};

bool Near(float a, float b) { return std::fabs(a - b) <= 1e-5f * std::max(1.0f, std::fabs(b)); }

// Recognizes the anchor grid ([.., 2, N]: rows x and y) and the strides ([.., 1, N]).
std::optional<AnchorForm> RecognizeAnchors(const std::vector<float>& v, size_t rows,
                                           const Anchors& a) {
  const size_t n = a.size();
  if (rows == 1) {
    for (size_t j = 0; j < n; ++j) {
      if (!Near(v[j], a.stride[j])) return std::nullopt;
    }
    return AnchorForm{};
  }
  if (rows != 2) return std::nullopt;
  for (bool times_stride : {false, true}) {
    AnchorForm f{AnchorForm::kGrid, times_stride ? v[0] / a.stride[0] : v[0], times_stride};
    bool ok = true;
    for (size_t j = 0; j < n && ok; ++j) {
      const float m = times_stride ? a.stride[j] : 1.0f;
      ok = Near(v[j], (a.x[j] + f.offset) * m) && Near(v[n + j], (a.y[j] + f.offset) * m);
    }
    if (ok) return f;
  }
  return std::nullopt;
}

// Appends the nodes that compute, from the graph input's shape, what the export baked. New
// nodes go before every original node (they read only the graph input and own constants).
class ShapeSubgraph {
 public:
  ShapeSubgraph(GraphIndex& index, const std::string& input, const std::vector<Level>& levels)
      : index_(index), levels_(levels) {
    const std::string shape = Add("Shape", {input}, "input_shape");
    const std::string axis0 = Ints("axis0", {0});
    hw_full_[0] = Add("Slice", {shape, Ints("two", {2}), Ints("three", {3}), axis0}, "height");
    hw_full_[1] = Add("Slice", {shape, Ints("three", {3}), Ints("four", {4}), axis0}, "width");
  }

  // Map height and width ([1] int64 each) of the level with stride `s`: ceil(size / s), the
  // size the stride-2 convolutions (padding k/2) produce.
  std::pair<std::string, std::string> MapSize(int64_t s) {
    auto& hw = map_size_[s];
    if (hw.first.empty()) {
      const std::string sm1 = Ints(Cat("s_minus_1_", std::to_string(s)), {s - 1});
      const std::string sv = Ints(Cat("stride_", std::to_string(s)), {s});
      hw.first =
          Add("Div", {Add("Add", {hw_full_[0], sm1}, "h_plus"), sv}, Cat("h", std::to_string(s)));
      hw.second =
          Add("Div", {Add("Add", {hw_full_[1], sm1}, "w_plus"), sv}, Cat("w", std::to_string(s)));
    }
    return hw;
  }

  // [2, N] float: grid x in row 0, y in row 1, over every level.
  const std::string& Grid() {
    if (grid_.empty()) {
      std::vector<std::string> parts;
      for (const Level& l : levels_) {
        const auto [h, w] = MapSize(l.stride);
        const std::string hw = Add("Concat", {h, w}, "hw", Axis(0));
        const std::string xs = Range(w), ys = Range(h);
        const std::string gx = Add("Expand", {Reshape(xs, {1, -1}), hw}, "grid_x");
        const std::string gy = Add("Expand", {Reshape(ys, {-1, 1}), hw}, "grid_y");
        parts.push_back(
            Add("Concat", {Reshape(gx, {1, -1}), Reshape(gy, {1, -1})}, "grid", Axis(0)));
      }
      grid_ = Add("Concat", parts, "anchor_grid", Axis(1));
    }
    return grid_;
  }

  // [N] float: the stride of every anchor.
  const std::string& Strides() {
    if (strides_.empty()) {
      std::vector<std::string> parts;
      for (const Level& l : levels_) {
        const auto [h, w] = MapSize(l.stride);
        const std::string count = Add("Mul", {h, w}, "anchors");
        const std::string value =
            Floats(Cat("stride_f_", std::to_string(l.stride)), {1}, {static_cast<float>(l.stride)});
        parts.push_back(Add("Expand", {value, count}, "level_strides"));
      }
      strides_ = Add("Concat", parts, "anchor_strides", Axis(0));
    }
    return strides_;
  }

  // The value `form` describes, shaped like `dims` with its last (anchor) axis -1.
  std::string AnchorValue(const AnchorForm& form, std::vector<int64_t> dims) {
    std::string v;
    if (form.kind == AnchorForm::kStride) {
      v = Strides();
    } else {
      v = Grid();
      if (form.offset != 0) v = Add("Add", {v, Floats("offset", {}, {form.offset})}, "grid_offset");
      if (form.times_stride) v = Add("Mul", {v, Reshape(Strides(), {1, -1})}, "grid_scaled");
    }
    dims.back() = -1;
    return Reshape(v, dims);
  }

  // `prefix` followed by the map size of the level with stride `s` ([rank] int64).
  std::string ShapeEndingInMap(const std::vector<int64_t>& prefix, int64_t s) {
    const auto [h, w] = MapSize(s);
    return Add("Concat", {Ints("target_prefix", prefix), h, w}, "map_target", Axis(0));
  }

  std::vector<onnx::NodeProto>& nodes() { return nodes_; }

 private:
  static onnx::AttributeProto Axis(int64_t axis) {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(axis);
    return a;
  }

  std::string Add(const std::string& op, const std::vector<std::string>& inputs,
                  const std::string& base, std::optional<onnx::AttributeProto> attr = {}) {
    onnx::NodeProto node;
    node.set_op_type(op);
    node.set_name(index_.UniqueName(Cat(kPrefix, base)));
    for (const auto& in : inputs) node.add_input(in);
    const std::string out = index_.UniqueName(Cat(Cat(kPrefix, base), "_output"));
    node.add_output(out);
    if (attr) *node.add_attribute() = *attr;
    nodes_.push_back(std::move(node));
    return out;
  }

  std::string Constant(const std::string& base, onnx::TensorProto t) {
    onnx::AttributeProto a;
    a.set_name("value");
    a.set_type(onnx::AttributeProto::TENSOR);
    t.clear_name();
    *a.mutable_t() = std::move(t);
    return Add("Constant", {}, base, a);
  }
  std::string Ints(const std::string& base, const std::vector<int64_t>& v) {
    return Constant(base, Int64Tensor("", {static_cast<int64_t>(v.size())}, v));
  }
  std::string Floats(const std::string& base, const std::vector<int64_t>& dims,
                     const std::vector<float>& v) {
    return Constant(base, FloatTensor("", dims, v));
  }
  std::string Reshape(const std::string& x, const std::vector<int64_t>& shape) {
    return Add("Reshape", {x, Ints("shape", shape)}, "reshape");
  }
  // 0, 1, ..., n-1 as float ([n]) from a [1] int64 count.
  std::string Range(const std::string& n) {
    onnx::AttributeProto to;
    to.set_name("to");
    to.set_type(onnx::AttributeProto::INT);
    to.set_i(onnx::TensorProto::FLOAT);
    // Ints("scalar", {}) is a [0]-shaped tensor: Reshape to it gives a scalar.
    const std::string scalar = Add("Reshape", {n, Ints("scalar", {})}, "count");
    const std::string limit = Add("Cast", {scalar}, "limit", to);
    return Add("Range", {Floats("zero", {}, {0.f}), limit, Floats("one", {}, {1.f})}, "range");
  }

  GraphIndex& index_;
  const std::vector<Level>& levels_;
  std::string hw_full_[2];
  std::map<int64_t, std::pair<std::string, std::string>> map_size_;
  std::string grid_, strides_;
  std::vector<onnx::NodeProto> nodes_;
};

std::string ShapeText(const onnx::ValueInfoProto& v) {
  std::string s = v.name() + " [";
  const auto& dims = v.type().tensor_type().shape().dim();
  for (int i = 0; i < dims.size(); ++i) {
    if (i) s.append(", ");
    s.append(dims[i].has_dim_value() ? std::to_string(dims[i].dim_value())
                                     : (dims[i].dim_param().empty() ? "?" : dims[i].dim_param()));
  }
  return s + "]";
}

std::string MetadataValue(const onnx::ModelProto& model, const std::string& key) {
  for (const auto& p : model.metadata_props()) {
    if (p.key() == key) return p.value();
  }
  return "";
}

// The detection levels from the metadata's (largest) stride: 8, 16, ..., stride.
std::vector<Level> Levels(const onnx::ModelProto& model, int64_t h, int64_t w,
                          const std::string& name) {
  const std::string task = MetadataValue(model, "task");
  const std::string stride_text = MetadataValue(model, "stride");
  if (task == "classify") {
    throw Fail(name,
               "a classify model needs no rewrite: it has no anchor grid, and images are "
               "resized to its fixed input size");
  }
  if (task.empty() || stride_text.empty()) {
    throw Fail(name,
               "not an Ultralytics export (no 'task' and 'stride' metadata); only YOLOv8/YOLO11 "
               "detect, segment, pose and OBB graphs can be rewritten");
  }
  if (task != "detect" && task != "segment" && task != "pose" && task != "obb") {
    throw Fail(name, "task '" + task + "' is not one of detect, segment, pose, obb");
  }
  int64_t max_stride = 0;
  try {
    max_stride = std::stoll(stride_text);
  } catch (const std::exception&) {
  }
  if (max_stride < 8 || max_stride > 128 || (max_stride & (max_stride - 1))) {
    throw Fail(name, "metadata stride '" + stride_text + "' is not a power of two in [8, 128]");
  }
  std::vector<Level> levels;
  for (int64_t s = 8; s <= max_stride; s *= 2)
    levels.push_back({s, (h + s - 1) / s, (w + s - 1) / s});
  return levels;
}

// Reshape target [.., h_s, w_s] (a level's map) -> taken from the input's shape; a target
// holding N or a level's h*w -> -1 there. Returns false when the target does not depend on the
// export size; throws when it does in a way this cannot rewrite.
bool RewriteReshapeTarget(onnx::GraphProto& graph, GraphIndex& index, ShapeSubgraph& sub,
                          onnx::NodeProto& node, const std::vector<Level>& levels,
                          const std::set<int64_t>& sized, const std::string& name) {
  const std::string in = node.input(1);
  std::vector<int64_t> v = IntData(*index.Constant(in));
  const bool depends =
      std::any_of(v.begin(), v.end(), [&](int64_t x) { return sized.count(x) > 0; });
  std::optional<int64_t> map_stride;
  if (v.size() >= 3) {
    for (const Level& l : levels) {
      if (v[v.size() - 2] == l.h && v.back() == l.w && l.h * l.w > 1) map_stride = l.stride;
    }
  }
  if (!depends && !map_stride) return false;
  if (map_stride) {
    if (std::count_if(v.begin(), v.end() - 2, [&](int64_t x) { return sized.count(x); })) {
      throw Fail(name, NodeLabel(node) + " has the target shape " + IntsText(v) +
                           " that bakes the export size twice");
    }
    node.set_input(1, sub.ShapeEndingInMap({v.begin(), v.end() - 2}, *map_stride));
    return true;
  }
  if (std::count(v.begin(), v.end(), -1) ||
      std::count_if(v.begin(), v.end(), [&](int64_t x) { return sized.count(x); }) > 1) {
    throw Fail(name, NodeLabel(node) + " has the target shape " + IntsText(v) +
                         " in which more than one axis depends on the input size");
  }
  for (int64_t& x : v) {
    if (sized.count(x)) x = -1;
  }
  const std::string fresh = index.UniqueName(in + "_dynamic_shape");
  *graph.add_initializer() = Int64Tensor(fresh, {static_cast<int64_t>(v.size())}, v);
  node.set_input(1, fresh);
  return true;
}

// The graph's one image input, [batch, 3, H, W] with H and W fixed.
onnx::ValueInfoProto* ImageInput(onnx::GraphProto& graph, const std::string& name) {
  std::set<std::string> initializer_names;
  for (const auto& t : graph.initializer()) initializer_names.insert(t.name());
  onnx::ValueInfoProto* input = nullptr;
  for (auto& in : *graph.mutable_input()) {
    if (initializer_names.count(in.name())) continue;
    if (input) throw Fail(name, "the graph has more than one input");
    input = &in;
  }
  if (!input) throw Fail(name, "the graph has no input");
  const std::string what = "input '" + input->name() + "'";
  if (!input->type().has_tensor_type() || !input->type().tensor_type().has_shape() ||
      input->type().tensor_type().shape().dim_size() != 4) {
    throw Fail(name, what + " is not an NCHW image tensor of rank 4");
  }
  auto* in_dims = input->mutable_type()->mutable_tensor_type()->mutable_shape();
  if (!in_dims->dim(2).has_dim_value() || !in_dims->dim(3).has_dim_value()) {
    throw Fail(name, what + " already has a dynamic height/width (" + ShapeText(*input) + ")");
  }
  return input;
}

// Puts `nodes` before the graph's own nodes and drops the replaced constants nobody reads.
void PrependAndPrune(onnx::GraphProto& graph, std::vector<onnx::NodeProto> nodes,
                     const std::map<std::string, std::string>& replaced) {
  {
    for (auto& n : *graph.mutable_node()) nodes.push_back(std::move(n));
    graph.clear_node();
    for (auto& n : nodes) *graph.add_node() = std::move(n);
  }
  std::set<std::string> read;
  for (const auto& n : graph.node())
    for (const auto& in : n.input()) read.insert(in);
  for (const auto& o : graph.output()) read.insert(o.name());
  auto* inits = graph.mutable_initializer();
  inits->erase(std::remove_if(inits->begin(), inits->end(),
                              [&](const onnx::TensorProto& t) {
                                return replaced.count(t.name()) && !read.count(t.name());
                              }),
               inits->end());
  for (int i = graph.input_size() - 1; i >= 0; --i) {  // IR < 4 lists initializers as inputs
    if (replaced.count(graph.input(i).name()) && !read.count(graph.input(i).name()))
      graph.mutable_input()->DeleteSubrange(i, 1);
  }
}

// "height"/"width" on the input, "anchors" and "mask_height"/"mask_width" on the outputs.
void NameSymbolicAxes(onnx::GraphProto& graph, onnx::TensorShapeProto& in_dims, int64_t h0,
                      int64_t w0, int64_t n0) {
  in_dims.mutable_dim(2)->set_dim_param("height");
  in_dims.mutable_dim(3)->set_dim_param("width");
  for (auto& out : *graph.mutable_output()) {
    if (!out.type().tensor_type().has_shape()) continue;
    auto* shape = out.mutable_type()->mutable_tensor_type()->mutable_shape();
    for (int d = 0; d < shape->dim_size(); ++d) {
      if (shape->dim(d).has_dim_value() && shape->dim(d).dim_value() == n0)
        shape->mutable_dim(d)->set_dim_param("anchors");
    }
    if (shape->dim_size() == 4 && shape->dim(2).has_dim_value() && shape->dim(3).has_dim_value()) {
      const int64_t mh = shape->dim(2).dim_value(), mw = shape->dim(3).dim_value();
      if (mh > 0 && mw > 0 && h0 % mh == 0 && w0 % mw == 0 && h0 / mh == w0 / mw) {
        shape->mutable_dim(2)->set_dim_param("mask_height");
        shape->mutable_dim(3)->set_dim_param("mask_width");
      }
    }
  }
}

}  // namespace

std::vector<uint8_t> MakeSpatialDynamic(const std::vector<uint8_t>& model_bytes,
                                        const std::string& name, DynamicShapeReport* report) {
  DynamicShapeReport local;
  DynamicShapeReport& r = report ? *report : local;
  r = DynamicShapeReport{};
  if (model_bytes.empty()) throw BadInput(name + ": file is empty (0 bytes)");
  onnx::ModelProto model = ParseModel(model_bytes, name);
  if (!model.has_graph() || model.graph().node_size() == 0) {
    throw BadInput(name + ": not a valid ONNX model (no graph or nodes)");
  }
  onnx::GraphProto& graph = *model.mutable_graph();
  const int opset = DefaultOpset(model);
  if (opset < 11) {
    throw Fail(name, "opset " + std::to_string(opset) +
                         " has no Range operator (opset 11) to compute the anchor grid");
  }

  // 1. The image input: [batch, 3, H, W] with H and W fixed.
  onnx::ValueInfoProto* input = ImageInput(graph, name);
  auto* in_dims = input->mutable_type()->mutable_tensor_type()->mutable_shape();
  const int64_t h0 = in_dims->dim(2).dim_value(), w0 = in_dims->dim(3).dim_value();
  const std::vector<Level> levels = Levels(model, h0, w0, name);
  r.export_height = h0, r.export_width = w0;
  for (const Level& l : levels) r.strides.push_back(l.stride);
  const Anchors anchors = ExportAnchors(levels);
  const int64_t n0 = static_cast<int64_t>(anchors.size());
  r.export_anchors = n0;
  if (h0 % levels.back().stride || w0 % levels.back().stride) {
    throw Fail(name, "the export size " + std::to_string(h0) + "x" + std::to_string(w0) +
                         " is not a multiple of the stride " +
                         std::to_string(levels.back().stride));
  }
  // Values that stand for the export size in shape operands: N and each level's h*w.
  std::set<int64_t> sized = {n0};
  for (const Level& l : levels) sized.insert(l.h * l.w);

  // 2. The outputs: the anchor axis (N) must be there, or this is not a YOLO head we know.
  bool anchor_axis = false;
  for (const auto& out : graph.output()) {
    for (const auto& d : out.type().tensor_type().shape().dim())
      anchor_axis = anchor_axis || (d.has_dim_value() && d.dim_value() == n0);
  }
  if (!anchor_axis) {
    throw Fail(name, "no output has " + std::to_string(n0) + " anchors (strides 8.." +
                         std::to_string(levels.back().stride) + " at " + std::to_string(h0) + "x" +
                         std::to_string(w0) + "); the head is not one this rewrite knows");
  }

  GraphIndex index(graph);
  ShapeSubgraph sub(index, input->name(), levels);
  std::map<std::string, std::string> replaced;  // anchor constant -> its computed value
  int reshapes = 0;
  for (int i = 0; i < graph.node_size(); ++i) {
    onnx::NodeProto& node = *graph.mutable_node(i);
    const std::string& op = node.op_type();
    if (op == "Constant") continue;
    for (int k = 0; k < node.input_size(); ++k) {
      const std::string in = node.input(k);
      if (in.empty()) continue;
      if (auto it = replaced.find(in); it != replaced.end()) {
        node.set_input(k, it->second);
        continue;
      }
      const onnx::TensorProto* t = index.Constant(in);
      if (!t) continue;
      const std::vector<int64_t> dims(t->dims().begin(), t->dims().end());
      const auto type = t->data_type();
      const bool is_float = type == onnx::TensorProto::FLOAT ||
                            type == onnx::TensorProto::FLOAT16 || type == onnx::TensorProto::DOUBLE;
      // 3. Float constants with one entry per anchor: anchor grid and strides.
      if (is_float && !dims.empty() && dims.back() == n0) {
        const std::vector<float> values = FloatData(*t);
        const size_t rows = values.size() / static_cast<size_t>(n0);
        const auto form = RecognizeAnchors(values, rows, anchors);
        if (!form) {
          throw Fail(name, NodeLabel(node) + " reads the constant '" + in + "' " + IntsText(dims) +
                               " with one entry per anchor that is neither the " +
                               "anchor grid nor the strides");
        }
        const std::string value = sub.AnchorValue(*form, dims);
        replaced[in] = value;
        node.set_input(k, value);
        ++r.anchor_constants;
        continue;
      }
      if (type != onnx::TensorProto::INT64) continue;
      const std::vector<int64_t> v = IntData(*t);
      const bool depends =
          std::any_of(v.begin(), v.end(), [&](int64_t x) { return sized.count(x) > 0; });
      // 4. Reshape targets: [.., h_s, w_s] from the input's shape; N or h*w -> -1.
      if (op == "Reshape" && k == 1) {
        if (RewriteReshapeTarget(graph, index, sub, node, levels, sized, name)) ++reshapes;
        continue;
      }
      // 5. Any other integer operand that holds the export size cannot follow the input.
      if (depends) {
        throw Fail(name, NodeLabel(node) + " reads the constant '" + in + "' " + IntsText(v) +
                             ", which depends on the " + std::to_string(h0) + "x" +
                             std::to_string(w0) + " export size");
      }
    }
    if (op == "Resize" && node.input_size() > 3 && !node.input(3).empty()) {
      throw Fail(name, NodeLabel(node) +
                           " resizes to fixed output sizes (only scales follow the "
                           "input size)");
    }
  }
  if (r.anchor_constants == 0) {
    throw Fail(name, "found no anchor grid or stride constants of " + std::to_string(n0) +
                         " anchors; the head is not one this rewrite knows");
  }
  r.reshapes_rewritten = reshapes;

  // 6. New nodes first, then the original ones; drop the constants no node reads any more.
  PrependAndPrune(graph, std::move(sub.nodes()), replaced);
  // 7. Symbolic axes on the graph's inputs and outputs; intermediate shapes are stale.
  NameSymbolicAxes(graph, *in_dims, h0, w0, n0);
  graph.clear_value_info();

  r.input = ShapeText(*input);
  r.notes.push_back(std::to_string(r.anchor_constants) + " anchor grid / stride constant(s) of " +
                    std::to_string(n0) +
                    " anchors now computed from the input's shape (Shape -> Range -> Expand)");
  if (reshapes) {
    r.notes.push_back(std::to_string(reshapes) +
                      " Reshape target(s) that baked the export size now -1 or shape-derived");
  }
  r.notes.push_back("metadata imgsz kept (the export size; the default letterbox long side)");

  CheckModel(model, name);  // a graph the checker refuses is a bug of this rewrite (kRuntime)
  std::vector<uint8_t> bytes = SerializeModel(model);
  VerifyDynamicShape(model_bytes, bytes, name, r);

  nlohmann::ordered_json step;
  step["tool"] = "convert";
  step["conversion"] = "dynamic-shape";
  step["axes"] = {"height", "width"};
  step["export_size"] = {h0, w0};
  step["strides"] = r.strides;
  step["anchor_constants"] = r.anchor_constants;
  step["reshapes_rewritten"] = r.reshapes_rewritten;
  step["max_diff_at_export_size"] = r.max_diff_at_export;
  AddOptimizationRecord(model, std::move(step));
  return SerializeModel(model);
}

}  // namespace cvdeploy::optimize
