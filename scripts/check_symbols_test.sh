#!/bin/sh
# check_symbols_test.sh -- shows that check_symbols.sh fails when it should
# (run by `make check-symbols`).
#
# It needs no Go build: each case links a small stand-in libasyncrt.so from
# C stubs (one function per name the header declares) with gcc, the way the
# real one is linked (version script, SONAME), after changing one thing in a
# copy of the header, the version script or the stubs. Each case must fail
# with the message that names the change, and the unchanged copies must pass.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
check=$root/scripts/check_symbols.sh
cc=${CC:-gcc}
major=$(sed -n 's/^#define ASYNCRT_VERSION_MAJOR *\([0-9]*\)$/\1/p' "$root/include/asyncrt.h")
minor=$(sed -n 's/^#define ASYNCRT_VERSION_MINOR *\([0-9]*\)$/\1/p' "$root/include/asyncrt.h")
# The map's nodes, as the check lists them, and the minor of the first (oldest).
map_nodes=$(sed -n 's/^\(ASYNCRT_[0-9.]*\) {.*/\1/p' "$root/capi/asyncrt.map" | sort | tr '\n' ' ' | sed 's/ $//')
first_minor=$(sed -n "s/^ASYNCRT_$major\.\([0-9]*\) {.*/\1/p" "$root/capi/asyncrt.map" | head -n 1)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

# The declared names, the way check_symbols.sh reads them.
"$cc" -w -fpreprocessed -dD -E -P -x c "$root/include/asyncrt.h" | tr '\n' ' ' |
    grep -o 'ASYNCRT_API[^;{]*(' |
    sed -n 's/.*[^A-Za-z0-9_]\(asyncrt_[A-Za-z0-9_]*\)[[:space:]]*($/\1/p' | sort -u >"$tmp/names"

# fresh: copies of the header and the map, and the stub names, to change.
fresh() {
    cp "$root/include/asyncrt.h" "$tmp/asyncrt.h"
    cp "$root/capi/asyncrt.map" "$tmp/asyncrt.map"
    cp "$tmp/names" "$tmp/stubs"
    link_map=$tmp/asyncrt.map
    soname=libasyncrt.so.$major
}
# build: links the stand-in library from the stubs with link_map and soname.
build() {
    sed 's/.*/void &(void) {}/' "$tmp/stubs" >"$tmp/stubs.c"
    "$cc" -shared -fPIC -o "$tmp/libasyncrt.so" "$tmp/stubs.c" \
        -Wl,--version-script="$link_map" -Wl,-soname,"$soname"
}
# expect STATUS MESSAGE DESCRIPTION [--strict]: runs the check on the copies.
expect() {
    cases=$((cases + 1))
    set +e
    sh "$check" ${4:-} "$tmp/libasyncrt.so" "$tmp/asyncrt.h" "$tmp/asyncrt.map" >"$tmp/out" 2>&1
    got=$?
    set -e
    # Lines joined with |, so that a message of several lines matches as one.
    if [ $got -ne "$1" ] || ! tr '\n' '|' <"$tmp/out" | grep -qF -- "$(printf '%s' "$2" | tr '\n' '|')"; then
        echo "FAIL check_symbols.sh with $3: want exit $1 and \"$2\", got exit $got:"
        sed 's/^/  /' "$tmp/out"
        failed=1
    fi
}
# add_node TEXT: appends TEXT to the map copy.
add_node() { printf '%s\n' "$1" >>"$tmp/asyncrt.map"; }

fresh; build
expect 0 "ok   the $(wc -l <"$tmp/names") functions" "the repository's header and map" --strict

# The header and the map must list the same names.
fresh
sed -i 's/^ASYNCRT_API unsigned asyncrt_version(void);/&\nASYNCRT_API int asyncrt_added(void);/' "$tmp/asyncrt.h"
echo asyncrt_added >>"$tmp/stubs"
build
expect 1 "declared in asyncrt.h but not listed in asyncrt.map:
  asyncrt_added" "a function added to the header only"
fresh; sed -i '/^    asyncrt_version;$/d' "$tmp/asyncrt.map"; build
expect 1 "declared in asyncrt.h but not listed in asyncrt.map:
  asyncrt_version" "a name removed from the map"
fresh; sed -i 's/^    asyncrt_version;$/&\n    asyncrt_gone;/' "$tmp/asyncrt.map"; build
expect 1 "listed in asyncrt.map but not declared in asyncrt.h:
  asyncrt_gone" "a name in the map the header does not declare"
fresh; sed -i 's/^    asyncrt_version;$/    asyncrt_v*;/' "$tmp/asyncrt.map"; build
expect 1 "exports by pattern instead of by name" "a wildcard in the map"
fresh; sed -i 's/^    asyncrt_version;$/&\n    asyncrt_version;/' "$tmp/asyncrt.map"; build
expect 1 "lists these in more than one place:
  asyncrt_version" "a name listed twice"

# The nodes must follow the versioning policy.
fresh; sed -i "s/^ASYNCRT_$major\.$minor {/ASYNCRT_$major.$((minor + 1)) {/" "$tmp/asyncrt.map"; build
expect 1 "node ASYNCRT_$major.$((minor + 1)) is newer than the header's version $major.$minor" "a node newer than the header"
fresh; sed -i "s/^ASYNCRT_$major\.$minor {/ASYNCRT_$((major + 1)).0 {/" "$tmp/asyncrt.map"; build
expect 1 "node ASYNCRT_$((major + 1)).0 is not of the header's major version $major" "a node of another major"
fresh; sed -i "s/^ASYNCRT_$major\.$minor {/ASYNCRT_$major {/" "$tmp/asyncrt.map"; build
expect 1 "node ASYNCRT_$major is not named ASYNCRT_<major>.<minor>" "a node without a minor"
fresh; sed -i '/^    asyncrt_version;$/d' "$tmp/asyncrt.map"
add_node "ASYNCRT_$major.$((first_minor - 1)) { global: asyncrt_version; } ASYNCRT_$major.$minor;"; build
expect 1 "node ASYNCRT_$major.$((first_minor - 1)) does not come after ASYNCRT_$major.$minor in version order" \
    "a node older than the one before it"
fresh; sed -i '/^    asyncrt_version;$/d' "$tmp/asyncrt.map"
sed -i "s/^#define ASYNCRT_VERSION_MINOR $minor\$/#define ASYNCRT_VERSION_MINOR $((minor + 1))/" "$tmp/asyncrt.h"
add_node "ASYNCRT_$major.$((minor + 1)) { global: asyncrt_version; };"; build
expect 1 "node ASYNCRT_$major.$((minor + 1)) inherits - instead of the node before it, ASYNCRT_$major.$minor" \
    "a node that inherits nothing"
fresh; build; add_node "ASYNCRT_$major.$minor {"
expect 1 "cannot parse" "an unterminated node"

# The library must export exactly those names, in those nodes, with its SONAME.
fresh; sed -i '/^asyncrt_version$/d' "$tmp/stubs"; build
expect 1 "declared in asyncrt.h but not exported by libasyncrt.so:
  asyncrt_version" "a function the library does not define"
fresh; echo asyncrt_secret >>"$tmp/stubs"
sed 's/^    asyncrt_version;$/&\n    asyncrt_secret;/' "$tmp/asyncrt.map" >"$tmp/link.map"; link_map=$tmp/link.map; build
expect 1 "exported by libasyncrt.so but not declared in asyncrt.h:
  asyncrt_secret" "an export the header does not declare"
fresh; echo leaked_helper >>"$tmp/stubs"
sed 's/^    asyncrt_version;$/&\n    leaked_helper;/' "$tmp/asyncrt.map" >"$tmp/link.map"; link_map=$tmp/link.map; build
expect 1 "exports 1 symbols that do not start with asyncrt_:
  leaked_helper" "a leaked non-asyncrt export" --strict
expect 0 "note libasyncrt.so exports 1 symbols that do not start with asyncrt_" "a leaked export, without --strict"
fresh; printf 'ASYNCRT_0.1 {\n  global: asyncrt_*;\n  local: *;\n};\n' >"$tmp/link.map"; link_map=$tmp/link.map; build
expect 1 "libasyncrt.so defines the version nodes 'ASYNCRT_0.1', asyncrt.map '$map_nodes'" \
    "a library linked with another version node"
fresh; soname=libasyncrt.so; build
expect 1 "has the SONAME 'libasyncrt.so', not libasyncrt.so.$major" "an unversioned SONAME"

if [ $failed -eq 0 ]; then
    echo "ok   check_symbols.sh passes the repository's header and map and fails each of $((cases - 1)) broken copies"
fi
exit $failed
