// SPDX-License-Identifier: Apache-2.0
// Structured channel pruning of an ONNX graph: remove whole output channels of Conv layers
// (the filters with the smallest L1 or L2 norm) together with the matching input channels
// of every consumer, so the graph gets narrower, not sparser.
//
// How channels are tracked: every output channel of a prunable Conv is an "atom". Atoms are
// followed through the graph: element-wise ops (Sigmoid, Mul of SiLU, ...), pooling, Resize
// and depthwise Conv keep them; Concat on the channel axis places them at offsets; Split on
// the channel axis divides them (its sizes are rewritten after pruning); Add/Mul of two
// feature maps ties the atoms of the same position on both sides (a residual Add keeps the
// same channels on both sides or none). Atoms tied together form one channel that is kept or
// removed as a whole. A "group" is a set of such channels that are ranked against each other:
// the output of one Conv, or one piece of a Split of it, joined with everything tied to it.
// Each group loses the same fraction of its channels, ranked by the summed filter norm of
// their producing Conv filters.
//
// What cannot be pruned is left alone, and reported: channels that reach a graph output, an
// operator whose channel semantics are not modelled here (Reshape, Transpose, MatMul, ...:
// the YOLO11 attention, the Detect head's box/class outputs and the DFL), a non-depthwise
// grouped Conv, a per-channel constant, or a node named in PruneOptions::exclude.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cvdeploy/tools.h"

namespace onnx {
class ModelProto;
}  // namespace onnx

namespace cvdeploy::optimize {

// The option and report types are public (cvdeploy/tools.h).
using cvdeploy::ConvChange;
using cvdeploy::ParsePruneMethod;
using cvdeploy::PruneGroup;
using cvdeploy::PruneMethod;
using cvdeploy::PruneOptions;
using cvdeploy::PruneReport;
using cvdeploy::PruneVerification;
using cvdeploy::ToString;

// Per-channel statistics of one activation tensor over all positions and images.
struct ChannelStats {
  std::vector<double> mean, std;
};
// By tensor name: the data input of every Conv.
using ActivationStats = std::map<std::string, ChannelStats>;

// Runs the model in ONNX Runtime on the images of `image_dir` (the first `max_images`, sorted,
// with the inference preprocessing: Predictor::Prepare for a YOLO model; a fixed-size plain
// letterbox otherwise) and returns mean and standard deviation of every channel of every Conv's
// data input. Throws Error(kBadInput) naming the directory when it holds no image, naming an image
// that cannot be decoded, or when ONNX Runtime cannot run the model.
ActivationStats MeasureActivations(const std::vector<uint8_t>& model_bytes,
                                   const std::string& image_dir, int max_images,
                                   int* images_used = nullptr);

// Prunes `model` in place. With `stats` (of the original model, MeasureActivations), each
// removed input channel c of a Conv is replaced by its mean instead of 0: the Conv's bias gets
// mean_c * sum(W[o, c, :, :]) for every output o. That is exact in expectation for unpadded
// Convs; at the borders of padded ones it adds what the padding would have zeroed. Throws
// Error(kInvalidArgument) for a ratio outside (0, 1), a channel multiple < 1, an excluded
// name that is no node of the graph, or kActivation without `stats`; Error(kBadInput)
// "NAME: ..." when the graph has no prunable Conv at all. Does not verify or record anything
// (see PruneModel).
PruneReport PruneChannels(onnx::ModelProto& model, const PruneOptions& options,
                          const std::string& name, const ActivationStats* stats = nullptr);

// The whole tool on serialized bytes: parse, PruneChannels, ONNX checker, run the original and
// the pruned model in ONNX Runtime on the same pseudo-random input (uniform [0, 1)) and check
// that every output keeps its name and shape, then append the optimization record
// {"tool": "prune", ...} to the metadata. Returns the pruned model's bytes.
// Throws Error(kBadInput) for bytes that are not an ONNX model, Error(kRuntime) when the
// pruned model fails the checker, does not run, or changes an output shape (a tool bug).
std::vector<uint8_t> PruneModel(const std::vector<uint8_t>& model_bytes, const std::string& name,
                                const PruneOptions& options, PruneReport* report,
                                PruneVerification* verification);

}  // namespace cvdeploy::optimize
