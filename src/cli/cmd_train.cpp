// SPDX-License-Identifier: Apache-2.0
// cvdeploy distill | finetune | qat ...: training runs in its own program, cvdeploy-train
// (include/cvdeploy/train.h, built when libtorch is present), which these subcommands execute
// with the same arguments. The main binary does not link libtorch: loading it costs every
// process about 0.4 s. `cvdeploy-train` is looked up next to this executable.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cvdeploy/error.h"

namespace cvdeploy::cli {
namespace {

std::string SelfDirectory() {
  char buffer[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) return ".";
  std::string path(buffer, static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

[[noreturn]] void RunTrainer(const std::string& command, const std::vector<std::string>& args) {
  std::string program = SelfDirectory() + "/cvdeploy-train";
  if (access(program.c_str(), X_OK) != 0) {
    throw Error(ErrorCode::kUnavailable,
                "cvdeploy " + command + ": training is not in this build: " + program +
                    " not found (it is built when libtorch is present: scripts/setup-deps.sh "
                    "installs libtorch-dev; then make build)");
  }
  std::vector<std::string> words = {"cvdeploy-train", command};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  execv(program.c_str(), argv.data());
  throw Error(ErrorCode::kRuntime, "cvdeploy " + command + ": cannot run " + program);
}

void AddForward(CLI::App& app, const std::string& name, const std::string& description) {
  CLI::App* sub = app.add_subcommand(name, description + " (runs cvdeploy-train; --help there)");
  sub->set_help_flag();  // --help goes to cvdeploy-train, which knows the options
  sub->prefix_command();
  sub->callback([sub, name] { RunTrainer(name, sub->remaining()); });
}

}  // namespace

void RegisterTraining(CLI::App& app, int* /*exit_code*/) {
  AddForward(app, "distill",
             "Distill a teacher model into a (pruned) student on unlabelled images");
  AddForward(app, "finetune", "Fine-tune a model on a labelled YOLO dataset");
  AddForward(app, "qat", "Quantization-aware training: an int8 model that keeps more accuracy");
}

}  // namespace cvdeploy::cli
