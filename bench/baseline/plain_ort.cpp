// SPDX-License-Identifier: Apache-2.0
// The side-by-side baseline (bench/side_by_side.py): what a user writes by hand with plain
// ONNX Runtime and OpenCV, and nothing of cvdeploy. A straightforward loop: cv::imread, a
// fixed letterbox to the model's input size (Ultralytics' arithmetic, pad 114), BGR->RGB,
// /255, NCHW, Ort::Session::Run with ONNX Runtime's default session options except the
// intra-op thread count, then the YOLOv8/YOLO11 detect output [1, 4 + nc, N] decoded and
// class-wise NMS. No buffer reuse, no pipelining: that is the point of the comparison.
//
//   plain_ort --model M.onnx --source IMAGE|DIR --threads N [--warmup N] [--iters N]
//             [--conf 0.25] [--iou 0.7] [--max-det 300]
//
// A single IMAGE is predicted warmup + iters times; each iteration's end-to-end time (read +
// decode + letterbox + run + decode + NMS) is recorded. A DIR (its .jpg/.jpeg/.png files,
// sorted) is predicted once per image after `warmup` images, and the wall time of the whole
// loop gives the throughput; the model load is excluded in both. Prints one JSON document.
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string model, source;
  int threads = 1, warmup = 10, iters = 100, max_det = 300;
  float conf = 0.25f, iou = 0.7f;
};

struct Detection {
  int class_id = 0;
  float score = 0;
  cv::Rect2f box;  // original image pixels
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "plain_ort: %s\n", why.c_str());
  std::fprintf(stderr,
               "usage: plain_ort --model M.onnx --source IMAGE|DIR --threads N [--warmup N] "
               "[--iters N] [--conf F] [--iou F] [--max-det N]\n");
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) Usage(key + " needs a value");
    const std::string value = argv[++i];
    try {
      if (key == "--model") {
        a.model = value;
      } else if (key == "--source") {
        a.source = value;
      } else if (key == "--threads") {
        a.threads = std::stoi(value);
      } else if (key == "--warmup") {
        a.warmup = std::stoi(value);
      } else if (key == "--iters") {
        a.iters = std::stoi(value);
      } else if (key == "--conf") {
        a.conf = std::stof(value);
      } else if (key == "--iou") {
        a.iou = std::stof(value);
      } else if (key == "--max-det") {
        a.max_det = std::stoi(value);
      } else {
        Usage("unknown option " + key);
      }
    } catch (const std::logic_error&) {
      Usage("bad value for " + key + ": '" + value + "'");
    }
  }
  if (a.model.empty() || a.source.empty()) Usage("--model and --source are required");
  if (a.threads < 1 || a.iters < 1 || a.warmup < 0) Usage("bad --threads/--iters/--warmup");
  return a;
}

// The plain letterbox: resize keeping the aspect ratio, pad 114 around it, centred.
cv::Mat Letterbox(const cv::Mat& image, int size, float* scale, int* left, int* top) {
  const float r =
      std::min(static_cast<float>(size) / image.rows, static_cast<float>(size) / image.cols);
  const int w = static_cast<int>(std::round(image.cols * r));
  const int h = static_cast<int>(std::round(image.rows * r));
  cv::Mat resized;
  cv::resize(image, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  const float dw = (size - w) / 2.0f, dh = (size - h) / 2.0f;
  *left = static_cast<int>(std::round(dw - 0.1f));
  *top = static_cast<int>(std::round(dh - 0.1f));
  const int right = size - w - *left, bottom = size - h - *top;
  cv::Mat padded;
  cv::copyMakeBorder(resized, padded, *top, bottom, *left, right, cv::BORDER_CONSTANT,
                     cv::Scalar(114, 114, 114));
  *scale = r;
  return padded;
}

float Iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  return inter / (a.area() + b.area() - inter);
}

class Detector {
 public:
  Detector(const Args& args) : env_(ORT_LOGGING_LEVEL_WARNING, "plain_ort"), args_(args) {
    Ort::SessionOptions options;                 // ONNX Runtime's defaults...
    options.SetIntraOpNumThreads(args.threads);  // ...with the same thread budget as cvdeploy
    session_ = Ort::Session(env_, args.model.c_str(), options);
    Ort::AllocatorWithDefaultOptions allocator;
    input_name_ = session_.GetInputNameAllocated(0, allocator).get();
    output_name_ = session_.GetOutputNameAllocated(0, allocator).get();
    const auto shape = session_.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetShape();
    size_ = shape.size() == 4 && shape[3] > 0 ? static_cast<int>(shape[3]) : 640;
  }

  std::vector<Detection> Predict(const std::string& path) {
    const cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
    if (image.empty()) throw std::runtime_error(path + ": cannot read image");
    float scale = 1;
    int left = 0, top = 0;
    const cv::Mat padded = Letterbox(image, size_, &scale, &left, &top);
    cv::Mat rgb, floats;
    cv::cvtColor(padded, rgb, cv::COLOR_BGR2RGB);
    rgb.convertTo(floats, CV_32FC3, 1.0 / 255.0);
    std::vector<float> blob(3 * size_ * size_);
    std::vector<cv::Mat> planes;
    for (int c = 0; c < 3; ++c) {
      planes.emplace_back(size_, size_, CV_32FC1, blob.data() + c * size_ * size_);
    }
    cv::split(floats, planes);

    const std::vector<int64_t> input_shape = {1, 3, size_, size_};
    const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    Ort::Value input = Ort::Value::CreateTensor<float>(memory, blob.data(), blob.size(),
                                                       input_shape.data(), input_shape.size());
    const char* in_names[] = {input_name_.c_str()};
    const char* out_names[] = {output_name_.c_str()};
    auto outputs = session_.Run(Ort::RunOptions{nullptr}, in_names, &input, 1, out_names, 1);
    const auto shape = outputs[0].GetTensorTypeAndShapeInfo().GetShape();  // [1, 4 + nc, N]
    const float* out = outputs[0].GetTensorData<float>();
    const int channels = static_cast<int>(shape[1]);
    const int anchors = static_cast<int>(shape[2]);
    return Decode(out, channels, anchors, scale, left, top, image.size());
  }

 private:
  std::vector<Detection> Decode(const float* out, int channels, int anchors, float scale, int left,
                                int top, cv::Size image) const {
    std::vector<Detection> candidates;
    for (int a = 0; a < anchors; ++a) {
      int best = 0;
      float score = -1;
      for (int c = 4; c < channels; ++c) {
        const float s = out[c * anchors + a];
        if (s > score) {
          score = s;
          best = c - 4;
        }
      }
      if (score <= args_.conf) continue;
      const float cx = out[a], cy = out[anchors + a];
      const float w = out[2 * anchors + a], h = out[3 * anchors + a];
      float x1 = (cx - w / 2 - left) / scale, y1 = (cy - h / 2 - top) / scale;
      float x2 = (cx + w / 2 - left) / scale, y2 = (cy + h / 2 - top) / scale;
      x1 = std::clamp(x1, 0.f, static_cast<float>(image.width));
      x2 = std::clamp(x2, 0.f, static_cast<float>(image.width));
      y1 = std::clamp(y1, 0.f, static_cast<float>(image.height));
      y2 = std::clamp(y2, 0.f, static_cast<float>(image.height));
      candidates.push_back({best, score, cv::Rect2f(x1, y1, x2 - x1, y2 - y1)});
    }
    // Class-wise greedy NMS, highest score first.
    std::sort(candidates.begin(), candidates.end(),
              [](const Detection& a, const Detection& b) { return a.score > b.score; });
    std::vector<Detection> kept;
    for (const Detection& d : candidates) {
      bool suppressed = false;
      for (const Detection& k : kept) {
        if (k.class_id == d.class_id && Iou(k.box, d.box) > args_.iou) {
          suppressed = true;
          break;
        }
      }
      if (!suppressed) kept.push_back(d);
      if (static_cast<int>(kept.size()) >= args_.max_det) break;
    }
    return kept;
  }

  Ort::Env env_;
  Args args_;
  Ort::Session session_{nullptr};
  std::string input_name_, output_name_;
  int size_ = 640;
};

double Ms(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string DetectionsJson(const std::vector<Detection>& detections) {
  std::string out = "[";
  for (size_t i = 0; i < detections.size(); ++i) {
    const Detection& d = detections[i];
    char buffer[160];
    std::snprintf(buffer, sizeof buffer,
                  "%s{\"class_id\": %d, \"confidence\": %.5f, \"box\": {\"x1\": %.2f, \"y1\": "
                  "%.2f, \"x2\": %.2f, \"y2\": %.2f}}",
                  i ? ", " : "", d.class_id, d.score, d.box.x, d.box.y, d.box.x + d.box.width,
                  d.box.y + d.box.height);
    out += buffer;
  }
  return out + "]";
}

std::vector<std::string> Images(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

int RunSingle(Detector& detector, const Args& args) {
  std::vector<Detection> detections;
  for (int i = 0; i < args.warmup; ++i) detections = detector.Predict(args.source);
  std::vector<double> ms;
  for (int i = 0; i < args.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    detections = detector.Predict(args.source);
    ms.push_back(Ms(t0, std::chrono::steady_clock::now()));
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double p50 = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::string latencies;
  for (double v : ms) latencies.append(latencies.empty() ? "" : ", ").append(std::to_string(v));
  std::printf(
      "{\"mode\": \"single\", \"threads\": %d, \"iterations\": %d, \"p50_ms\": %.3f, "
      "\"latencies_ms\": [%s], \"images\": [{\"source\": %s, \"detections\": %s}]}\n",
      args.threads, args.iters, p50, latencies.c_str(), JsonString(args.source).c_str(),
      DetectionsJson(detections).c_str());
  return 0;
}

int RunDirectory(Detector& detector, const Args& args) {
  const std::vector<std::string> files = Images(args.source);
  if (files.empty()) throw std::runtime_error(args.source + ": no images");
  for (int i = 0; i < std::min<int>(args.warmup, static_cast<int>(files.size())); ++i) {
    detector.Predict(files[i]);
  }
  std::string images;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<Detection>> all;
  for (const std::string& f : files) all.push_back(detector.Predict(f));
  const double wall = Ms(t0, std::chrono::steady_clock::now());
  for (size_t i = 0; i < files.size(); ++i) {
    images.append(i ? ", " : "").append("{\"source\": ").append(JsonString(files[i]));
    images.append(", \"detections\": ").append(DetectionsJson(all[i])).append("}");
  }
  std::printf(
      "{\"mode\": \"directory\", \"threads\": %d, \"images_count\": %zu, \"wall_ms\": %.3f, "
      "\"throughput_ips\": %.4f, \"images\": [%s]}\n",
      args.threads, files.size(), wall, 1000.0 * files.size() / wall, images.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  try {
    Detector detector(args);
    return std::filesystem::is_directory(args.source) ? RunDirectory(detector, args)
                                                      : RunSingle(detector, args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plain_ort: %s\n", e.what());
    return 4;
  }
}
