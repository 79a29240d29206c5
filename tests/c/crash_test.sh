#!/bin/sh
# crash_test.sh PROGRAM [MODE] -- runs the crash_null program (with MODE,
# such as "worker", as its argument) and checks that it dies and that its
# stderr names crashing_poll_function (the header promises a stack trace
# naming the C functions of a crash inside a poll).
set -u
prog=${1:?usage: crash_test.sh PATH_TO_crash_null [MODE]}
mode=${2:-}
shift
err=$(mktemp)
trap 'rm -f "$err"' EXIT

# The library's default must produce the trace, so no GOTRACEBACK from us.
env -u GOTRACEBACK timeout -k 5 30 "$prog" "$@" >/dev/null 2>"$err"
rc=$?
fail() {
    echo "FAIL crash_trace${mode:+ ($mode)}: $*"
    echo "--- stderr of $prog (first 60 lines) ---"
    head -n 60 "$err"
    exit 1
}
case $rc in
0) fail "the program exited 0 after a NULL dereference" ;;
124|137) fail "the program hung (killed by timeout, status $rc)" ;;
3|4) fail "the program did not crash as intended (status $rc)" ;;
esac
grep -q 'crashing_poll_function' "$err" ||
    fail "status $rc, but stderr does not name crashing_poll_function"
# On a worker, the trace must show that the poll ran in the worker's loop.
if [ "$mode" = worker ]; then
    grep -q 'art_worker_loop' "$err" ||
        fail "status $rc, but the trace does not show the poll inside art_worker_loop"
fi
echo "PASS crash_trace${mode:+ ($mode)} (status $rc)"
