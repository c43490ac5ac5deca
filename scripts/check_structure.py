#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Structure checks of src/ and include/ (issue 13, item 6), run by CTest.

  sizes     no file over 800 lines; no function over 150 lines (CTest structure_check)
  includes  the include floors: a module includes only itself and the modules its row of
            ALLOWED names (CTest include_floors)

Usage: check_structure.py [--root DIR] [--list] [--table] {sizes,includes,all}

Exit status 0 when clean, 1 on a violation, 2 on a usage error. Violations print as
FILE:LINE: message. `includes` without --list prints one line per forbidden module edge (its
count and first occurrence); --list prints every violating include. --table prints ALLOWED.

Modules: include/cvdeploy is `api`; src/NAME/... is NAME (src/backends/ort is `backends`).
An include names a module when its first path component is `cvdeploy` (api) or a directory of
src/; an include without a directory is the including file's own directory; every other
include (system, third party) is not checked.

The function scan is a brace matcher, not a parser: comments, string and character literals
(raw strings too) and preprocessor lines are blanked first; a function is a brace at file,
namespace or class scope whose header ends like a function signature (`) {`, `) const {`,
`) -> T {`, a constructor's initializer list). Its length runs from the header's first line
(template line included, comments above excluded) to the closing brace. Braces inside a
function (blocks, lambdas, local classes) belong to that function.
"""
import argparse
import os
import re
import sys

MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 150
CPP_SUFFIXES = (".cpp", ".cc", ".h", ".hpp")

# Functions over the limit when the check was introduced, in files owned by other work at the
# time; each may not grow past the length given, and an entry whose function is back within
# the limit (or gone) is itself reported, so the list only shrinks. (file, function): lines.
KNOWN_LONG_FUNCTIONS = {
}

# ---- Include floors -----------------------------------------------------------------------
# Lowest first. A module may include its own files, the public API, and every module on a
# lower floor; modules on one floor may not include each other. `predictor` is where the
# Predictor (today src/core/predictor.cpp) belongs: above the modules it drives. `bench` is
# the benchmark (report writers, profile parsing) just above pipeline; its machine and stats
# helpers are used lower down today (see docs/architecture.md).
FLOORS = [
    ["api"],
    ["core"],
    ["model"],
    ["backends"],
    ["vision"],
    ["predictor"],
    ["eval", "pipeline"],
    ["bench"],
    ["optimize"],
    ["train"],  # distill/finetune/QAT on libtorch (optional, its own library)
]
# Front ends use the public API only (and their own directory): no internals, no other front
# end (the CLI's serve command will use a public server header).
FRONT_ENDS = ["server", "cli", "train_cli"]
# The security module (crypto, authentication, RBAC, audit) knows no model: it sees the public
# API only. Its interface is public (include/cvdeploy/security/), which the front ends use.
SECURITY = "security"


def _allowed_edges():
    allowed = {}
    below = set()
    for floor in FLOORS:
        for module in floor:
            allowed[module] = {module, "api"} | below
        below |= set(floor)
    for module in FRONT_ENDS:
        allowed[module] = {module, "api"}
    # cvdeploy-train is run by `cvdeploy distill|finetune|qat`: it shares the CLI's exit-code
    # table (cli/exit_codes.h) and output-path rule (cli/output_path.*) so both answer alike.
    allowed["train_cli"].add("cli")
    allowed[SECURITY] = {SECURITY, "api"}
    allowed["api"] = {"api"}  # the public headers include only each other
    return allowed


# module -> modules it may include (its own included).
ALLOWED = _allowed_edges()


def module_of(relpath):
    """Module of a file given relative to the root, or None outside src/ and include/."""
    parts = relpath.replace(os.sep, "/").split("/")
    if len(parts) >= 3 and parts[0] == "include" and parts[1] == "cvdeploy":
        return "api"
    if len(parts) >= 3 and parts[0] == "src":
        return parts[1]
    return None


INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def included_module(root, including_module, bracket, target):
    """Module an include names, or None when it is not one of ours."""
    parts = target.split("/")
    if parts[0] == "cvdeploy" and len(parts) > 1:
        return "api"
    if bracket == "<":
        return None
    if len(parts) == 1:
        return including_module  # same directory
    if os.path.isdir(os.path.join(root, "src", parts[0])):
        return parts[0]
    return None


def source_files(root):
    for top in ("include", "src"):
        for directory, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(directory, name)
                yield os.path.relpath(path, root), path


def check_includes(root):
    """[(file, line, target, from_module, to_module, why)] for every forbidden include."""
    violations = []
    for relpath, path in source_files(root):
        module = module_of(relpath)
        if module is None or not relpath.endswith(CPP_SUFFIXES):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                match = INCLUDE_RE.match(line)
                if not match:
                    continue
                target = included_module(root, module, match.group(1), match.group(2))
                if target is None or target == module:
                    continue
                if module not in ALLOWED:
                    why = f"module {module} is not in the floors table"
                elif target in ALLOWED[module]:
                    continue
                elif module in FRONT_ENDS:
                    why = f"front end {module} may include only cvdeploy/ and {module}/"
                elif target not in ALLOWED:
                    why = f"{target} is not in the floors table"
                else:
                    why = f"{target} is not below {module}"
                violations.append((relpath, number, match.group(2), module, target, why))
    return violations


# ---- Sizes ----------------------------------------------------------------------------------


PREPROCESSOR_RE = re.compile(r"[ \t]*#")
RAW_STRING_RE = re.compile(r'(?:u8|u|U|L)?R"([^()\\ ]{0,16})\(')


def _blank(segment):
    return re.sub(r"[^\n]", " ", segment)


def blank_code(text):
    """`text` with comments, literals and preprocessor lines replaced by spaces (newlines kept),
    so that the braces and parentheses left are the code's own."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and PREPROCESSOR_RE.match(text, i):
            j = i  # a preprocessor line, with its backslash continuations
            while j < n and not (text[j] == "\n" and text[j - 1] != "\\"):
                j += 1
            out.append(_blank(text[i:j]))
            i = j
            continue
        line_start = c == "\n"
        raw = RAW_STRING_RE.match(text, i) if c in "uUL8R" else None
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find(")" + raw.group(1) + '"', raw.end())
            j = n if end < 0 else end + len(raw.group(1)) + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == "'" and 0 < i < n - 1 and text[i - 1] in "0123456789abcdefABCDEF" and \
                text[i + 1] in "0123456789abcdefABCDEF" and re.search(r"\b(0[xXbB])?[0-9a-fA-F']+$",
                                                                    text[max(0, i - 40):i]):
            j = i + 1  # a digit separator (1'000'000)
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            out.append(c)
            i += 1
            continue
        out.append(_blank(text[i:j]))
        i = j
    return "".join(out)


CLASS_HEADER_RE = re.compile(
    r"^(template\s*<.*>\s*)?(\[\[.*\]\]\s*)?(class|struct|union|enum)\b(?!.*\boperator\b)", re.S)
NAMESPACE_HEADER_RE = re.compile(r"^(inline\s+)?namespace\b|^extern\s*$")
ACCESS_RE = re.compile(r"^\s*(?:(?:public|private|protected)\s*:(?!:)\s*)+")
FUNCTION_TAIL_RE = re.compile(
    r"\)\s*(?:(?:const|volatile|noexcept|override|final|mutable|&&|&)\b\s*|"
    r"noexcept\s*\([^()]*(?:\([^()]*\))*[^()]*\)\s*|requires\b[^{;]*|->[^{;]*)*$", re.S)


def _initializer_list_start(header):
    """Index of the ':' that starts a constructor's member initializer list, or -1."""
    depth = 0
    for k, ch in enumerate(header):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ":" and depth == 0:
            prev = header[k - 1] if k else ""
            nxt = header[k + 1] if k + 1 < len(header) else ""
            if prev != ":" and nxt != ":" and header[:k].rstrip().endswith(")"):
                return k
    return -1


def classify_brace(header):
    """What a '{' at file, namespace or class scope opens, from the declaration text before it:
    namespace, class, function, or other (an initializer, a namespace-scope lambda)."""
    h = ACCESS_RE.sub("", header).strip()
    if NAMESPACE_HEADER_RE.search(h):
        return "namespace"
    if CLASS_HEADER_RE.match(h):
        return "class"
    if re.search(r"=\s*\[", h):
        return "other"  # `kF = [](...) {`: a lambda is not a function of its own
    if _initializer_list_start(h) >= 0 or FUNCTION_TAIL_RE.search(h):
        return "function"
    return "other"


def _skip_braces(code, i):
    """Index after the brace block opening at code[i]."""
    depth, j, n = 0, i, len(code)
    while j < n:
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return n


def scan_functions(text):
    """[(header, first_line, last_line)] of every function body in `text` (lines 1-based)."""
    code = blank_code(text)
    functions = []
    scopes = []  # kinds of the open namespace/class braces enclosing the position
    header_start = 0  # where the declaration being read begins
    in_init_list = False  # after a constructor's `) :`, member braces are not the body
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == ";":
            header_start, in_init_list = i + 1, False
        elif c == "}":
            if scopes:
                scopes.pop()
            header_start, in_init_list = i + 1, False
        elif c == ":" and not in_init_list:
            in_init_list = _initializer_list_start(
                ACCESS_RE.sub("", code[header_start:i + 1]).strip()) >= 0 and not \
                CLASS_HEADER_RE.match(code[header_start:i].strip())
        elif c == "{":
            header = code[header_start:i]
            if in_init_list:
                last = header.rstrip()[-1:]
                # `member_{x}` or `Base<T>{x}` initializes; after ')' or '}' the body opens.
                kind = "member" if (last.isalnum() or last in "_>") else "function"
            else:
                kind = classify_brace(header)
            if kind in ("namespace", "class"):
                scopes.append(kind)
                header_start = i + 1
            elif kind == "function":
                body = ACCESS_RE.sub("", header)
                first = header_start + len(header) - len(body.lstrip())
                end = _skip_braces(code, i)
                functions.append((re.sub(r"\s+", " ", body.strip())[:100],
                                  code.count("\n", 0, first) + 1, code.count("\n", 0, end) + 1))
                i, header_start, in_init_list = end, end, False
                continue
            else:  # an initializer or a member's braces: part of the declaration
                i = _skip_braces(code, i)
                continue
        i += 1
    return functions


def function_name(header):
    """The (qualified) name a function header declares: `Foo::Bar` of `int Foo::Bar(int x) const`."""
    h = re.sub(r"^template\s*<[^{]*?>\s*(?=[\w~])", "", header.strip())
    match = re.search(r"(operator\s*(?:\(\)|[^\s(]+)|[~\w:]+)\s*\(", h)
    return match.group(1) if match else h[:40]


def check_sizes(root, known_long=None):
    """[(file, line, message)] for files over MAX_FILE_LINES and functions over
    MAX_FUNCTION_LINES (beyond their KNOWN_LONG_FUNCTIONS allowance)."""
    known_long = KNOWN_LONG_FUNCTIONS if known_long is None else known_long
    unused = dict(known_long)
    violations = []
    for relpath, path in source_files(root):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_FILE_LINES:
            violations.append((relpath, 1, f"file has {lines} lines (limit {MAX_FILE_LINES})"))
        if not relpath.endswith(CPP_SUFFIXES):
            continue
        for header, first, last in scan_functions(text):
            length = last - first + 1
            name = function_name(header)
            allowance = known_long.get((relpath, name))
            if allowance is not None and length > MAX_FUNCTION_LINES:
                unused.pop((relpath, name), None)
                if length <= allowance:
                    continue
                violations.append((relpath, first, f"{name}: {length} lines, grew past its "
                                   f"KNOWN_LONG_FUNCTIONS allowance of {allowance}"))
            elif length > MAX_FUNCTION_LINES:
                violations.append((relpath, first, f"{name}: {length} lines (limit "
                                   f"{MAX_FUNCTION_LINES})"))
    for (relpath, name), allowance in sorted(unused.items()):
        violations.append((relpath, 1, f"{name}: no longer over {MAX_FUNCTION_LINES} lines (or "
                           "gone): remove its KNOWN_LONG_FUNCTIONS entry"))
    return violations


# ---- Command line ---------------------------------------------------------------------------


def print_table():
    for module in [m for floor in FLOORS for m in floor] + FRONT_ENDS:
        others = sorted(ALLOWED[module] - {module})
        print(f"{module:10} may include: {', '.join(others) if others else '(only itself)'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("check", nargs="?", default="all", choices=["sizes", "includes", "all"])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="repository root (default: this script's)")
    ap.add_argument("--list", action="store_true", help="print every include violation")
    ap.add_argument("--table", action="store_true", help="print the allowed include edges")
    args = ap.parse_args(argv)
    if args.table:
        print_table()
        return 0
    failed = False
    if args.check in ("sizes", "all"):
        violations = check_sizes(args.root)
        for relpath, line, message in violations:
            print(f"{relpath}:{line}: {message}")
        print(f"sizes: {len(violations)} violation(s)")
        failed |= bool(violations)
    if args.check in ("includes", "all"):
        violations = check_includes(args.root)
        if args.list:
            for relpath, line, target, module, to, why in violations:
                print(f'{relpath}:{line}: include "{target}" from {module} to {to}: {why}')
        else:
            edges = {}
            for v in violations:
                edges.setdefault((v[3], v[4]), []).append(v)
            for (module, to), items in sorted(edges.items()):
                relpath, line, target, _, _, why = items[0]
                print(f'{module} -> {to}: {len(items)} include(s), first {relpath}:{line}: '
                      f'"{target}" ({why})')
        print(f"includes: {len(violations)} violation(s)" +
              ("" if args.list or not violations else " (--list prints each)"))
        failed |= bool(violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
