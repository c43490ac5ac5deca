// SPDX-License-Identifier: Apache-2.0
// The doctor's checks of a model's output layout, axes and precision (doctor_internal.h):
// the same layout rules the loader applies (model/metadata.cpp), restated as findings so that
// each inconsistency is named with its advice instead of stopping at the first.
#include <algorithm>
#include <string>
#include <vector>

#include "eval/doctor_internal.h"

namespace cvdeploy::doctor {
namespace {

int64_t Dim(const TensorInfo& t, size_t i) { return i < t.shape.size() ? t.shape[i] : -1; }

// "+N" for N > 0, else "" (built by append: GCC 12 misreads "+" + to_string under -Wrestrict).
std::string Plus(int64_t extra) {
  std::string s;
  if (extra > 0) s.append("+").append(std::to_string(extra));
  return s;
}

int Count(const ModelFacts& f, const std::string& op) {
  const auto it = f.op_counts.find(op);
  return it == f.op_counts.end() ? 0 : it->second;
}

// The task the loader would use: the declared one, else inferred from the outputs.
Task EffectiveTask(const ModelFacts& f, const DeclaredLayout& d) {
  if (d.task) return *d.task;
  if (f.outputs.size() >= 2 && f.outputs[1].shape.size() == 4) return Task::kSegment;
  if (f.outputs[0].shape.size() == 2) return Task::kClassify;
  return Task::kDetect;
}

Finding LayoutFail(const std::string& task, const std::string& why) {
  return Make("metadata", "task", Finding::kFail, "task " + task + ": " + why,
              "the task metadata does not match the exported head: fix 'task' or re-export");
}

}  // namespace

Finding Make(const std::string& area, const std::string& check, Finding::Level level,
             std::string detail, std::string advice) {
  return Finding{area, check, level, std::move(detail), std::move(advice)};
}

std::string ShapeText(const TensorInfo& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i) s += ", ";
    s += t.shape[i] >= 0
             ? std::to_string(t.shape[i])
             : (i < t.dim_names.size() && !t.dim_names[i].empty() ? t.dim_names[i] : "?");
  }
  return s + "]";
}

void CheckLayout(const ModelFacts& f, const DeclaredLayout& d, std::vector<Finding>& out) {
  const Task task = EffectiveTask(f, d);
  const std::string task_name(TaskName(task));
  const TensorInfo& o = f.outputs[0];
  const std::string output = "output '" + o.name + "' " + ShapeText(o);
  int64_t implied = -1;  // classes the output implies; -1: not derivable from the shape
  std::string layout;
  if (task == Task::kClassify) {
    if (o.shape.size() != 2)
      return out.push_back(LayoutFail(task_name, output + " is not [B, nc]"));
    implied = Dim(o, 1);
    layout = "[B, nc]";
  } else {
    if (o.shape.size() != 3) {
      return out.push_back(LayoutFail(task_name, output + " is not a rank-3 detection head"));
    }
    int64_t extra = 0;
    if (task == Task::kSegment) {
      if (f.outputs.size() < 2 || f.outputs[1].shape.size() != 4) {
        return out.push_back(LayoutFail(task_name, "no prototype output [B, 32, h, w]"));
      }
      extra = Dim(f.outputs[1], 1);
    } else if (task == Task::kPose) {
      if (!d.kpt_shape || d.kpt_shape->size() != 2) {
        out.push_back(Make("metadata", "kpt_shape", Finding::kWarn,
                           "pose model without kpt_shape metadata: 17x3 (COCO) assumed",
                           "pass the right keypoint layout by re-exporting with kpt_shape"));
        extra = 17 * 3;
      } else {
        extra = d.kpt_shape->at(0) * d.kpt_shape->at(1);
      }
    } else if (task == Task::kObb) {
      extra = 1;
    }
    const int64_t a = Dim(o, 1), b = Dim(o, 2);
    if (a <= 0 || b <= 0) {
      out.push_back(Make("metadata", "names", Finding::kWarn,
                         output + " has dynamic dims: the class count cannot be checked",
                         "export with a fixed head (dynamic batch only)"));
      return;
    }
    if (d.end2end || (b == 6 + extra && a > b)) {
      layout = "end-to-end [B, N, 6" + Plus(extra) + "]";
      if (b != 6 + extra) {
        return out.push_back(LayoutFail(task_name, output + " is not " + layout));
      }
    } else if (a < b) {
      implied = a - 4 - extra;
      layout = "channels-first [B, 4+nc" + Plus(extra) + ", N]";
    } else {
      implied = b - 5 - extra;
      layout = "YOLOv5 [B, N, 5+nc" + Plus(extra) + "]";
    }
    if (layout[0] != 'e' && implied <= 0) {
      return out.push_back(LayoutFail(task_name, output + " leaves no class channels"));
    }
  }
  out.push_back(
      Make("metadata", "task", Finding::kOk,
           "task " + task_name + (d.task ? "" : " (inferred)") + ", " + output + " " + layout,
           "decoded as " + task_name + " with this layout"));
  if (d.names && implied > 0 && static_cast<int64_t>(d.names->size()) != implied) {
    out.push_back(Make("metadata", "names", Finding::kFail,
                       "names has " + std::to_string(d.names->size()) + " classes, " + output +
                           " has " + std::to_string(implied),
                       "the class names belong to another model: fix 'names' or pass --names "
                       "with " +
                           std::to_string(implied) + " entries"));
  } else if (d.names) {
    out.push_back(Make(
        "metadata", "names", Finding::kOk,
        std::to_string(d.names->size()) + " class names" + (implied > 0 ? " = output classes" : ""),
        "class ids map to these names"));
  }
}

void CheckAxes(const ModelFacts& f, std::vector<Finding>& out) {
  if (f.inputs.size() != 1 || f.inputs[0].shape.size() != 4) return;
  const TensorInfo& in = f.inputs[0];
  const bool dyn_batch = Dim(in, 0) <= 0, dyn_space = Dim(in, 2) <= 0 || Dim(in, 3) <= 0;
  out.push_back(Make("axes", "batch", Finding::kOk,
                     dyn_batch ? "dynamic batch" : "batch fixed at " + std::to_string(Dim(in, 0)),
                     dyn_batch ? "several images run in one engine call (predict --batch, the "
                                 "server's dynamic batching)"
                               : "one engine call per " + std::to_string(Dim(in, 0)) +
                                     " image(s); `cvdeploy convert --dynamic-batch` enables "
                                     "batching"));
  out.push_back(Make("axes", "spatial", Finding::kOk,
                     dyn_space ? "dynamic height/width" : "fixed " + ShapeText(in),
                     dyn_space
                         ? "images use rect inference (less padding, faster; --no-rect: the full "
                           "square); --imgsz works"
                         : "every image is letterboxed to the full size; no rect inference, "
                           "--imgsz is refused"));
}

void CheckPrecision(const ModelFacts& f, const ModelCheckContext& c, std::vector<Finding>& out) {
  const bool cpu = c.device.rfind("cpu", 0) == 0;
  const int dynamic =
      Count(f, "ConvInteger") + Count(f, "DynamicQuantizeLinear") + Count(f, "MatMulInteger");
  const int qdq = Count(f, "QuantizeLinear") + Count(f, "DequantizeLinear") +
                  Count(f, "QLinearConv") + Count(f, "QLinearMatMul");
  const bool half = !f.inputs.empty() && f.inputs[0].type == "float16";
  const Int8Isa isa = Int8Features(c.machine);
  const bool x86 = isa.x86;
  const bool vnni = isa.dot_products();
  if (dynamic > 0) {
    out.push_back(Make("precision", "quantization", cpu ? Finding::kWarn : Finding::kOk,
                       "dynamic quantization (" + std::to_string(Count(f, "ConvInteger")) +
                           " ConvInteger, " + std::to_string(Count(f, "DynamicQuantizeLinear")) +
                           " DynamicQuantizeLinear)",
                       cpu ? "slower than float32 on CPU (activations re-quantized per run; "
                             "ConvInteger kernels are slow): use `cvdeploy quantize` (static QDQ)"
                           : "check its speed with `cvdeploy bench` on this device"));
  } else if (qdq > 0) {
    const bool warn = cpu && x86 && !vnni;
    out.push_back(Make("precision", "quantization", warn ? Finding::kWarn : Finding::kOk,
                       "static int8 (QDQ: " + std::to_string(qdq) + " Q/DQ nodes)" +
                           (cpu ? std::string(", VNNI ") + (vnni ? "present" : "absent") : ""),
                       warn ? "no VNNI on this CPU: int8 may be no faster than float32; compare "
                              "with `cvdeploy bench` before shipping it"
                            : "int8 kernels apply here"));
  } else if (half) {
    out.push_back(Make("precision", "float16", cpu ? Finding::kWarn : Finding::kOk,
                       "float16 model on the " + c.device + " provider",
                       cpu ? "the CPU provider lacks most float16 kernels (Casts to float32, no "
                             "faster): ship the float32 model for CPU"
                           : "float16 suits GPU providers"));
  } else {
    out.push_back(Make("precision", "type", Finding::kOk, "float32 weights and input",
                       "the reference precision; `cvdeploy quantize` can make a static int8 "
                       "copy"));
  }
}

}  // namespace cvdeploy::doctor
