#!/bin/sh
# check_symbols.sh [--strict] LIBRARY [HEADER [MAP]]
#
# Checks that three lists of the public functions agree name for name:
#   - the functions HEADER declares with ASYNCRT_API (default include/asyncrt.h),
#   - the names the linker version script MAP exports (default capi/asyncrt.map),
#   - the asyncrt_* symbols LIBRARY exports (nm -D --defined-only),
# and that the versions agree: MAP's nodes follow the policy written at its
# top (ASYNCRT_<major>.<minor>, the header's major, minors ascending and not
# beyond the header's, each node inheriting the one before), every export
# carries the node MAP puts it in, and LIBRARY's SONAME is
# libasyncrt.so.<major>. Prints every difference.
#
# With --strict it also fails if LIBRARY exports any other symbol (Go runtime
# and cgo symbols leak out of a c-shared library unless the version script
# hides them); without it, their count is only reported.
set -eu
export LC_ALL=C # one collation for sort, comm and join
strict=0
if [ "${1:-}" = "--strict" ]; then
    strict=1
    shift
fi
lib=${1:?usage: check_symbols.sh [--strict] LIBRARY [HEADER [MAP]]}
root=$(cd "$(dirname "$0")/.." && pwd)
header=${2:-$root/include/asyncrt.h}
map=${3:-$root/capi/asyncrt.map}
cc=${CC:-gcc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
fail() {
    echo "FAIL $*"
    status=1
}
# list FILE: the lines of FILE, indented (after a FAIL line), at most 20.
list() {
    sed -n 's/^/  /; 1,20p' "$1"
    n=$(wc -l <"$1")
    [ "$n" -le 20 ] || echo "  ... and $((n - 20)) more"
}

# --- the header: its declarations and its version ------------------------------

# Strip comments without expanding macros, join the lines, and take the name
# before the '(' of each ASYNCRT_API declaration.
"$cc" -w -fpreprocessed -dD -E -P -x c "$header" | tr '\n' ' ' |
    grep -o 'ASYNCRT_API[^;{]*(' |
    sed -n 's/.*[^A-Za-z0-9_]\(asyncrt_[A-Za-z0-9_]*\)[[:space:]]*($/\1/p' |
    sort -u >"$tmp/declared"
if [ ! -s "$tmp/declared" ]; then
    echo "FAIL no ASYNCRT_API declarations found in $header"
    exit 1
fi
"$cc" -dM -E -x c "$header" >"$tmp/macros"
major=$(awk '$2 == "ASYNCRT_VERSION_MAJOR" { print $3 }' "$tmp/macros")
minor=$(awk '$2 == "ASYNCRT_VERSION_MINOR" { print $3 }' "$tmp/macros")
case "$major.$minor" in
*[!0-9.]* | .* | *.) echo "FAIL no ASYNCRT_VERSION_MAJOR/MINOR numbers in $header"; exit 1 ;;
esac

# --- the version script: its nodes and names -------------------------------------

# One token a line (comments stripped), then a small parser for
#   NODE { global: name; ... [local: *;] } [PARENT];
# that writes "node NODE PARENT" (PARENT "-" for none), "name NAME NODE",
# "local NODE PATTERN" and "error MESSAGE" lines.
"$cc" -w -fpreprocessed -E -P -x c "$map" | sed 's/[{};]/ & /g' | tr -s ' \t\r\n' '\n\n\n\n' |
    awk '
    NF == 0 { next }
    state == "" {                      # outside a node: its name
        node = $1; parent = "-"; state = "open"; next }
    state == "open" {
        if ($1 != "{") { print "error expected { after " node; exit }
        state = "in"; section = ""; next }
    state == "in" {
        if ($1 == "global:" || $1 == "local:") { section = $1; next }
        if ($1 == ";") next
        if ($1 == "}") { state = "after"; next }
        if (section == "global:") print "name", $1, node
        else if (section == "local:") print "local", node, $1
        else print "error " node ": " $1 " outside global: and local:"
        next }
    state == "after" {
        if ($1 == ";") { print "node", node, parent; state = ""; next }
        if (parent == "-") { parent = $1; next }
        print "error expected ; after " node " " parent; exit }
    END { if (state != "") print "error " FILENAME ": unterminated node " node }
    ' >"$tmp/mapped"

if grep -q '^error' "$tmp/mapped"; then
    fail "cannot parse $map:"
    sed -n 's/^error /  /p' "$tmp/mapped"
    exit 1
fi
awk '$1 == "node" { print $2, $3 }' "$tmp/mapped" >"$tmp/nodes"
awk '$1 == "name" { print $2, $3 }' "$tmp/mapped" | sort >"$tmp/map_pairs"
awk '{ print $1 }' "$tmp/map_pairs" | sort -u >"$tmp/map_names"
if [ ! -s "$tmp/nodes" ]; then
    echo "FAIL no version node in $map"
    exit 1
fi

# Names exact: a wildcard would export whatever matches, decided by the linker.
if grep '[]*?[]' "$tmp/map_names" >"$tmp/wild"; then
    fail "$(basename "$map") exports by pattern instead of by name:"
    list "$tmp/wild"
fi
awk '{ print $1 }' "$tmp/map_pairs" | uniq -d >"$tmp/twice"
if [ -s "$tmp/twice" ]; then
    fail "$(basename "$map") lists these in more than one place:"
    list "$tmp/twice"
fi

# Node structure: names, order, inheritance, and one `local: *` in the first.
awk -v major="$major" -v minor="$minor" '
    function bad(msg) { print msg; failed = 1 }
    {
        n++
        if ($1 !~ /^ASYNCRT_[0-9]+\.[0-9]+$/) { bad("node " $1 " is not named ASYNCRT_<major>.<minor>"); next }
        split(substr($1, 9), v, ".")
        if (v[1] + 0 != major) bad("node " $1 " is not of the header'\''s major version " major)
        if (v[2] + 0 > minor) bad("node " $1 " is newer than the header'\''s version " major "." minor)
        if (n > 1 && v[2] + 0 <= last) bad("node " $1 " does not come after " prev " in version order")
        if (n == 1 && $2 != "-") bad("the first node " $1 " inherits " $2)
        if (n > 1 && $2 != prev) bad("node " $1 " inherits " $2 " instead of the node before it, " prev)
        prev = $1; last = v[2] + 0
    }' "$tmp/nodes" >"$tmp/node_errors"
first=$(head -n 1 "$tmp/nodes" | cut -d' ' -f1)
awk '$1 == "local" { print $2, $3 }' "$tmp/mapped" >"$tmp/locals"
if [ "$(cat "$tmp/locals")" != "$first *" ]; then
    echo "the first node ($first) must end with \`local: *;' and no other node may have a local: part" >>"$tmp/node_errors"
fi
if [ -s "$tmp/node_errors" ]; then
    fail "$(basename "$map") breaks the versioning policy written at its top:"
    list "$tmp/node_errors"
fi

# --- the library: its exports, their versions, its SONAME -----------------------

# Defined dynamic symbols as "name version" (name@@VER: the default version;
# a name@VER, a non-default version, is reported with its single @), and the
# version nodes themselves (type A).
nm -D --defined-only "$lib" | awk -v nodes="$tmp/lib_nodes_raw" '
    NF < 3 { next }
    $2 == "A" { print $3 >nodes; next }
    {
        name = $3; ver = "-"
        if (index(name, "@@")) { ver = substr(name, index(name, "@@") + 2); name = substr(name, 1, index(name, "@@") - 1) }
        else if (index(name, "@")) { ver = "@" substr(name, index(name, "@") + 1); name = substr(name, 1, index(name, "@") - 1) }
        print name, ver
    }' | sort -u >"$tmp/lib_pairs"
touch "$tmp/lib_nodes_raw"
sort -u "$tmp/lib_nodes_raw" >"$tmp/lib_nodes"
grep '^asyncrt_' "$tmp/lib_pairs" >"$tmp/exported_pairs" || true
grep -v '^asyncrt_' "$tmp/lib_pairs" | cut -d' ' -f1 >"$tmp/others" || true
cut -d' ' -f1 "$tmp/exported_pairs" | sort -u >"$tmp/exported"

# compare A B WHAT_A WHAT_B: the names in A and not in B, and the reverse.
compare() {
    comm -23 "$1" "$2" >"$tmp/only_a"
    comm -13 "$1" "$2" >"$tmp/only_b"
    if [ -s "$tmp/only_a" ]; then
        fail "$3 but not $4:"
        list "$tmp/only_a"
    fi
    if [ -s "$tmp/only_b" ]; then
        fail "$4 but not $3:"
        list "$tmp/only_b"
    fi
    [ ! -s "$tmp/only_a" ] && [ ! -s "$tmp/only_b" ]
}
h=$(basename "$header") m=$(basename "$map") l=$(basename "$lib")
if compare "$tmp/declared" "$tmp/map_names" "declared in $h" "listed in $m" &&
    compare "$tmp/declared" "$tmp/exported" "declared in $h" "exported by $l"; then
    echo "ok   the $(wc -l <"$tmp/declared") functions of $h are exactly the names of $m and the asyncrt_* exports of $l"
fi

# Each export in the node the map gives it.
join "$tmp/exported_pairs" "$tmp/map_pairs" | awk '$2 != $3 { print $1 " is " $2 " in " L ", " $3 " in " M }' \
    L="$l" M="$m" >"$tmp/misversioned"
if [ -s "$tmp/misversioned" ]; then
    fail "$l versions these differently from $m (rebuild it: make lib):"
    list "$tmp/misversioned"
fi
cut -d' ' -f1 "$tmp/nodes" | sort >"$tmp/map_nodes"
if ! cmp -s "$tmp/map_nodes" "$tmp/lib_nodes"; then
    fail "$l defines the version nodes '$(echo $(cat "$tmp/lib_nodes"))', $m '$(echo $(cat "$tmp/map_nodes"))'"
elif [ ! -s "$tmp/misversioned" ]; then
    echo "ok   $l versions its exports as $m does (nodes: $(echo $(cat "$tmp/map_nodes")))"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" = "libasyncrt.so.$major" ]; then
    echo "ok   $l has the SONAME $soname (the header's major version is $major)"
else
    fail "$l has the SONAME '${soname:-none}', not libasyncrt.so.$major (the header's major version)"
fi

others=$(wc -l <"$tmp/others")
if [ "$others" -gt 0 ]; then
    if [ $strict -eq 1 ]; then
        fail "$l exports $others symbols that do not start with asyncrt_:"
        list "$tmp/others"
    else
        echo "note $l exports $others symbols that do not start with asyncrt_ (fails with --strict)"
    fi
else
    echo "ok   $l exports nothing but asyncrt_* symbols"
fi
exit $status
