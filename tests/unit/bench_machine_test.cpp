// SPDX-License-Identifier: Apache-2.0
// Machine description: /proc/cpuinfo parsing on embedded samples, and detection on this host.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cvdeploy/system.h"

namespace cvdeploy::bench {
namespace {

// Two logical processors; the flags are out of report order and include ones not reported.
std::string X86Sample(const std::string& core_id_of_second) {
  const std::string flags =
      "fpu vme de pse tsc msr avx2 sse sse2 ht fma sse4_1 sse4_2 popcnt aes avx f16c bmi1";
  return "processor\t: 0\n"
         "vendor_id\t: GenuineIntel\n"
         "model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
         "physical id\t: 0\n"
         "siblings\t: 2\n"
         "core id\t\t: 0\n"
         "cpu cores\t: 1\n"
         "flags\t\t: " +
         flags +
         "\n"
         "\n"
         "processor\t: 1\n"
         "vendor_id\t: GenuineIntel\n"
         "model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
         "physical id\t: 0\n"
         "siblings\t: 2\n"
         "core id\t\t: " +
         core_id_of_second +
         "\n"
         "cpu cores\t: 1\n"
         "flags\t\t: " +
         flags + "\n\n";
}

TEST(BenchMachine, ParsesX86HyperthreadsOfOneCore) {
  const MachineInfo m = ParseCpuInfo(X86Sample("0"));
  EXPECT_EQ(m.cpu_model, "Intel(R) Xeon(R) CPU @ 2.20GHz");
  EXPECT_EQ(m.logical_cores, 2);
  EXPECT_EQ(m.physical_cores, 1);
  EXPECT_EQ(m.isa, (std::vector<std::string>{"sse4_2", "avx", "avx2", "fma", "f16c"}));
}

TEST(BenchMachine, ParsesX86TwoCores) {
  const MachineInfo m = ParseCpuInfo(X86Sample("1"));
  EXPECT_EQ(m.logical_cores, 2);
  EXPECT_EQ(m.physical_cores, 2);
}

TEST(BenchMachine, SameCoreIdOnDifferentSocketsIsTwoCores) {
  std::string text = X86Sample("0");
  text.replace(text.rfind("physical id\t: 0"), 15, "physical id\t: 1");
  EXPECT_EQ(ParseCpuInfo(text).physical_cores, 2);
}

TEST(BenchMachine, ArmWithoutModelNameOrCoreIds) {
  const std::string text =
      "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes crc32 cpuid\n"
      "CPU implementer\t: 0x41\n\n"
      "processor\t: 1\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes crc32 cpuid\n\n"
      "processor\t: 2\nFeatures\t: fp asimd\n";
  const MachineInfo m = ParseCpuInfo(text);
  EXPECT_EQ(m.cpu_model, "unknown");
  EXPECT_EQ(m.logical_cores, 3);
  EXPECT_EQ(m.physical_cores, 3);  // no core ids: falls back to logical
  EXPECT_EQ(m.isa, std::vector<std::string>{"asimd"});
}

TEST(BenchMachine, EmptyText) {
  const MachineInfo m = ParseCpuInfo("");
  EXPECT_EQ(m.cpu_model, "unknown");
  EXPECT_EQ(m.logical_cores, 0);
  EXPECT_TRUE(m.isa.empty());
}

TEST(BenchMachine, DetectsThisHost) {
  const MachineInfo m = DetectMachine();
  EXPECT_FALSE(m.cpu_model.empty());
  EXPECT_GE(m.logical_cores, 1);
  EXPECT_GE(m.physical_cores, 1);
  EXPECT_FALSE(m.os.empty());
  EXPECT_GT(m.memory_gib, 0.0);
}

TEST(BenchMachine, JsonKeysInOrder) {
  MachineInfo m = ParseCpuInfo(X86Sample("1"));
  m.os = "Linux 6.1.0";
  m.memory_gib = 15.6251;
  const auto j = MachineToJson(m);
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"cpu_model", "logical_cores", "physical_cores", "isa",
                                            "os", "memory_gib"}));
  EXPECT_EQ(j["physical_cores"], 2);
  EXPECT_TRUE(j["isa"].is_array());
  EXPECT_EQ(j["isa"][2], "avx2");
  EXPECT_DOUBLE_EQ(j["memory_gib"].get<double>(), 15.63);
}

TEST(BenchMachine, Int8IsaFeaturesAndWarning) {
  MachineInfo avx2;
  avx2.isa = {"sse4_2", "avx", "avx2", "fma"};
  const Int8Isa plain = Int8Features(avx2);
  EXPECT_TRUE(plain.x86);
  EXPECT_TRUE(plain.avx2);
  EXPECT_FALSE(plain.dot_products());
  EXPECT_EQ(Int8IsaSummary(plain), "AVX2 yes, AVX-512 VNNI no, AVX-VNNI no, AMX-INT8 no");
  EXPECT_NE(Int8IsaWarning(plain, true).find("without VNNI or AMX-INT8"), std::string::npos);
  EXPECT_EQ(Int8IsaWarning(plain, false), "");  // a float model: nothing to warn about

  for (const char* flag : {"avx512_vnni", "avx_vnni", "amx_int8"}) {
    MachineInfo m = avx2;
    m.isa.push_back(flag);
    const Int8Isa isa = Int8Features(m);
    EXPECT_TRUE(isa.dot_products()) << flag;
    EXPECT_EQ(Int8IsaWarning(isa, true), "") << flag;
    EXPECT_EQ(Int8IsaToJson(isa)[flag], true) << flag;
    EXPECT_EQ(Int8IsaToJson(isa)["int8_dot_products"], true) << flag;
  }
  MachineInfo arm;
  arm.isa = {"neon", "asimd"};
  EXPECT_EQ(Int8IsaWarning(Int8Features(arm), true), "");
  EXPECT_EQ(Int8IsaWarning(Int8Features(MachineInfo{}), true), "");  // nothing known: no claim
  const auto keys = Int8IsaToJson(plain);
  std::vector<std::string> names;
  for (const auto& [key, value] : keys.items()) names.push_back(key);
  EXPECT_EQ(names, (std::vector<std::string>{"avx2", "avx512_vnni", "avx_vnni", "amx_int8",
                                             "int8_dot_products"}));
}

}  // namespace
}  // namespace cvdeploy::bench
