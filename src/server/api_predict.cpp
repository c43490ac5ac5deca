// SPDX-License-Identifier: Apache-2.0
// POST /v1/models/{model}/predict: an image in, the same JSON object as `cvdeploy predict`
// for one image out (or, with ?annotate=1, the annotated image as JPEG). A raw body whose
// Content-Type is not an image type is sniffed by its magic bytes (ProbeImage).
#include <cmath>

#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/serialize.h"
#include "server/api.h"
#include "server/http_error.h"
#include "server/multipart.h"
#include "server/trace_context.h"

namespace cvdeploy::server {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The media type without parameters, lower-cased.
std::string MediaType(std::string_view content_type) {
  std::string t = Lower(content_type.substr(0, content_type.find(';')));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

float UnitParam(const std::string& key, const std::string& value) {
  char* end = nullptr;
  const float v = std::strtof(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1) {
    throw EscapedError(
        ErrorCode::kInvalidArgument,
        "query parameter " + key + "='" + value.substr(0, 32) + "' must be a number in [0, 1]");
  }
  return v;
}

int IntParam(const std::string& key, const std::string& value, int lo, int hi) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < lo || v > hi) {
    throw EscapedError(ErrorCode::kInvalidArgument,
                       "query parameter " + key + "='" + value.substr(0, 32) +
                           "' must be an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
  }
  return static_cast<int>(v);
}

bool BoolParam(const std::string& key, const std::string& value) {
  const std::string v = Lower(value);
  if (v == "1" || v == "true" || v == "yes" || v.empty()) return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw EscapedError(
      ErrorCode::kInvalidArgument,
      "query parameter " + key + "='" + value.substr(0, 32) + "' must be 1/0 or true/false");
}

PredictOptions OptionsFrom(const HttpRequest& request, const ModelVersion& v, bool* annotate,
                           AnnotateOptions* style, bool* debug_timings) {
  PredictOptions o;
  const ModelConfig& c = v.config;
  if (c.conf) o.conf = *c.conf;
  if (c.iou) o.iou = *c.iou;
  if (c.max_det) o.max_det = *c.max_det;
  o.rect = v.rect;
  const int classes = static_cast<int>(v.predictor->meta().names.size());
  for (const auto& [key, value] : request.query) {
    if (key == "conf") {
      o.conf = UnitParam(key, value);
    } else if (key == "iou") {
      o.iou = UnitParam(key, value);
    } else if (key == "max_det") {
      o.max_det = IntParam(key, value, 1, 100000);
    } else if (key == "imgsz") {
      o.imgsz = IntParam(key, value, 32, 8192);
    } else if (key == "classes") {
      size_t start = 0;
      while (start <= value.size()) {
        const size_t comma = value.find(',', start);
        const std::string item =
            value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        o.classes.push_back(IntParam("classes", item, 0, std::max(0, classes - 1)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (key == "rect") {
      o.rect = BoolParam(key, value);
    } else if (key == "agnostic") {
      o.agnostic = BoolParam(key, value);
    } else if (key == "retina_masks") {
      o.retina_masks = BoolParam(key, value);
    } else if (key == "annotate") {
      *annotate = BoolParam(key, value);
    } else if (key == "line_width") {
      style->line_width = IntParam(key, value, 1, 100);
    } else if (key == "hide_labels") {
      style->labels = !BoolParam(key, value);
    } else if (key == "hide_conf") {
      style->conf = !BoolParam(key, value);
    } else if (key == "debug") {
      *debug_timings = DebugTimingsParam(value);
    } else {
      throw EscapedError(
          ErrorCode::kInvalidArgument,
          "unknown query parameter '" + key.substr(0, 64) +
              "' (known: conf, iou, max_det, classes, imgsz, rect, agnostic, retina_masks, "
              "annotate, line_width, hide_labels, hide_conf, debug)");
    }
  }
  const ModelMeta& meta = v.predictor->meta();
  if (o.imgsz && !meta.dynamic && (o.imgsz != meta.imgsz_h || o.imgsz != meta.imgsz_w)) {
    throw EscapedError(ErrorCode::kInvalidArgument, "imgsz " + std::to_string(o.imgsz) +
                                                        ": model '" + v.name + "' has a fixed " +
                                                        std::to_string(meta.imgsz_h) + "x" +
                                                        std::to_string(meta.imgsz_w) + " input");
  }
  if (o.imgsz && meta.dynamic && o.imgsz % meta.stride != 0) {
    throw EscapedError(ErrorCode::kInvalidArgument, "imgsz " + std::to_string(o.imgsz) +
                                                        " is not a multiple of the stride " +
                                                        std::to_string(meta.stride));
  }
  return o;
}

// Whether `body` starts with the magic bytes of a format ProbeImage knows. A recognised
// format with a broken header counts as an image: the probe in Predict answers it 400.
bool LooksLikeImage(const std::string& body) {
  try {
    return ProbeImage(reinterpret_cast<const uint8_t*>(body.data()), body.size(), "body").format !=
           ImageFormat::kUnknown;
  } catch (const Error&) {
    return true;
  }
}

// Takes the image bytes out of the request: a raw image body or the multipart field
// "image". Sets *name for messages and the result's "source".
std::string ImageBytes(HttpRequest& request, std::string* name) {
  const std::string type = MediaType(request.Header("content-type").value_or(""));
  if (type == "multipart/form-data") {
    auto boundary = MultipartBoundary(*request.Header("content-type"));
    if (!boundary)
      throw EscapedError(ErrorCode::kInvalidArgument,
                         "multipart/form-data without a boundary parameter");
    for (const auto& part : ParseMultipart(request.body, *boundary)) {
      if (part.name != "image") continue;
      // The file name lands in messages (also through C strings): control bytes escaped.
      *name = part.filename.empty() ? "image" : EscapeControlBytes(part.filename);
      return std::string(part.body);
    }
    throw EscapedError(ErrorCode::kInvalidArgument,
                       "multipart/form-data body has no field named 'image'");
  }
  const bool image_type = type.empty() || type == "image/jpeg" || type == "image/jpg" ||
                          type == "image/png" || type == "image/webp" || type == "image/bmp" ||
                          type == "image/x-ms-bmp" || type == "application/octet-stream";
  // Another type (curl --data-binary sends application/x-www-form-urlencoded): an image body
  // is still served when its magic bytes say it is one.
  if (!image_type && !LooksLikeImage(request.body)) {
    throw EscapedError(ErrorCode::kUnsupportedMedia,
                       "unsupported Content-Type '" + type.substr(0, 64) +
                           "' and the body is not a JPEG, PNG, WebP or BMP image; send "
                           "image/jpeg, image/png, image/webp, image/bmp or "
                           "multipart/form-data with an 'image' field");
  }
  *name = "request body";
  return std::move(request.body);
}

std::string ImageExtension(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kBmp:
      return "bmp";
    case ImageFormat::kJpeg:
    case ImageFormat::kUnknown:
      break;
  }
  return "jpg";
}

// The JSON body of an image answer (also stored as a sample's response.json).
std::string PredictJson(const std::string& source, const Result& result) {
  nlohmann::ordered_json body = {{"source", source}};
  const nlohmann::ordered_json fields = ResultToJson(result);
  for (auto it = fields.begin(); it != fields.end(); ++it) body[it.key()] = it.value();
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void Api::Predict(HttpRequest& request, const std::string& model, const Respond& respond) {
  const auto start = Clock::now();
  auto found = repository_.Find(model, std::nullopt);
  if (!found) return respond(ErrorResponse(found.status()));
  const std::shared_ptr<ModelVersion> v = *found;
  LogFields log{model, v->VersionString(), 0};
  Job job;
  ImageWork work;
  bool debug_timings = false;
  std::string image_ext;
  try {
    work.options = OptionsFrom(request, *v, &work.annotate, &work.style, &debug_timings);
    work.bytes = ImageBytes(request, &work.name);
    if (work.bytes.empty())
      throw EscapedError(ErrorCode::kInvalidArgument, work.name + " is empty: send an image");
    // The header tells the size before any pixel is allocated: a small file that expands
    // to gigabytes (a decompression bomb) is refused here.
    ImageHeader header;
    try {
      header = ProbeImage(reinterpret_cast<const uint8_t*>(work.bytes.data()), work.bytes.size(),
                          work.name);
    } catch (const Error& e) {
      // A header that cannot be read makes the request malformed (400), unlike image data
      // that fails to decode later (the core's kBadInput, 422): docs/server.md.
      throw EscapedError(ErrorCode::kInvalidArgument, e.what());
    }
    if (header.format == ImageFormat::kUnknown) {
      throw EscapedError(ErrorCode::kUnsupportedMedia,
                         work.name + " is not a JPEG, PNG, WebP or BMP image");
    }
    const uint64_t pixels = static_cast<uint64_t>(header.width) * header.height;
    if (pixels > options_.max_image_pixels) {
      char text[160];
      std::snprintf(text, sizeof(text), "%s is %dx%d = %.1f MP, above the limit of %.1f MP",
                    work.name.c_str(), header.width, header.height, pixels / 1e6,
                    options_.max_image_pixels / 1e6);
      throw EscapedError(ErrorCode::kTooLarge, text);
    }
    job.deadline = Deadline(request);
    job.request_id = request.request_id;
    job.trace_id = request.trace_id;
    image_ext = ImageExtension(header.format);
  } catch (...) {
    return Reject(*v, CurrentExceptionResponse(), respond);
  }
  // A sampled request keeps its bytes through the scheduler (moved back, not copied).
  Sampler* sampler = sampler_ && sampler_->Decide() ? sampler_ : nullptr;
  std::shared_ptr<samples::SampleMeta> sample;
  if (sampler) {
    work.keep_bytes = true;
    sample = std::make_shared<samples::SampleMeta>(NewSampleMeta(
        request.request_id, request.trace_id, model, v->VersionString(), "image", &work.options));
  }
  const std::string source = work.name;
  const bool annotate = work.annotate;
  job.work = std::move(work);
  job.enqueued = Clock::now();
  // Runs on a scheduler thread, which must never see an exception.
  job.done = [v, respond, log, start, source, annotate, debug_timings, sampler, sample,
              image_ext](JobResult result) mutable noexcept {
    log.batch_size = result.batch_size;
    HttpResponse r;
    StageTimings timings = result.timings;
    const auto encode_start = Clock::now();
    try {
      if (!result.status.ok()) {
        r = ErrorResponse(result.status);
        if (result.status.code() == ErrorCode::kUnavailable) {
          r.headers.emplace_back("Retry-After", "1");
        }
      } else if (annotate) {
        r.content_type = "image/jpeg";
        r.body = std::move(result.annotated_jpeg);
      } else {
        r.body = PredictJson(source, result.result);
      }
      timings.encode_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - encode_start).count();
      if (debug_timings && r.status == 200 && !annotate) {
        InsertTimings(r.body, r.body.size(), timings);
      }
      r.headers.emplace_back("X-Model-Version", v->VersionString());
    } catch (...) {
      r = CurrentExceptionResponse();
    }
    if (sampler && r.status == 200) {
      try {
        SampleRecord record;
        record.meta = std::move(*sample);
        record.meta.timings_ms = TimingsMap(timings);
        record.image = std::move(result.input);
        record.image_ext = image_ext;
        record.response = annotate ? PredictJson(source, result.result) : r.body;
        if (sampler->redact()) record.persons = PersonBoxes(result.result);
        sampler->Offer(std::move(record));
      } catch (...) {  // sampling never fails a request
      }
    }
    r.log = std::move(log);
    r.timings = timings;
    v->metrics.request_seconds->Observe(
        std::chrono::duration<double>(Clock::now() - start).count());
    (r.status == 200 ? v->metrics.success : v->metrics.failure)->Inc();
    respond(std::move(r));
  };
  Submit(v, model, false, std::move(job), respond);
}

}  // namespace cvdeploy::server
