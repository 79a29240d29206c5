#!/usr/bin/env python3
"""check_ffi.py [HEADER] -- the ABI stays callable from any C FFI (Mojo's
among them, issue 9): no function of the header takes variable arguments,
and none takes or returns a struct or union by value (pointers only), so a
binding never needs to know how a platform passes aggregates. Prints one
line per finding; exits 1 if there is any."""
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
header = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "include", "asyncrt.h")
text = open(header).read()
text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments
text = re.sub(r"//[^\n]*", " ", text)

# Aggregate type names: typedef struct/union X ... X; and `struct X`.
aggregates = set(re.findall(r"typedef\s+(?:struct|union)\s+\w*\s*(?:\{[^}]*\})?\s*(\w+)\s*;", text, re.S))

decls = re.findall(r"ASYNCRT_API\s+([^;{]*?\))\s*;", text, re.S)
problems = []
for decl in decls:
    decl = " ".join(decl.split())
    m = re.match(r"(.*?)\b(asyncrt_\w+)\s*\((.*)\)$", decl)
    if not m:
        problems.append(f"cannot read the declaration: {decl}")
        continue
    ret, name, params = m.groups()
    if "..." in params:
        problems.append(f"{name}: takes variable arguments")
    ret_type = ret.replace("const", "").strip()
    if "*" not in ret and (ret_type in aggregates or ret_type.startswith(("struct ", "union "))):
        problems.append(f"{name}: returns {ret_type} by value")
    for param in params.split(","):
        param = param.strip()
        if "*" in param or "(" in param or param in ("void", ""):
            continue
        words = param.replace("const", "").split()
        ptype = " ".join(words[:-1]) if len(words) > 1 else words[0]
        if ptype in aggregates or ptype.startswith(("struct ", "union ")):
            problems.append(f"{name}: takes {ptype} by value ({param})")

if len(decls) < 50:
    problems.append(f"found only {len(decls)} declarations: the parser no longer reads the header")
for p in problems:
    print(f"FAIL {p}")
if problems:
    sys.exit(1)
print(f"ok   {len(decls)} functions of {os.path.relpath(header, root)}: no varargs, no struct passed or returned by value")
