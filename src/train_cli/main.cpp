// SPDX-License-Identifier: Apache-2.0
// cvdeploy-train: the training front end (libtorch), run by `cvdeploy distill|finetune|qat`.
//   distill  --student S.onnx --teacher T.onnx --images DIR [--data DATA] [--val DATA]
//            [--hint-weight X] --out O
//   finetune --model M.onnx --data DATA [--val DATA] --out O
//   qat      --model M.onnx --calib DIR --images DIR [--val DATA] --out O
// Common: --epochs --imgsz --batch --lr --seed --threads --max-images --max-steps
// --checkpoint-dir --no-augment --mosaic --json FILE. Public API only (cvdeploy/train.h).
// Exit codes: cvdeploy's table (cli/exit_codes.h): 0 ok, 2 usage, 3 bad input, 4 runtime failure.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/exit_codes.h"
#include "cli/output_path.h"
#include "cvdeploy/build_info.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/train.h"

namespace {

using cvdeploy::Error;
using cvdeploy::ErrorCode;

struct Args {
  std::string student, teacher, model, out, json, calib;
  int calib_size = 100;
  bool no_augment = false;
  cvdeploy::TrainOptions train;
};

std::string FirstLine(const std::string& text) {
  size_t end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// The distillation loss's choices (distill and qat, which distils from the float model).
void AddDistillLoss(CLI::App* sub, Args* args) {
  sub->add_option("--cls-loss", args->train.cls_loss,
                  "Class loss against the teacher: bce (soft targets) or kl")
      ->check(CLI::IsMember({"bce", "kl"}))
      ->capture_default_str();
  sub->add_option("--box-loss", args->train.box_loss,
                  "Box loss against the teacher: kl (DFL bins), l1 or iou (decoded boxes)")
      ->check(CLI::IsMember({"kl", "l1", "iou"}))
      ->capture_default_str();
}

void AddCommon(CLI::App* sub, Args* args) {
  cvdeploy::TrainOptions& t = args->train;
  sub->add_option("--out,-o", args->out, "Output model (.onnx)")->required();
  sub->add_option("--val", t.val, "Labelled validation set (YOLO dir or YAML): mAP every epoch");
  sub->add_option("--epochs", t.epochs, "Epochs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_option("--imgsz", t.imgsz, "Training letterbox long side (0: the model's)")
      ->check(CLI::Range(0, 4096));
  sub->add_option("--batch", t.batch, "Images per step")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--optimizer", t.optimizer, "sgd (Nesterov momentum) or adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  sub->add_option("--lr", t.lr, "Initial learning rate (cosine decay to lr/100)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--seed", t.seed, "Random seed (same seed, same result)");
  sub->add_option("--threads", t.threads, "Threads (0: physical cores)")->check(CLI::Range(0, 256));
  sub->add_option("--max-images", t.max_images, "Use at most N training images (0: all)")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_option("--max-steps", t.max_steps, "Stop after N optimizer steps (0: no limit)")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_option("--checkpoint-dir", t.checkpoint_dir,
                  "Write a checkpoint model every epoch here");
  sub->add_flag("--no-augment", args->no_augment, "No flip/scale/HSV augmentation");
  sub->add_flag("--mosaic", t.mosaic, "4-image mosaic augmentation");
  sub->add_option("--json", args->json, "Write the training report as JSON to FILE");
}

nlohmann::json ReportJson(const cvdeploy::TrainReport& r) {
  nlohmann::json epochs = nlohmann::json::array();
  for (const cvdeploy::TrainEpoch& e : r.epochs) {
    nlohmann::json j = {{"epoch", e.epoch}, {"loss", e.loss}, {"seconds", e.seconds}};
    if (e.val_map50_95) j["val_map50_95"] = *e.val_map50_95;
    epochs.push_back(j);
  }
  nlohmann::json j = {{"method", r.method},
                      {"images", r.images},
                      {"steps", r.steps},
                      {"seconds", r.seconds},
                      {"initial_loss", r.initial_loss},
                      {"final_loss", r.final_loss},
                      {"epochs", epochs},
                      {"best_epoch", r.best_epoch},
                      {"trainable_tensors", r.trainable_tensors},
                      {"trainable_parameters", r.trainable_parameters},
                      {"notes", r.notes}};
  if (r.val_map_before) j["val_map50_95_before"] = *r.val_map_before;
  if (r.val_map_best) j["val_map50_95_best"] = *r.val_map_best;
  return j;
}

// One line per optimizer step; an epoch's end (steps == 0) gets its mean loss and mAP.
void PrintProgress(const cvdeploy::TrainProgress& p) {
  if (p.steps == 0) {
    std::fprintf(stderr, "epoch %d/%d done: mean loss %.5f, %.0fs", p.epoch, p.epochs, p.loss,
                 p.seconds);
  } else {
    std::fprintf(stderr,
                 "epoch %d/%d step %d/%d loss %.5f (cls %.4f box %.4f dfl %.4f hint %.4f) %.0fs "
                 "ETA %.0fs",
                 p.epoch, p.epochs, p.step, p.steps, p.loss, p.cls_loss, p.box_loss, p.dfl_loss,
                 p.hint_loss, p.seconds, p.eta_seconds);
  }
  if (p.val_map50_95) std::fprintf(stderr, ", val mAP50-95 %.4f", *p.val_map50_95);
  std::fprintf(stderr, "\n");
}

void Finish(const Args& args, const cvdeploy::TrainResult& result) {
  cvdeploy::WriteFileAtomically(args.out, result.bytes);
  const cvdeploy::TrainReport& r = result.report;
  std::printf("%s: %d images, %d steps, %.1f s, loss %.5f -> %.5f\n", r.method.c_str(), r.images,
              r.steps, r.seconds, r.initial_loss, r.final_loss);
  if (r.val_map_before && r.val_map_best) {
    std::printf("val mAP50-95 %.4f -> %.4f (best epoch %d)\n", *r.val_map_before, *r.val_map_best,
                r.best_epoch);
  }
  for (const std::string& note : r.notes) std::printf("note: %s\n", note.c_str());
  std::printf("wrote %s\n", args.out.c_str());
  if (!args.json.empty()) {
    cvdeploy::cli::OutputPath("--json", args.json);
    std::string text = ReportJson(r).dump(2) + "\n";
    cvdeploy::WriteFileAtomically(args.json, std::vector<uint8_t>(text.begin(), text.end()));
  }
}

void Prepare(Args* args) {
  cvdeploy::cli::OutputPath("--out", args->out);
  args->train.augment = !args->no_augment;
  args->train.progress = PrintProgress;
  args->train.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

int Run(const Args& args, const CLI::App* distill, const CLI::App* finetune) {
  if (distill->parsed()) {
    std::vector<uint8_t> student = cvdeploy::ReadModelBytes(args.student);
    std::vector<uint8_t> teacher = cvdeploy::ReadModelBytes(args.teacher);
    Finish(args, cvdeploy::Distill(student, args.student, teacher, args.teacher, args.train));
  } else if (finetune->parsed()) {
    Finish(args, cvdeploy::Finetune(cvdeploy::ReadModelBytes(args.model), args.model, args.train));
  } else {
    cvdeploy::QatOptions options;
    options.train = args.train;
    options.calib_dir = args.calib;
    options.calib_size = args.calib_size;
    Finish(args,
           cvdeploy::QuantizeAwareTrain(cvdeploy::ReadModelBytes(args.model), args.model, options));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cvdeploy-train: distillation, fine-tuning and QAT (libtorch)", "cvdeploy-train"};
  app.require_subcommand(1, 1);
  app.set_version_flag("--version", std::string("cvdeploy-train ") + CVDEPLOY_VERSION + " (" +
                                        CVDEPLOY_GIT_COMMIT + ")");
  Args args;
  CLI::App* distill = app.add_subcommand("distill", "Distill a teacher into a student");
  distill->add_option("--student", args.student, "Student model (.onnx)")->required();
  distill->add_option("--teacher", args.teacher, "Teacher model (.onnx)")->required();
  distill->add_option("--images", args.train.images,
                      "Training images (unlabelled; with --data its images are used)");
  distill->add_option("--data", args.train.data,
                      "Labelled training set: mix in the detection loss");
  distill
      ->add_option("--label-weight", args.train.label_loss_weight,
                   "Weight of the detection loss with --data")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  distill
      ->add_option("--hint-weight", args.train.hint_weight,
                   "Weight of the feature hints on every block output (0: none)")
      ->check(CLI::Range(0.0, 1000.0));
  AddCommon(distill, &args);
  AddDistillLoss(distill, &args);
  CLI::App* finetune = app.add_subcommand("finetune", "Fine-tune on a labelled YOLO dataset");
  finetune->add_option("--model", args.model, "Model (.onnx)")->required();
  finetune->add_option("--data", args.train.data, "Labelled training set")->required();
  // --lr is shared by the subcommands; finetune's and qat's defaults (in their --help) are lower.
  args.train.lr = cvdeploy::kFinetuneLearningRate;
  AddCommon(finetune, &args);
  CLI::App* qat = app.add_subcommand("qat", "Quantization-aware training");
  qat->add_option("--model", args.model, "Float model (.onnx)")->required();
  qat->add_option("--calib", args.calib, "Calibration images")->required();
  qat->add_option("--calib-size", args.calib_size, "Calibration images used")
      ->check(CLI::Range(1, 100000));
  qat->add_option("--images", args.train.images, "Training images (unlabelled)")->required();
  args.train.lr = cvdeploy::kQatLearningRate;
  AddCommon(qat, &args);
  AddDistillLoss(qat, &args);
  args.train.lr = cvdeploy::TrainOptions{}.lr;
  try {
    app.parse(argc, argv);
    if (qat->parsed() && qat->get_option("--lr")->count() == 0) {
      args.train.lr = cvdeploy::kQatLearningRate;
    }
    if (finetune->parsed() && finetune->get_option("--lr")->count() == 0) {
      args.train.lr = cvdeploy::kFinetuneLearningRate;
    }
    Prepare(&args);
    return Run(args, distill, finetune);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help / --version
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cvdeploy: usage error: %s (see 'cvdeploy %s --help')\n",
                 FirstLine(e.what()).c_str(), argc > 1 ? argv[1] : "distill");
    return cvdeploy::cli::ExitCodeOf(cvdeploy::cli::Outcome::kUsage);
  } catch (const Error& e) {
    std::fprintf(stderr, "cvdeploy: error: %s\n", FirstLine(e.what()).c_str());
    return cvdeploy::cli::ExitCodeOf(e.code());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "cvdeploy: error: out of memory\n");
    return cvdeploy::cli::ExitCodeOf(ErrorCode::kRuntime);
  } catch (const std::exception& e) {
    // libtorch's errors carry a multi-line backtrace: the first line is the reason.
    std::fprintf(stderr, "cvdeploy: error: %s\n", FirstLine(e.what()).c_str());
    return cvdeploy::cli::ExitCodeOf(ErrorCode::kRuntime);
  }
}
