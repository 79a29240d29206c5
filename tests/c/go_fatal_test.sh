#!/bin/sh
# go_fatal_test.sh PROGRAM -- runs `test_go_panic fatal` in the test build of
# the library, where a task named "doomed" calls asyncrt_executor_new and
# that call dies of a Go fatal error (ASYNCRT_TEST_PANIC=...:fatal). No
# recover sees a fatal error, so the task cannot fail with it; the report
# must name the task instead: the dying goroutine's labels carry it.
set -u
prog=${1:?usage: go_fatal_test.sh PATH_TO_test_go_panic}
err=$(mktemp)
trap 'rm -f "$err"' EXIT

env -u GOTRACEBACK ASYNCRT_TEST_PANIC=asyncrt_executor_new:fatal \
    timeout -k 5 30 "$prog" fatal >/dev/null 2>"$err"
rc=$?
fail() {
    echo "FAIL go_fatal_report: $*"
    echo "--- stderr of $prog fatal (first 40 lines) ---"
    head -n 40 "$err"
    exit 1
}
case $rc in
0) fail "the program exited 0" ;;
124|137) fail "the program hung (killed by timeout, status $rc)" ;;
3|4) fail "the program did not die as intended (status $rc)" ;;
esac
grep -q '^fatal error' "$err" || fail "status $rc, but no Go fatal error was reported"
grep -q 'labels:{"asyncrt.task": "task [0-9]* \\"doomed\\" of executor 0x[0-9a-f]*"}' "$err" ||
    fail "status $rc, but the report does not name the task \"doomed\""
echo "PASS go_fatal_report (status $rc)"
