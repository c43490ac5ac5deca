// SPDX-License-Identifier: Apache-2.0
#include "cli/usage_errors.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "cli/suggest.h"

namespace cvdeploy::cli {
namespace {

// An argument CLI11 could not place, and the (sub)command it was left over in.
struct Leftover {
  const CLI::App* owner = nullptr;
  std::string token;
};

// Ultralytics' mode words and the cvdeploy commands that do the same.
const std::map<std::string, std::string>& UltralyticsModes() {
  static const std::map<std::string, std::string> modes = {
      {"predict", "predict"}, {"val", "validate"}, {"benchmark", "bench"}};
  return modes;
}

bool IsTaskWord(const std::string& word) {
  return word == "detect" || word == "segment" || word == "pose" || word == "classify" ||
         word == "obb";
}

// The top-level app, then each parsed subcommand below it.
std::vector<CLI::App*> ParsedChain(CLI::App& app) {
  std::vector<CLI::App*> chain = {&app};
  while (true) {
    const std::vector<CLI::App*> parsed = chain.back()->get_subcommands();
    if (parsed.empty()) break;
    chain.push_back(parsed.front());
  }
  return chain;
}

// "cvdeploy predict" for the chain (or its first `depth` apps).
std::string CommandName(const std::vector<CLI::App*>& chain, size_t depth = 100) {
  std::string name;
  for (size_t i = 0; i < chain.size() && i < depth; ++i) {
    name += (i ? " " : "") + chain[i]->get_name();
  }
  return name;
}

// Leftovers in the order of `args` (CLI11 keeps them per app).
std::vector<Leftover> Leftovers(const std::vector<CLI::App*>& chain,
                                const std::vector<std::string>& args) {
  std::vector<Leftover> pending;
  for (const CLI::App* app : chain) {
    for (const std::string& token : app->remaining(false)) pending.push_back({app, token});
  }
  std::vector<Leftover> ordered;
  for (const std::string& arg : args) {
    auto it = std::find_if(pending.begin(), pending.end(),
                           [&](const Leftover& l) { return l.token == arg; });
    if (it == pending.end()) continue;
    ordered.push_back(*it);
    pending.erase(it);
  }
  ordered.insert(ordered.end(), pending.begin(), pending.end());
  return ordered;
}

// "model=x.onnx": an identifier, '=', anything; never a flag.
bool IsKeyValue(const std::string& token, std::string* key, std::string* value) {
  const size_t eq = token.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(token[0])) && token[0] != '_') return false;
  for (size_t i = 0; i < eq; ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  }
  *key = token.substr(0, eq);
  *value = token.substr(eq + 1);
  return true;
}

// `value` as one shell word: quoted unless it is plainly safe.
std::string ShellWord(const std::string& value) {
  const bool safe = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_-./:=,+@%").find(c) != std::string_view::npos;
  });
  if (safe) return value;
  std::string quoted = "'";
  for (char c : value) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The long flag a key names ("save_dir" -> "--save-dir").
std::string FlagOf(const std::string& key) {
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

CLI::App* FindSubcommand(CLI::App& app, const std::string& name) {
  const std::vector<CLI::App*> all =
      app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == name; });
  return all.empty() ? nullptr : all.front();
}

// Every long flag of the chain's apps, without the dashes ("model", "help", ...).
std::vector<std::string> FlagNames(const std::vector<CLI::App*>& chain) {
  std::vector<std::string> names;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    for (const CLI::Option* opt : (*it)->get_options()) {
      for (const std::string& name : opt->get_lnames()) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      }
    }
  }
  return names;
}

// The Ultralytics-style arguments of `args` translated: nullopt when there are none.
std::optional<UsageExplanation> ExplainUltralytics(CLI::App& app,
                                                   const std::vector<CLI::App*>& chain,
                                                   const std::vector<Leftover>& leftovers,
                                                   const std::vector<std::string>& args) {
  auto is_leftover = [&](const std::string& token, const CLI::App* owner) {
    return std::any_of(leftovers.begin(), leftovers.end(), [&](const Leftover& l) {
      return l.token == token && (owner == nullptr || l.owner == owner);
    });
  };
  // The command: the parsed one, else `mode=...` or a mode word, else a word close to a
  // command ("predcit"), else predict (as `yolo` does).
  std::vector<std::string> path;
  for (size_t i = 1; i < chain.size(); ++i) path.push_back(chain[i]->get_name());
  std::string key, value, mode_token;
  if (path.empty()) {
    for (const std::string& arg : args) {
      std::string mode;
      if (IsKeyValue(arg, &key, &value) && key == "mode") mode = value;
      if (!IsKeyValue(arg, &key, &value) && is_leftover(arg, &app)) mode = arg;
      auto it = UltralyticsModes().find(mode);
      if (it != UltralyticsModes().end()) {
        path.push_back(it->second);
        break;
      }
    }
  }
  if (path.empty()) {
    std::vector<std::string> commands;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      commands.push_back(sub->get_name());
    }
    for (const std::string& arg : args) {
      if (arg.empty() || arg[0] == '-' || IsKeyValue(arg, &key, &value) || IsTaskWord(arg) ||
          !is_leftover(arg, &app)) {
        continue;
      }
      const std::vector<std::string> best = Suggest(arg, commands);
      if (best.size() == 1) {
        path.push_back(best.front());
        mode_token = arg;
      }
      break;
    }
  }
  if (path.empty()) path.push_back("predict");
  CLI::App* command = chain.size() > 1 ? chain.back() : FindSubcommand(app, path.front());
  auto option_of = [&](const std::string& k) -> const CLI::Option* {
    return command ? command->get_option_no_throw(FlagOf(k)) : nullptr;
  };
  // A key=value that CLI11 took as an option's value ("--source bus.jpg model=x.onnx") counts
  // only when it names a required flag that is missing, so that a value such as
  // "--sweep threads=1,2" is never rewritten.
  auto is_key_value = [&](const std::string& arg) {
    if (!IsKeyValue(arg, &key, &value)) return false;
    if (is_leftover(arg, nullptr)) return true;
    const CLI::Option* opt = option_of(key);
    return opt != nullptr && opt->get_required() && opt->count() == 0;
  };

  std::vector<std::string> odd;  // the Ultralytics-style arguments, as given
  std::string line = "cvdeploy";
  for (const std::string& p : path) line += " " + p;
  size_t next_path_word = chain.size() > 1 ? 0 : path.size();  // subcommand words to skip
  for (const std::string& arg : args) {
    if (next_path_word < path.size() && arg == path[next_path_word]) {
      ++next_path_word;
      continue;
    }
    if (!mode_token.empty() && arg == mode_token) {
      mode_token.clear();  // the mistyped command, replaced by the one it is closest to
      continue;
    }
    const bool top_leftover = is_leftover(arg, &app);
    if (is_key_value(arg)) {
      odd.push_back(arg);
      if (key == "mode") continue;
      const CLI::Option* opt = option_of(key);
      if (opt != nullptr && opt->get_items_expected_max() == 0) {
        // A flag: mode-like true/false values select it or leave it out.
        if (value != "False" && value != "false" && value != "0") line += " " + FlagOf(key);
        continue;
      }
      line += " " + FlagOf(key) + " " + ShellWord(value);
    } else if (top_leftover && (IsTaskWord(arg) || UltralyticsModes().count(arg))) {
      odd.push_back(arg);
      if (IsTaskWord(arg)) line += " --task " + arg;
    } else {
      line += " " + ShellWord(arg);
    }
  }
  if (odd.empty()) return std::nullopt;
  std::string listed;
  for (const std::string& o : odd) listed += (listed.empty() ? "" : " ") + o;
  return UsageExplanation{"Ultralytics-style arguments are not accepted: " + listed +
                              " (the form is: cvdeploy COMMAND --flag value)",
                          "did you mean: " + line};
}

}  // namespace

std::optional<UsageExplanation> ExplainUsageError(CLI::App& app,
                                                  const std::vector<std::string>& args) {
  const std::vector<CLI::App*> chain = ParsedChain(app);
  const std::vector<Leftover> leftovers = Leftovers(chain, args);
  if (auto ultralytics = ExplainUltralytics(app, chain, leftovers, args)) return ultralytics;
  if (leftovers.empty()) return std::nullopt;

  // An unknown (sub)command: a word left over in the deepest command, which has subcommands.
  CLI::App* last = chain.back();
  std::vector<std::string> commands;
  for (const CLI::App* sub : last->get_subcommands([](CLI::App*) { return true; })) {
    if (!sub->get_name().empty()) commands.push_back(sub->get_name());
  }
  if (!commands.empty()) {
    std::string prefix;  // "golden " for a mistyped subcommand of `golden`
    for (size_t i = 1; i < chain.size(); ++i) prefix += chain[i]->get_name() + " ";
    for (const Leftover& l : leftovers) {
      if (l.owner != last || l.token.empty() || l.token[0] == '-') continue;
      std::vector<std::string> best = Suggest(l.token, commands);
      for (std::string& b : best) b = prefix + b;
      const std::string hint = best.empty() ? " (see '" + CommandName(chain) + " --help')"
                                            : " (did you mean " + JoinAlternatives(best) + "?)";
      return UsageExplanation{"unknown command '" + prefix + l.token + "'" + hint, ""};
    }
  }

  // An unknown flag, named as typed ("--modle", or "--modle=x" without its value).
  const std::vector<std::string> flags = FlagNames(chain);
  for (const Leftover& l : leftovers) {
    if (l.token.size() < 2 || l.token[0] != '-') continue;
    const std::string flag = l.token.substr(0, l.token.find('='));
    const std::string name = flag.substr(flag.find_first_not_of('-'));
    std::vector<std::string> best = Suggest(name, flags);
    for (std::string& b : best) b = "--" + b;
    const std::string hint = best.empty() ? " (see '" + CommandName(chain) + " --help')"
                                          : " (did you mean " + JoinAlternatives(best, "") + "?)";
    return UsageExplanation{"unknown flag " + flag + hint, ""};
  }

  // Anything else: a word no option or command takes (perhaps a flag without its dashes).
  const Leftover& first = leftovers.front();
  std::vector<std::string> best = Suggest(first.token, flags);
  for (std::string& b : best) b = "--" + b;
  const std::string hint = best.empty() ? " (see '" + CommandName(chain) + " --help')"
                                        : " (did you mean " + JoinAlternatives(best, "") + "?)";
  return UsageExplanation{
      "unexpected argument '" + first.token + "' for '" + CommandName(chain) + "'" + hint, ""};
}

}  // namespace cvdeploy::cli
