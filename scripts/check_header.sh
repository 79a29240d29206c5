#!/bin/sh
# check_header.sh [HEADER] -- compiles the public header on its own as C99 and
# as C++17 with every warning an error. HEADER defaults to include/asyncrt.h;
# CC and CXX override gcc and g++.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
header=${1:-$root/include/asyncrt.h}
cc=${CC:-gcc}
cxx=${CXX:-g++}
flags="-Wall -Wextra -Werror -pedantic -fsyntax-only"

status=0
if "$cc" -x c -std=c99 $flags "$header"; then
    echo "ok   $header compiles as C99 ($cc)"
else
    echo "FAIL $header does not compile as C99 ($cc)"
    status=1
fi
if "$cxx" -x c++ -std=c++17 $flags "$header"; then
    echo "ok   $header compiles as C++17 ($cxx)"
else
    echo "FAIL $header does not compile as C++17 ($cxx)"
    status=1
fi
# Callable from any C FFI: no varargs, no aggregates by value.
python3 "$root/scripts/check_ffi.py" "$header" || status=1
exit $status
