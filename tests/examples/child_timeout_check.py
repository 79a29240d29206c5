"""child_timeout_check.py -- runs examples/c/child_timeout (or
examples/python/child_timeout.py) on children that exit in time, fail, die
of a signal, and outlive the limit.

    python3 tests/examples/child_timeout_check.py BACKEND PROGRAM [ARGS...]

Exits 0 when all pass, 1 with a message otherwise, 77 when the program says
the backend is refused (ctest's skip). The limits are far from the
children's run times (0 s against 30 s), so the outcome never depends on how
fast the machine is; no time is measured."""

import subprocess
import sys

WAIT = 60.0

CASES = [
    # (limit, child argv, expected exit status, expected words in the output)
    ("30", ["true"], 0, "exited with status 0"),
    ("30", ["sh", "-c", "exit 3"], 3, "exited with status 3"),
    ("30", ["sh", "-c", "kill -TERM $$"], 128 + 15, "killed by signal 15"),
    ("0.2", ["sleep", "30"], 124, "timed out after 0.2 s, killed (signal 9)"),
]


def main():
    backend, program = sys.argv[1], sys.argv[2:]
    for limit, child, status, words in CASES:
        try:
            done = subprocess.run(program + ["--backend", backend, limit] + child, capture_output=True, text=True,
                                  timeout=WAIT)
        except subprocess.TimeoutExpired:
            print(f"child_timeout_check: FAIL {child} ({backend}): no answer within {WAIT} s")
            return 1
        if done.returncode == 77:
            print(f"child_timeout_check: {done.stdout.strip()}")
            return 77
        if done.returncode != status or words not in done.stdout:
            print(f"child_timeout_check: FAIL {child} limit {limit} ({backend}): exit {done.returncode} "
                  f"(expected {status}), output {done.stdout!r} {done.stderr!r}")
            return 1
        print(f"child_timeout_check: ok   {' '.join(child)} with {limit} s: {words} ({backend})")
    print("child_timeout_check: success")
    return 0


if __name__ == "__main__":
    sys.exit(main())
