// SPDX-License-Identifier: Apache-2.0
// Reading a sample store back (cvdeploy/samples.h): scanning its directories, listing the
// samples' metadata and replaying the image samples through another model, matched with the
// stored responses by the matcher of `cvdeploy compare` (eval/compare.h).
#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/samples.h"
#include "eval/compare.h"

namespace cvdeploy::samples {
namespace fs = std::filesystem;
namespace {

// Sorted names of the sub-directories of `dir` (no hidden ones: unfinished samples).
std::vector<std::string> SubDirs(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !it->is_symlink(type_ec)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

uint64_t DirBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && !it->is_symlink(fec)) {
      const auto size = it->file_size(fec);
      if (!fec) total += size;
    }
  }
  return total;
}

std::string ReadSampleFile(const fs::path& path, uint64_t max) {
  return ReadFileText(path.string(), max);
}

}  // namespace

std::vector<SampleDir> ScanSampleDirs(const std::string& dir) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (ec || !fs::exists(status)) return {};
  if (!fs::is_directory(status)) throw BadInput(dir + ": not a directory");
  std::vector<SampleDir> out;
  for (const std::string& day : SubDirs(dir)) {
    const fs::path day_dir = fs::path(dir) / day;
    for (const std::string& name : SubDirs(day_dir)) {
      const fs::path p = day_dir / name;
      out.push_back({p.string(), name, DirBytes(p)});
    }
  }
  return out;
}

SampleListing ListSamples(const std::string& dir) {
  SampleListing listing;
  for (SampleDir& d : ScanSampleDirs(dir)) {
    listing.bytes += d.bytes;
    const std::string what = (fs::path(d.path) / "meta.json").string();
    try {
      SampleMeta meta = SampleMetaFromJson(ReadSampleFile(what, kMaxMetaBytes), what);
      listing.samples.push_back({std::move(d), std::move(meta)});
    } catch (const Error& e) {
      listing.skipped.push_back(e.what());
    }
  }
  return listing;
}

nlohmann::ordered_json ListingToJson(const std::string& dir, const SampleListing& listing) {
  std::map<std::string, long> models, kinds;
  long redacted = 0;
  for (const StoredSample& s : listing.samples) {
    ++models[s.meta.model + ":" + s.meta.version];
    ++kinds[s.meta.kind];
    if (s.meta.redacted) ++redacted;
  }
  nlohmann::ordered_json j = {{"dir", dir},
                              {"samples", listing.samples.size()},
                              {"skipped", listing.skipped},
                              {"bytes", listing.bytes},
                              {"first", nullptr},
                              {"last", nullptr},
                              {"models", models},
                              {"kinds", kinds},
                              {"redacted", redacted}};
  if (!listing.samples.empty()) {
    j["first"] = listing.samples.front().meta.time;
    j["last"] = listing.samples.back().meta.time;
  }
  return j;
}

ReplayReport ReplaySamples(const Predictor& model, const std::string& dir,
                           const ReplayOptions& options, const std::function<void()>& step) {
  ReplayReport report;
  eval::AgreementAccumulator agreement(options.match_iou);
  SampleListing listing = ListSamples(dir);
  report.skipped = std::move(listing.skipped);
  const ModelMeta& meta = model.meta();
  for (const StoredSample& s : listing.samples) {
    if (options.max_samples && report.replayed >= options.max_samples) break;
    const fs::path base(s.dir.path);
    if (s.meta.kind != "image") {
      report.skipped.push_back(s.dir.path + ": a tensor sample (its response is raw outputs)");
      continue;
    }
    if (s.meta.input.empty()) {
      report.skipped.push_back(s.dir.path + ": no input stored");
      continue;
    }
    try {
      const std::string response_path = (base / "response.json").string();
      const Result stored =
          SampleResponseFromJson(ReadSampleFile(response_path, kMaxResponseBytes), response_path);
      PredictOptions o;
      o.conf = s.meta.conf;
      o.iou = s.meta.iou;
      o.max_det = s.meta.max_det;
      // The sample's own size only where this model accepts it.
      if (meta.dynamic && s.meta.imgsz % std::max(1, meta.stride) == 0) o.imgsz = s.meta.imgsz;
      const int side = o.imgsz;
      const cv::Size input = side > 0 ? cv::Size(side, side) : cv::Size(meta.imgsz_w, meta.imgsz_h);
      // Decoded the way the server decodes (DecodeImageForModel), so that the same model
      // reproduces its stored answer.
      cv::Size original;
      const std::string input_path = (base / s.meta.input).string();
      const cv::Mat image = ReadImageForModel(input_path, input, &original);
      Result replayed = model.Predict(image, o);
      if (original != image.size()) RescaleResult(replayed, original);
      const eval::DetectionMatching m = agreement.Add(stored, replayed);
      SampleAgreement a;
      a.name = s.dir.name;
      a.model = s.meta.model;
      a.version = s.meta.version;
      a.stored = static_cast<long>(stored.detections.size());
      a.replayed = static_cast<long>(replayed.detections.size());
      a.matched = static_cast<long>(m.pairs.size());
      a.agreement = eval::AgreementValue(a.matched, a.stored, a.replayed);
      report.per_sample.push_back(std::move(a));
      ++report.replayed;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kBadInput && e.code() != ErrorCode::kTooLarge &&
          e.code() != ErrorCode::kNotFound) {
        throw;  // the engine failed: not the sample's fault
      }
      report.skipped.push_back(s.dir.path + ": " + e.what());
    }
    if (step) step();
  }
  report.overall = agreement.Summary(meta.names);
  return report;
}

nlohmann::ordered_json ReplayReportToJson(const ReplayReport& report) {
  const Agreement& a = report.overall;
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const ClassAgreement& c : a.per_class) {
    classes.push_back({{"class_id", c.class_id},
                       {"name", c.name},
                       {"stored", c.a_total},
                       {"replayed", c.b_total},
                       {"matched", c.matched},
                       {"agreement", c.agreement}});
  }
  nlohmann::ordered_json samples = nlohmann::ordered_json::array();
  for (const SampleAgreement& s : report.per_sample) {
    samples.push_back({{"sample", s.name},
                       {"model", s.model},
                       {"version", s.version},
                       {"stored", s.stored},
                       {"replayed", s.replayed},
                       {"matched", s.matched},
                       {"agreement", s.agreement}});
  }
  return {{"replayed", report.replayed},
          {"skipped", report.skipped},
          {"overall",
           {{"stored", a.a_total},
            {"replayed", a.b_total},
            {"matched", a.matched},
            {"agreement", a.agreement},
            {"replayed_agreement", a.b_agreement},
            {"samples_all_matched", a.images_all_matched},
            {"iou_mean", a.iou_mean},
            {"conf_delta_mean", a.conf_delta_mean}}},
          {"per_class", std::move(classes)},
          {"samples", std::move(samples)}};
}

}  // namespace cvdeploy::samples
