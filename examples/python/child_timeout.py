"""child_timeout.py -- runs a child process with a time limit (the twin of
examples/c/child_timeout.c).

    python3 examples/python/child_timeout.py [--backend auto|epoll|io_uring] SECONDS PROGRAM [ARGS...]

io.run_process spawns the child (posix_spawn and a pidfd) and waits for its
exit with a WAITPID op; when SECONDS pass first it kills the child (SIGKILL
through the pidfd) and waits for it. Prints how it ended and exits with the
child's status, 128+N for a child killed by signal N, or 124 when the time
ran out (as timeout(1)); 77 when the backend asked for is refused.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402


def main(argv):
    backend = "auto"
    if argv[:1] == ["--backend"]:
        backend, argv = argv[1], argv[2:]
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    seconds, child = float(argv[0]), argv[1:]
    with asyncrt.Executor() as ex:
        try:
            io = ex.io(backend=backend)
        except asyncrt.NotSupported:
            print(f"child_timeout: backend {backend} refused by this kernel: skipped")
            return 77
        print(f"child_timeout: {io.backend} backend, limit {argv[0]} s: {child[0]}", flush=True)
        result = ex.block_on(io.run_process(child, timeout=seconds))
    if result.timed_out:
        print(f"child_timeout: timed out after {argv[0]} s, killed (signal {-result.returncode})")
        return 124
    if result.returncode < 0:
        print(f"child_timeout: killed by signal {-result.returncode}")
        return 128 - result.returncode
    print(f"child_timeout: exited with status {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
