// SPDX-License-Identifier: Apache-2.0
// cvdeploy users add|list|remove|reset-totp|passwd --users-file FILE: built-in users with a
// password and TOTP (security/users.h). A password is read from the terminal (no echo, asked
// twice) or, with --password-stdin, from the first line of standard input; never from a flag.
// A new TOTP secret is printed once on stdout: the otpauth:// URI, then the base32 secret.
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cvdeploy/error.h"
#include "cvdeploy/security/store_file.h"
#include "cvdeploy/security/users.h"

namespace cvdeploy::cli {
namespace {

using security::UserStore;

struct UsersArgs {
  std::string users_file, name;
  std::vector<std::string> roles;
  bool password_stdin = false, json = false;
};

std::string ReadStdinPassword() {
  std::string line;
  if (!std::getline(std::cin, line) || line.empty()) {
    throw InvalidArgument("--password-stdin: no password on the first line of standard input");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Restores the terminal's echo however the prompt ends.
class NoEcho {
 public:
  explicit NoEcho(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) throw InvalidArgument("/dev/tty: not a terminal");
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(fd_, TCSAFLUSH, &quiet);
  }
  ~NoEcho() { ::tcsetattr(fd_, TCSAFLUSH, &saved_); }

 private:
  int fd_;
  termios saved_{};
};

std::string PromptLine(int fd, const std::string& prompt) {
  if (::write(fd, prompt.data(), prompt.size()) < 0) {
    throw InvalidArgument("/dev/tty: cannot write the prompt");
  }
  std::string line;
  char c = 0;
  while (true) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    if (line.size() > security::kMaxPasswordBytes) continue;  // CheckPasswordRules refuses it
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string PromptPassword(const std::string& user) {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw InvalidArgument(
        "no terminal to ask for the password; pass it on standard input with --password-stdin");
  }
  std::string first, second;
  try {
    NoEcho quiet(fd);
    first = PromptLine(fd, "Password for " + user + ": ");
    second = PromptLine(fd, "Repeat the password: ");
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (first != second) throw InvalidArgument("password: the two entries differ");
  return first;
}

std::string ReadPassword(const UsersArgs& args) {
  return args.password_stdin ? ReadStdinPassword() : PromptPassword(args.name);
}

void PrintEnrollment(const security::TotpEnrollment& e) {
  std::cout << e.uri << "\n" << e.secret_base32 << "\n";
  std::cout.flush();
}

void Add(const UsersArgs& args) {
  security::CheckStoreName("user", args.name);
  security::UserStoreOptions options;
  options.create_if_missing = true;
  UserStore store(args.users_file, options);  // permission errors before the prompt
  const std::string password = ReadPassword(args);
  const auto enrollment = store.Add(args.name, args.roles, password);
  PrintEnrollment(enrollment);
  std::fprintf(stderr,
               "added user '%s' to %s; add the otpauth URI (or the secret) to an authenticator "
               "app now: it is shown only this once\n",
               args.name.c_str(), args.users_file.c_str());
}

void List(const UsersArgs& args) {
  UserStore store(args.users_file);
  const auto users = store.List();
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& u : users) {
      out.push_back(
          {{"name", u.name}, {"roles", u.roles}, {"created", security::FormatUtc(u.created)}});
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("%-24s %-32s %s\n", "NAME", "ROLES", "CREATED");
  for (const auto& u : users) {
    std::string roles;
    for (const auto& r : u.roles) roles += (roles.empty() ? "" : ",") + r;
    std::printf("%-24s %-32s %s\n", u.name.c_str(), roles.c_str(),
                security::FormatUtc(u.created).c_str());
  }
}

}  // namespace

void RegisterUsers(CLI::App& app, int* exit_code) {
  auto* users = app.add_subcommand("users", "Manage built-in users (password + TOTP login)");
  users->require_subcommand(1, 1);
  auto args = std::make_shared<UsersArgs>();
  auto add_common = [&](CLI::App* cmd, bool with_name) {
    if (with_name) cmd->add_option("name", args->name, "User name")->required();
    cmd->add_option("--users-file", args->users_file, "Users file (JSON, mode 0600)")->required();
  };
  auto add_password_stdin = [&](CLI::App* cmd) {
    cmd->add_flag("--password-stdin", args->password_stdin,
                  "Read the password from the first line of standard input (else: prompt)");
  };

  auto* add = users->add_subcommand("add", "Add a user; prints the TOTP URI and secret once");
  add_common(add, true);
  add->add_option("--role", args->roles, "Role of the user (repeatable)")->required();
  add_password_stdin(add);
  add->callback([args, exit_code] {
    Add(*args);
    *exit_code = 0;
  });

  auto* list = users->add_subcommand("list", "List users (no secrets)");
  add_common(list, false);
  list->add_flag("--json", args->json, "Print JSON instead of a table");
  list->callback([args, exit_code] {
    List(*args);
    *exit_code = 0;
  });

  auto* remove = users->add_subcommand("remove", "Remove a user");
  add_common(remove, true);
  remove->callback([args, exit_code] {
    UserStore(args->users_file).Remove(args->name);
    std::fprintf(stderr, "removed user '%s' from %s\n", args->name.c_str(),
                 args->users_file.c_str());
    *exit_code = 0;
  });

  auto* reset = users->add_subcommand("reset-totp", "Give a user a new TOTP secret (printed once)");
  add_common(reset, true);
  reset->callback([args, exit_code] {
    PrintEnrollment(UserStore(args->users_file).ResetTotp(args->name));
    std::fprintf(stderr, "new TOTP secret for '%s'; the old one no longer works\n",
                 args->name.c_str());
    *exit_code = 0;
  });

  auto* passwd = users->add_subcommand("passwd", "Set a user's password");
  add_common(passwd, true);
  add_password_stdin(passwd);
  passwd->callback([args, exit_code] {
    UserStore store(args->users_file);
    bool known = false;
    for (const auto& u : store.List()) known = known || u.name == args->name;
    if (!known) throw NotFound("no user named '" + args->name + "' in " + args->users_file);
    store.SetPassword(args->name, ReadPassword(*args));
    std::fprintf(stderr, "password of '%s' changed\n", args->name.c_str());
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
