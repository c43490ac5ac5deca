// SPDX-License-Identifier: Apache-2.0
// POST /v2/models/{model}[/versions/{v}]/infer: KServe v2 tensors in and out.
#include <cstring>

#include "server/api.h"
#include "server/http_error.h"
#include "server/kserve.h"
#include "server/trace_context.h"

namespace cvdeploy::server {
namespace {

std::string Dims(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

// Checks a request input against the model before it is queued, so a bad request costs
// no queue slot and gets its reason at once.
void CheckInput(const kserve::Tensor& t, const ModelVersion& v) {
  const ModelInfo& info = v.predictor->info();
  const ModelMeta& meta = info.meta;
  const std::string& expected = info.inputs.empty() ? "images" : info.inputs[0].name;
  if (t.name != expected) {
    throw EscapedError(ErrorCode::kInvalidArgument, "unknown input '" + t.name + "': model '" +
                                                        v.name + "' takes '" + expected + "'");
  }
  if (t.datatype != kserve::DataType::kFp32) {
    throw EscapedError(ErrorCode::kInvalidArgument,
                       "input '" + t.name + "': datatype " +
                           std::string(kserve::DataTypeName(t.datatype)) +
                           " does not match the model's FP32");
  }
  const auto& s = t.shape;
  const bool spatial_ok =
      meta.dynamic || (s.size() == 4 && s[2] == meta.imgsz_h && s[3] == meta.imgsz_w);
  if (s.size() != 4 || s[1] != 3 || s[0] < 1 || s[2] < 1 || s[3] < 1 || !spatial_ok) {
    throw EscapedError(
        ErrorCode::kInvalidArgument,
        "input '" + t.name + "': shape " + Dims(s) + " does not match the model's [" +
            (meta.batch > 0 ? std::to_string(meta.batch) : std::string("-1")) + ",3," +
            std::to_string(meta.imgsz_h) + "," + std::to_string(meta.imgsz_w) + "]");
  }
  if (meta.batch > 0 && s[0] != meta.batch) {
    throw EscapedError(ErrorCode::kInvalidArgument,
                       "input '" + t.name + "': batch " + std::to_string(s[0]) +
                           " but the model's batch axis is fixed at " + std::to_string(meta.batch));
  }
  if (meta.batch <= 0 && s[0] > std::max(1, v.config.max_batch_size)) {
    throw EscapedError(ErrorCode::kInvalidArgument,
                       "input '" + t.name + "': batch " + std::to_string(s[0]) +
                           " exceeds the model's max_batch_size " +
                           std::to_string(std::max(1, v.config.max_batch_size)));
  }
}

// The response to a finished inference: the KServe document of the outputs the request asked
// for. Throws cvdeploy::Error / std::bad_alloc, mapped by the caller.
// With `debug_timings`, the JSON part also carries the stage timings (encode included).
HttpResponse InferResponseFor(JobResult& result, const kserve::InferRequest& request,
                              const std::string& model, const std::string& version,
                              bool debug_timings, StageTimings* timings) {
  const auto encode_start = Clock::now();
  kserve::InferResponse response;
  response.model_name = model;
  response.model_version = version;
  response.id = request.id;
  for (const NamedTensorView& o : result.outputs) {
    if (!request.outputs.empty()) {
      bool wanted = false;
      for (const auto& r : request.outputs) wanted = wanted || r.name == o.name;
      if (!wanted) continue;
    }
    // The response tensor views the engine's output (kept alive by result.batch); encoding
    // copies it once into the body.
    kserve::Tensor t;
    t.name = o.name;
    t.datatype = kserve::DataType::kFp32;
    t.shape = o.tensor.shape();
    t.view =
        std::span<const uint8_t>(static_cast<const uint8_t*>(o.tensor.data()), o.tensor.bytes());
    t.binary = kserve::OutputWantsBinary(request, o.name);
    response.outputs.push_back(std::move(t));
  }
  kserve::EncodedBody body = kserve::EncodeInferResponse(response);
  HttpResponse r;
  r.content_type = body.content_type;
  r.body = std::move(body.body);
  timings->encode_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - encode_start).count();
  if (debug_timings) {
    const size_t json_end = body.header_length ? *body.header_length : r.body.size();
    const size_t added = InsertTimings(r.body, json_end, *timings);
    if (body.header_length) *body.header_length += added;
  }
  if (body.header_length) {
    r.headers.emplace_back(std::string(kserve::kHeaderLengthHeader),
                           std::to_string(*body.header_length));
  }
  return r;
}

}  // namespace

void Api::Infer(HttpRequest& request, const std::string& model, std::optional<int64_t> version,
                const Respond& respond) {
  const auto start = Clock::now();
  auto found = repository_.Find(model, version);
  if (!found) return respond(ErrorResponse(found.status()));
  const std::shared_ptr<ModelVersion> v = *found;
  LogFields log{model, v->VersionString(), 0};
  kserve::InferRequest parsed;
  std::shared_ptr<const std::string> body;
  TensorView input_view;
  Job job;
  bool debug_timings = false;
  try {
    if (auto d = request.query.find("debug"); d != request.query.end()) {
      debug_timings = DebugTimingsParam(d->second);
    }
    std::optional<size_t> header_length;
    if (auto h = request.Header("inference-header-content-length")) {
      header_length = kserve::ParseHeaderLength(*h);
    }
    // The body moves into shared ownership: binary inputs view it until the engine has
    // copied them into its input.
    body = std::make_shared<const std::string>(std::move(request.body));
    parsed = kserve::ParseInferRequest(*body, header_length);
    if (parsed.inputs.size() != 1) {
      throw EscapedError(ErrorCode::kInvalidArgument, "model '" + model +
                                                          "' takes 1 input, the request has " +
                                                          std::to_string(parsed.inputs.size()));
    }
    CheckInput(parsed.inputs[0], *v);
    const ModelInfo& info = v->predictor->info();
    for (const auto& o : parsed.outputs) {
      bool found = false;
      for (const auto& t : info.outputs) found = found || t.name == o.name;
      if (!found)
        throw EscapedError(ErrorCode::kInvalidArgument,
                           "unknown output '" + o.name + "' of model '" + model + "'");
    }
    input_view = parsed.inputs[0].AsTensorView().value();  // FP32 (CheckInput)
    job.enqueued = Clock::now();
    job.deadline = Deadline(request);
    job.request_id = request.request_id;
    job.trace_id = request.trace_id;
  } catch (...) {
    // Bad JSON, a tensor that does not fit the model, out of memory: counted against the model.
    return Reject(*v, CurrentExceptionResponse(), respond);
  }
  // The parsed request owns JSON-decoded input bytes (a moved vector keeps its buffer, so the
  // view stays valid); the body owns binary ones. Both live until the job is answered.
  auto request_info = std::make_shared<kserve::InferRequest>(std::move(parsed));
  std::shared_ptr<const void> owner = std::make_shared<
      std::pair<std::shared_ptr<const std::string>, std::shared_ptr<kserve::InferRequest>>>(
      body, request_info);
  job.work = TensorWork{input_view, owner};
  // A sampled request keeps its input alive until the writer has stored it (no copy).
  Sampler* sampler = sampler_ && sampler_->Decide() ? sampler_ : nullptr;
  std::shared_ptr<samples::SampleMeta> sample;
  if (sampler) {
    sample = std::make_shared<samples::SampleMeta>(NewSampleMeta(
        request.request_id, request.trace_id, model, v->VersionString(), "tensor", nullptr));
    sample->datatype = "FP32";
    sample->shape = input_view.shape();
  } else {
    owner.reset();
  }
  // Runs on a scheduler thread, which must never see an exception.
  job.done = [v, respond, request_info, log, start, model, debug_timings, sampler, sample, owner,
              input_view](JobResult result) mutable noexcept {
    log.batch_size = result.batch_size;
    HttpResponse r;
    StageTimings timings = result.timings;
    try {
      if (result.status.ok()) {
        r = InferResponseFor(result, *request_info, model, v->VersionString(), debug_timings,
                             &timings);
      } else {
        r = ErrorResponse(result.status);
        if (result.status.code() == ErrorCode::kUnavailable) {
          r.headers.emplace_back("Retry-After", "1");
        }
      }
    } catch (...) {
      r = CurrentExceptionResponse();
    }
    if (sampler && r.status == 200) {
      try {
        SampleRecord record;
        record.meta = std::move(*sample);
        record.meta.timings_ms = TimingsMap(timings);
        record.tensor_owner = std::move(owner);
        record.tensor_data = static_cast<const uint8_t*>(input_view.data());
        record.tensor_size = input_view.bytes();
        // The JSON part only (binary outputs follow it; they are the model's raw outputs).
        size_t json_end = r.body.size();
        for (const auto& [name, value] : r.headers) {
          if (name == kserve::kHeaderLengthHeader) json_end = std::stoul(value);
        }
        record.response = r.body.substr(0, std::min(json_end, r.body.size()));
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
  Submit(v, model, version.has_value(), std::move(job), respond);
}

}  // namespace cvdeploy::server
