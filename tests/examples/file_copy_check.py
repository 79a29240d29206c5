"""file_copy_check.py -- runs examples/c/file_copy (or examples/python/file_copy.py)
on files of several sizes and compares the copies byte for byte.

    python3 tests/examples/file_copy_check.py BACKEND PROGRAM [ARGS...]

Sizes: empty, one byte, exactly one block, a few blocks and a tail, a few
MiB; then a missing source must fail with "No such file or directory". Exits
0 when all pass, 1 with a message otherwise, 77 when the program says the
backend is refused (ctest's skip)."""

import os
import subprocess
import sys
import tempfile

WAIT = 60.0
SIZES = [0, 1, 65536, 3 * 65536 + 1234, 4 * 1024 * 1024 + 7]


def run(program, backend, src, dst):
    return subprocess.run(program + ["--backend", backend, src, dst], capture_output=True, text=True, timeout=WAIT)


def main():
    backend, program = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory(prefix="file_copy_check.") as tmp:
        for size in SIZES:
            src, dst = os.path.join(tmp, f"src{size}"), os.path.join(tmp, f"dst{size}")
            with open(src, "wb") as f:
                f.write(os.urandom(size))
            with open(dst, "wb") as f:
                f.write(b"old contents, longer than some sources" * 10)  # must be truncated
            done = run(program, backend, src, dst)
            if done.returncode == 77:
                print(f"file_copy_check: {done.stdout.strip()}")
                return 77
            if done.returncode != 0:
                print(f"file_copy_check: FAIL {size} bytes ({backend}): exit {done.returncode}\n{done.stderr}")
                return 1
            with open(src, "rb") as a, open(dst, "rb") as b:
                if a.read() != b.read():
                    print(f"file_copy_check: FAIL {size} bytes ({backend}): the copy differs")
                    return 1
            if f"{size} bytes copied" not in done.stdout:
                print(f"file_copy_check: FAIL {size} bytes ({backend}): it said {done.stdout!r}")
                return 1
            print(f"file_copy_check: ok   {size} bytes ({backend})")
        done = run(program, backend, os.path.join(tmp, "missing"), os.path.join(tmp, "out"))
        if done.returncode != 1 or "No such file or directory" not in done.stderr:
            print(f"file_copy_check: FAIL a missing source ({backend}): exit {done.returncode}, {done.stderr!r}")
            return 1
        print(f"file_copy_check: ok   a missing source fails ({backend})")
    print("file_copy_check: success")
    return 0


if __name__ == "__main__":
    sys.exit(main())
