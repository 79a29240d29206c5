#!/bin/sh
# run.sh -- the install test (`make install-test`, part of `make test`).
#
# Installs asyncrt the two ways a C user can -- `make install` and CMake's
# `cmake --install` -- into temporary directories, and checks that:
#   1. both honour DESTDIR, install under the default prefix /usr/local, and
#      put identical trees in place (files, links, modes, contents);
#   2. the installed library is the built one, with its SONAME links;
#   3. consumer.c, a program outside the tree, builds against each installed
#      copy with `pkg-config --cflags --libs asyncrt` and with CMake's
#      find_package(asyncrt CONFIG REQUIRED), links to the versioned
#      symbols, and runs with the installed library;
#   4. the CMake package still works after the tree is moved, refuses the
#      versions it cannot serve, and reports a tree with a file missing.
#
# Installs build/libasyncrt.so (`make lib` builds it), the library
# `make install` installs. Uses MAKE, CC and CMAKE from the environment;
# needs cmake and pkg-config.
set -eu
umask 022 # both routes then create directories with the same modes
# Each install below says where it goes: no DESTDIR or PREFIX from the
# environment or from a calling make's command line (MAKEFLAGS).
unset DESTDIR PREFIX MAKEFLAGS MFLAGS
root=$(cd "$(dirname "$0")/../.." && pwd)
lib=$root/build/libasyncrt.so
make=${MAKE:-make}
cc=${CC:-cc}
cmake=${CMAKE:-cmake}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL $*"
    exit 1
}
ok() { echo "ok   $*"; }
# quietly CMD...: runs CMD with its output in a log that is shown if it fails.
quietly() {
    if ! "$@" >"$tmp/log" 2>&1; then
        cat "$tmp/log"
        fail "$*"
    fi
}

[ -f "$lib" ] || fail "$lib does not exist: build it first (make lib)"
version_part() { sed -n "s/^#define ASYNCRT_VERSION_$1 *\([0-9]*\)\$/\1/p" "$root/include/asyncrt.h"; }
major=$(version_part MAJOR)
minor=$(version_part MINOR)
version=$major.$minor.$(version_part PATCH)
soname=libasyncrt.so.$major

# The CMake route installs from a configured build tree; nothing is built.
quietly "$cmake" -S "$root" -B "$tmp/cmake-build" -DASYNCRT_LIBRARY="$lib"
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$tmp/cmake-build/CMakeCache.txt")
[ -n "$libdir" ] || fail "no CMAKE_INSTALL_LIBDIR in the CMake cache"

# make_install ARGS...: `make install` of this tree.
make_install() {
    quietly "$make" -C "$root" --no-print-directory install LIBDIR="$libdir" "$@"
}

# --- 1. DESTDIR, the default prefix, and the same tree both ways ----------------

system_lib=/usr/local/$libdir/$soname
[ -e "$system_lib" ] && system_had_lib=1 || system_had_lib=0
make_install DESTDIR="$tmp/staged-make"
quietly env DESTDIR="$tmp/staged-cmake" "$cmake" --install "$tmp/cmake-build"
if [ $system_had_lib = 0 ] && [ -e "$system_lib" ]; then
    fail "an install with DESTDIR wrote $system_lib"
fi
staged=$tmp/staged-make/usr/local
for f in "$libdir/libasyncrt.so.$version" "$libdir/$soname" "$libdir/libasyncrt.so" \
    include/asyncrt.h include/asyncrt_coro.h "$libdir/pkgconfig/asyncrt.pc" \
    "$libdir/cmake/asyncrt/asyncrtConfig.cmake" "$libdir/cmake/asyncrt/asyncrtConfigVersion.cmake"; do
    [ -e "$staged/$f" ] || fail "make install DESTDIR=... did not install /usr/local/$f"
done
ok "make install puts its files under DESTDIR and the default prefix /usr/local"

# listing DIR: every path under DIR with its type, mode and link target.
listing() { (cd "$1" && find . -printf '%p %y %m %l\n' | LC_ALL=C sort); }
listing "$tmp/staged-make" >"$tmp/listing-make"
listing "$tmp/staged-cmake" >"$tmp/listing-cmake"
if ! diff -u "$tmp/listing-make" "$tmp/listing-cmake"; then
    fail "make install and cmake --install install different files (- make, + cmake)"
fi
if ! diff -r --no-dereference "$tmp/staged-make" "$tmp/staged-cmake"; then
    fail "make install and cmake --install install files with different contents"
fi
ok "make install and cmake --install install the same $(wc -l <"$tmp/listing-make") paths, byte for byte"

# --- 2. what was installed -------------------------------------------------------

# check_tree PREFIX: the links, the library, the filled-in templates.
check_tree() {
    d=$1/$libdir
    [ "$(readlink "$d/libasyncrt.so")" = "$soname" ] || fail "$d/libasyncrt.so does not link to $soname"
    [ "$(readlink "$d/$soname")" = "libasyncrt.so.$version" ] ||
        fail "$d/$soname does not link to libasyncrt.so.$version"
    cmp -s "$lib" "$d/libasyncrt.so.$version" || fail "$d/libasyncrt.so.$version is not $lib"
    if grep -l '@ASYNCRT_[A-Z_]*@' "$d/pkgconfig/asyncrt.pc" "$d"/cmake/asyncrt/*.cmake; then
        fail "placeholders left in the files above"
    fi
}
check_tree "$staged"
grep -qx "prefix=/usr/local" "$staged/$libdir/pkgconfig/asyncrt.pc" || fail "asyncrt.pc does not say prefix=/usr/local"
quietly sh "$root/scripts/check_symbols.sh" --strict "$staged/$libdir/libasyncrt.so.$version"
ok "the installed library is the built one, with its links; its exports pass check_symbols.sh"

# --- 3. build and run a program against installed copies -------------------------

make_install PREFIX="$tmp/by-make"
quietly "$cmake" --install "$tmp/cmake-build" --prefix "$tmp/by-cmake"
check_tree "$tmp/by-make"
check_tree "$tmp/by-cmake"

# check_program BINARY PREFIX [ENV...]: BINARY needs the SONAME, uses
# versioned asyncrt symbols, runs, and loads the library from PREFIX.
check_program() {
    bin=$1 prefix=$2
    shift 2
    readelf -d "$bin" | grep -q "(NEEDED).*\[$soname\]" || fail "$bin does not record NEEDED $soname"
    nm -D --undefined-only "$bin" | awk '$2 ~ /^asyncrt_/' >"$tmp/refs"
    [ -s "$tmp/refs" ] || fail "$bin uses no asyncrt symbol"
    if grep -v "@ASYNCRT_$major\.[0-9]*\$" "$tmp/refs"; then
        fail "$bin uses the asyncrt symbols above without an ASYNCRT_$major.* version"
    fi
    if ! env -u LD_LIBRARY_PATH "$@" "$bin" >"$tmp/out" 2>&1; then
        cat "$tmp/out"
        fail "$bin failed"
    fi
    grep -q "^consumer: success" "$tmp/out" || { cat "$tmp/out"; fail "$bin did not report success"; }
    grep -q "^consumer: libasyncrt loaded from $prefix/$libdir/" "$tmp/out" ||
        { cat "$tmp/out"; fail "$bin did not load the library installed in $prefix"; }
}

for route in make cmake; do
    prefix=$tmp/by-$route
    pcdir=$prefix/$libdir/pkgconfig

    # pkg-config, as its user would: PKG_CONFIG_PATH, then LD_LIBRARY_PATH to run.
    got=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=prefix asyncrt)
    [ "$got" = "$prefix" ] || fail "pkg-config finds asyncrt in '$got', not $prefix"
    got=$(PKG_CONFIG_PATH=$pcdir pkg-config --modversion asyncrt)
    [ "$got" = "$version" ] || fail "pkg-config --modversion asyncrt says '$got', not $version"
    flags=$(echo $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs asyncrt))
    quietly "$cc" -Wall -Wextra -Werror -o "$tmp/consumer-pc-$route" "$root/tests/install/consumer.c" $flags
    check_program "$tmp/consumer-pc-$route" "$prefix" LD_LIBRARY_PATH="$prefix/$libdir"
    ok "installed by $route: built with pkg-config ($flags), ran with LD_LIBRARY_PATH"

    # CMake: find_package through CMAKE_PREFIX_PATH; the build's rpath finds the library.
    b=$tmp/consumer-cmake-$route
    quietly "$cmake" -S "$root/tests/install" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" -DASYNCRT_WANT="$major.$minor"
    got=$(sed -n 's/^asyncrt_DIR:PATH=//p' "$b/CMakeCache.txt")
    [ "$got" = "$prefix/$libdir/cmake/asyncrt" ] || fail "find_package found asyncrt in '$got', not under $prefix"
    quietly "$cmake" --build "$b"
    check_program "$b/consumer" "$prefix"
    ok "installed by $route: built with find_package(asyncrt $major.$minor CONFIG REQUIRED), ran by its rpath"
done

# --- 4. the CMake package: moved, versions, an incomplete tree -------------------

mv "$tmp/by-cmake" "$tmp/moved"
b=$tmp/consumer-moved
quietly "$cmake" -S "$root/tests/install" -B "$b" -DCMAKE_PREFIX_PATH="$tmp/moved" -DASYNCRT_WANT="$major.0...$((major + 1)).0"
quietly "$cmake" --build "$b"
check_program "$b/consumer" "$tmp/moved"
ok "a moved tree is found and used (asked for the range $major.0...$((major + 1)).0)"

# refused WANT MESSAGE: configuring the consumer asking for WANT must fail and say MESSAGE.
refused() {
    rm -rf "$tmp/refused"
    if "$cmake" -S "$root/tests/install" -B "$tmp/refused" -DCMAKE_PREFIX_PATH="$tmp/moved" \
        -DASYNCRT_WANT="$1" >"$tmp/log" 2>&1; then
        cat "$tmp/log"
        fail "find_package(asyncrt $1) accepted asyncrt $version"
    fi
    tr -s ' \n' ' ' <"$tmp/log" | grep -qF "$2" || { cat "$tmp/log"; fail "find_package(asyncrt $1) failed without saying '$2'"; }
}
for want in "$major.$((minor + 1))" "$((major + 1)).0" "$major.$minor.$(($(version_part PATCH) + 1))"; do
    refused "$want" "compatible with requested version \"$want\""
done
ok "find_package refuses $major.$((minor + 1)), $((major + 1)).0 and a newer patch"
rm "$tmp/moved/include/asyncrt_coro.h"
refused "" "incomplete; missing: $tmp/moved/include/asyncrt_coro.h"
ok "find_package reports an installed tree with a header missing"
echo "install test: all checks passed"
