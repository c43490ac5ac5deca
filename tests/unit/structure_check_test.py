#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Unit tests of scripts/check_structure.py on small fixture trees written to a temp dir:
a clean tree passes, each kind of violation is reported (file and line), and the function
scanner measures bodies through literals, comments, lambdas and initializer lists."""
import contextlib
import io
import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import check_structure as cs  # noqa: E402


def write_tree(root, files):
    for relpath, text in files.items():
        path = os.path.join(root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))


def function(name, lines):
    """A function whose signature line to closing brace spans exactly `lines` lines."""
    body = "".join(f"  x += {k};\n" for k in range(lines - 2))
    return f"int {name}(int x) {{\n{body}}}\n"


CLEAN_TREE = {
    "include/cvdeploy/api.h": '#include "cvdeploy/types.h"\n#include <vector>\n',
    "include/cvdeploy/types.h": "struct T {};\n",
    "src/core/file.cpp": '#include "cvdeploy/api.h"\n#include "core/file.h"\n#include "file.h"\n',
    "src/core/file.h": "#include <string>\n",
    "src/model/info.cpp": '#include "core/file.h"\n#include <onnx/onnx_pb.h>\n',
    "src/backends/ort/ort.cpp": '#include "backends/backend.h"\n#include "model/info.h"\n',
    "src/backends/backend.h": "",
    "src/vision/letterbox.cpp": '#include "backends/backend.h"\n',
    "src/eval/map.cpp": '#include "vision/letterbox.h"\n#include "core/file.h"\n',
    "src/pipeline/run.cpp": '#include "cvdeploy/api.h"\n',
    "src/bench/report.cpp": '#include "eval/map.h"\n#include "pipeline/run.h"\n',
    "src/optimize/quantize.cpp": '#include "bench/report.h"\n#include "model/info.h"\n',
    "src/cli/main.cpp": '#include <cvdeploy/api.h>\n#include "cli/options.h"\n#include "options.h"\n',
    "src/server/api.cpp": '#include "cvdeploy/api.h"\n#include "server/http.h"\n',
}


class IncludeFloorsTest(unittest.TestCase):
    def check(self, files):
        with tempfile.TemporaryDirectory() as root:
            write_tree(root, files)
            return [(v[0], v[1], v[3], v[4]) for v in cs.check_includes(root)]

    def test_clean_tree_passes(self):
        self.assertEqual(self.check(CLEAN_TREE), [])

    def test_lower_module_including_a_higher_one_is_reported(self):
        files = dict(CLEAN_TREE)
        files["src/core/predictor.cpp"] = ('#include "cvdeploy/api.h"\n'
                                           '#include "backends/backend.h"\n'
                                           '#include "vision/letterbox.h"\n')
        files["src/eval/compare.h"] = '#pragma once\n#include "bench/stats.h"\n'
        self.assertEqual(self.check(files), [
            ("src/core/predictor.cpp", 2, "core", "backends"),
            ("src/core/predictor.cpp", 3, "core", "vision"),
            ("src/eval/compare.h", 2, "eval", "bench"),
        ])

    def test_modules_on_one_floor_do_not_include_each_other(self):
        files = dict(CLEAN_TREE)
        files["src/eval/map.cpp"] = '#include "pipeline/run.h"\n'
        self.assertEqual(self.check(files), [("src/eval/map.cpp", 1, "eval", "pipeline")])

    def test_front_ends_use_the_public_api_only(self):
        files = dict(CLEAN_TREE)
        files["src/cli/cmd_bench.cpp"] = ('#include "cvdeploy/api.h"\n#include "core/file.h"\n'
                                          '#include "server/server.h"\n')
        files["src/server/repo.cpp"] = '#include "pipeline/run.h"\n'
        self.assertEqual(self.check(files), [
            ("src/cli/cmd_bench.cpp", 2, "cli", "core"),
            ("src/cli/cmd_bench.cpp", 3, "cli", "server"),
            ("src/server/repo.cpp", 1, "server", "pipeline"),
        ])

    def test_public_headers_include_only_each_other(self):
        files = dict(CLEAN_TREE)
        files["include/cvdeploy/leak.h"] = '#include "core/file.h"\n'
        self.assertEqual(self.check(files), [("include/cvdeploy/leak.h", 1, "api", "core")])

    def test_a_module_missing_from_the_table_is_reported(self):
        files = dict(CLEAN_TREE)
        files["src/plugins/token.cpp"] = '#include "core/file.h"\n'
        files["src/core/uses_new.cpp"] = '#include "plugins/token.h"\n'
        self.assertEqual(self.check(files), [
            ("src/core/uses_new.cpp", 1, "core", "plugins"),
            ("src/plugins/token.cpp", 1, "plugins", "core"),
        ])

    def test_security_sees_the_public_api_only_and_front_ends_its_public_headers(self):
        files = dict(CLEAN_TREE)
        files["src/security/auth.cpp"] = ('#include "cvdeploy/security/auth.h"\n'
                                          '#include "core/file.h"\n')
        files["src/server/gate.cpp"] = ('#include "cvdeploy/security/auth.h"\n'
                                        '#include "security/internal.h"\n')
        files["src/core/uses_security.cpp"] = '#include "security/auth.h"\n'
        self.assertEqual(self.check(files), [
            ("src/core/uses_security.cpp", 1, "core", "security"),
            ("src/security/auth.cpp", 2, "security", "core"),
            ("src/server/gate.cpp", 2, "server", "security"),
        ])

    def test_list_prints_every_violation_and_fails(self):
        files = dict(CLEAN_TREE)
        files["src/core/a.cpp"] = '#include "vision/letterbox.h"\n#include "vision/nms.h"\n'
        with tempfile.TemporaryDirectory() as root:
            write_tree(root, files)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(cs.main(["includes", "--root", root, "--list"]), 1)
            self.assertIn('src/core/a.cpp:1: include "vision/letterbox.h" from core to vision',
                          out.getvalue())
            self.assertIn('src/core/a.cpp:2: include "vision/nms.h" from core to vision',
                          out.getvalue())
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(cs.main(["includes", "--root", root]), 1)

    def test_allowed_edges_follow_the_floors(self):
        self.assertEqual(cs.ALLOWED["api"], {"api"})
        self.assertEqual(cs.ALLOWED["core"], {"api", "core"})
        self.assertIn("pipeline", cs.ALLOWED["optimize"])
        self.assertNotIn("optimize", cs.ALLOWED["pipeline"])
        self.assertEqual(cs.ALLOWED["cli"], {"api", "cli"})
        self.assertEqual(cs.ALLOWED["server"], {"api", "server"})
        self.assertEqual(cs.ALLOWED["security"], {"api", "security"})


class FunctionScanTest(unittest.TestCase):
    def lengths(self, text):
        return [(cs.function_name(h), last - first + 1)
                for h, first, last in cs.scan_functions(textwrap.dedent(text).lstrip("\n"))]

    def test_free_functions_and_templates(self):
        self.assertEqual(self.lengths("""
            namespace a {
            // comment { with a brace
            int F(int x) {
              return x;
            }
            template <typename T>
            T G(T t) const noexcept {
              return t;
            }
            auto H() -> int { return 1; }
            }  // namespace a
            """), [("F", 3), ("G", 4), ("H", 1)])

    def test_literals_comments_and_lambdas_stay_inside(self):
        self.assertEqual(self.lengths(r'''
            #define OPEN {
            std::string F() {
              const char* s = "}}} {";
              char c = '}';
              auto raw = R"x( } ) " } )x";
              /* } */
              auto f = [](int v) {
                return v;
              };
              int big = 1'000'000;
              return s;  // }
            }
            int G() { return 0; }
            '''), [("F", 11), ("G", 1)])

    def test_classes_members_and_initializer_lists(self):
        self.assertEqual(self.lengths("""
            struct S : Base {
             public:
              S(int a, int b) : a_{a}, b_(b), v_{1, 2} {
                Do();
              }
              int a() const { return a_; }
              bool operator==(const S& o) const {
                return a_ == o.a_;
              }
             private:
              int a_ = 0, b_{0};
              std::vector<int> v_{3, 4};
            };
            S::S() : a_(0) {}
            enum class E { kA, kB };
            constexpr int kTable[] = {1, 2, 3};
            const auto kLambda = [](int x) {
              return x;
            };
            """), [("S", 3), ("a", 1), ("operator==", 3), ("S::S", 1)])

    def test_length_runs_from_signature_to_closing_brace(self):
        text = function("Short", 150) + function("Long", 151)
        self.assertEqual(self.lengths(text), [("Short", 150), ("Long", 151)])


class SizesTest(unittest.TestCase):
    def violations(self, files, known_long=None):
        with tempfile.TemporaryDirectory() as root:
            write_tree(root, files)
            return [(v[0], v[1]) for v in cs.check_sizes(root, known_long or {})]

    def test_limits(self):
        self.assertEqual(self.violations({
            "src/core/ok.cpp": "//\n" * 800,
            "src/core/big.cpp": "//\n" * 801,
            "include/cvdeploy/fine.h": function("Fine", 150),
            "src/vision/long.cpp": "// header\n" + function("Long", 151),
            "src/vision/notes.txt": "-\n" * 801,  # any file under src/ counts
        }), [("src/core/big.cpp", 1), ("src/vision/long.cpp", 2), ("src/vision/notes.txt", 1)])

    def test_known_long_functions_may_not_grow_and_must_be_removed_when_fixed(self):
        files = {"src/model/m.cpp": function("Kept", 160) + function("Grown", 170),
                 "src/model/n.cpp": function("Fixed", 100)}
        known = {("src/model/m.cpp", "Kept"): 160, ("src/model/m.cpp", "Grown"): 165,
                 ("src/model/n.cpp", "Fixed"): 180}
        self.assertEqual(self.violations(files, known),
                         [("src/model/m.cpp", 161), ("src/model/n.cpp", 1)])

    def test_the_repository_passes(self):
        # The CTest structure_check runs this too; here it guards the scanner against a
        # change that would make it miss or invent functions in the real tree.
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        self.assertEqual(cs.check_sizes(root), [])


if __name__ == "__main__":
    unittest.main()
