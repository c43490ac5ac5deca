// SPDX-License-Identifier: Apache-2.0
// Subcommands of the cvdeploy CLI. Each Register* adds its subcommand to `app` and sets
// `*exit_code` when it runs. Commands throw cvdeploy::Error; main maps it to an exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace cvdeploy::cli {

void RegisterInfo(CLI::App& app, int* exit_code);
void RegisterPredict(CLI::App& app, int* exit_code);
void RegisterValidate(CLI::App& app, int* exit_code);
void RegisterConvert(CLI::App& app, int* exit_code);
void RegisterBench(CLI::App& app, int* exit_code);
void RegisterServe(CLI::App& app, int* exit_code);
void RegisterQuantize(CLI::App& app, int* exit_code);
void RegisterFp16(CLI::App& app, int* exit_code);
void RegisterPrune(CLI::App& app, int* exit_code);
void RegisterCompare(CLI::App& app, int* exit_code);
void RegisterKeys(CLI::App& app, int* exit_code);
void RegisterUsers(CLI::App& app, int* exit_code);
void RegisterAudit(CLI::App& app, int* exit_code);
void RegisterTls(CLI::App& app, int* exit_code);
void RegisterObfuscate(CLI::App& app, int* exit_code);
void RegisterPackageKeygen(CLI::App& app, int* exit_code);
void RegisterPack(CLI::App& app, int* exit_code);
void RegisterPackageVerify(CLI::App& app, int* exit_code);
void RegisterUnpack(CLI::App& app, int* exit_code);
void RegisterGolden(CLI::App& app, int* exit_code);
void RegisterDoctor(CLI::App& app, int* exit_code);
void RegisterDrift(CLI::App& app, int* exit_code);  // profile-data and drift
void RegisterHealth(CLI::App& app, int* exit_code);
void RegisterSamples(CLI::App& app, int* exit_code);   // samples list, samples replay
void RegisterTraining(CLI::App& app, int* exit_code);  // distill, finetune, qat -> cvdeploy-train

}  // namespace cvdeploy::cli
