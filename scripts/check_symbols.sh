#!/bin/sh
# check_symbols.sh [--strict] LIBRARY [HEADER]
#
# Checks that the asyncrt_* symbols LIBRARY exports (nm -D --defined-only) are
# exactly the functions HEADER declares with ASYNCRT_API (HEADER defaults to
# include/asyncrt.h), and prints the differences.
#
# With --strict it also fails if LIBRARY exports any other symbol (Go runtime
# and cgo symbols leak out of a c-shared library until a linker version script
# hides them); without it, their count is only reported. Version-node symbols
# (type A, e.g. ASYNCRT_0.1) are not exports and are ignored.
set -eu
strict=0
if [ "${1:-}" = "--strict" ]; then
    strict=1
    shift
fi
lib=${1:?usage: check_symbols.sh [--strict] LIBRARY [HEADER]}
root=$(cd "$(dirname "$0")/.." && pwd)
header=${2:-$root/include/asyncrt.h}
cc=${CC:-gcc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols, without version suffixes (name@@VER), less the
# version nodes.
nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' |
    sort -u >"$tmp/exported_all"
grep '^asyncrt_' "$tmp/exported_all" >"$tmp/exported" || true
grep -v '^asyncrt_' "$tmp/exported_all" >"$tmp/others" || true

# Declarations: strip comments without expanding macros, join the lines, and
# take the name before the '(' of each ASYNCRT_API declaration.
"$cc" -w -fpreprocessed -dD -E -P -x c "$header" | tr '\n' ' ' |
    grep -o 'ASYNCRT_API[^;{]*(' |
    sed -n 's/.*[^A-Za-z0-9_]\(asyncrt_[A-Za-z0-9_]*\)[[:space:]]*($/\1/p' |
    sort -u >"$tmp/declared"

status=0
if [ ! -s "$tmp/declared" ]; then
    echo "FAIL no ASYNCRT_API declarations found in $header"
    exit 1
fi
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
if [ -s "$tmp/missing" ]; then
    echo "FAIL declared in $(basename "$header") but not exported by $(basename "$lib"):"
    sed 's/^/  /' "$tmp/missing"
    status=1
fi
if [ -s "$tmp/extra" ]; then
    echo "FAIL exported by $(basename "$lib") but not declared in $(basename "$header"):"
    sed 's/^/  /' "$tmp/extra"
    status=1
fi
if [ $status -eq 0 ]; then
    echo "ok   the $(wc -l <"$tmp/declared") asyncrt_* functions of the header are exactly the library's asyncrt_* exports"
fi

others=$(wc -l <"$tmp/others")
if [ "$others" -gt 0 ]; then
    if [ $strict -eq 1 ]; then
        echo "FAIL $(basename "$lib") exports $others symbols that do not start with asyncrt_:"
        sed 's/^/  /' "$tmp/others" | head -n 50
        [ "$others" -gt 50 ] && echo "  ... and $((others - 50)) more"
        status=1
    else
        echo "note $(basename "$lib") exports $others symbols that do not start with asyncrt_ (fails with --strict)"
    fi
else
    echo "ok   $(basename "$lib") exports nothing but asyncrt_* symbols"
fi
exit $status
