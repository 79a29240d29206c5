#!/usr/bin/env bash
# pyinstall_test.sh [PYTHON] -- installs the Python binding into a fresh venv
# (build/pyvenv) the offline way DEVELOPERS.md gives, bundling
# build/libasyncrt.so, then runs bindings/python/tests/install_check.py from a
# temporary directory, isolated (-I) and without ASYNCRT_LIBRARY: the
# installed package must import, load its own copy of the library and run
# tasks. PYTHON defaults to python3; it needs venv (Debian: python3-venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
venv=$root/build/pyvenv
library=$root/build/libasyncrt.so

[ -f "$library" ] || { echo "pyinstall: $library is missing (make lib)" >&2; exit 1; }
wheels=(/usr/share/python-wheels/wheel-*.whl)
[ -f "${wheels[0]}" ] || { echo "pyinstall: no wheel package in /usr/share/python-wheels (apt-get install python3-wheel-whl)" >&2; exit 1; }

rm -rf "$venv" "$root/bindings/python/build" "$root"/bindings/python/*.egg-info  # a fresh build, no stale files
"$python" -m venv "$venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$venv/bin/pip" install -q --no-index "${wheels[0]}"
ASYNCRT_LIBRARY=$library "$venv/bin/pip" install -q --no-index --no-build-isolation "$root/bindings/python"
rm -rf "$root/bindings/python/build" "$root"/bindings/python/*.egg-info  # pip builds in the source tree

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/bindings/python/tests/install_check.py" "$work/"
cd "$work"
env -u ASYNCRT_LIBRARY -u PYTHONPATH "$venv/bin/python" -I install_check.py
