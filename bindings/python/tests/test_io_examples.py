"""The Python IO examples run and do what they say, on each backend:
examples/python/echo_server.py --self-test, and file_copy.py and
child_timeout.py through the same checks as their C twins
(tests/examples/*_check.py). Each runs in a child process, bounded."""

import subprocess
import sys
import unittest
from pathlib import Path

from tests.io_support import BACKENDS, uring_refusal
from tests.support import WAIT
from tests.test_processes import script_env

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "python"
CHECKS = ROOT / "tests" / "examples"


class IOExamples(unittest.TestCase):
    def run_program(self, argv):
        try:
            return subprocess.run([sys.executable] + [str(a) for a in argv], capture_output=True, text=True,
                                  timeout=WAIT * 6, env=script_env(), cwd=ROOT)
        except subprocess.TimeoutExpired as exc:
            self.fail(f"{argv} did not end within {WAIT * 6} s; its output so far:\n{exc.stdout}\n{exc.stderr}")

    def each_backend(self, make_argv, success):
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                if backend == "io_uring" and uring_refusal():
                    self.skipTest(uring_refusal())
                done = self.run_program(make_argv(backend))
                self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
                self.assertIn(success, done.stdout)

    def test_echo_server_self_test(self):
        self.each_backend(lambda b: [EXAMPLES / "echo_server.py", "--backend", b, "--self-test", "20"],
                          "echo_server.py: success")

    def test_file_copy(self):
        self.each_backend(lambda b: [CHECKS / "file_copy_check.py", b, sys.executable, EXAMPLES / "file_copy.py"],
                          "file_copy_check: success")

    def test_child_timeout(self):
        self.each_backend(lambda b: [CHECKS / "child_timeout_check.py", b, sys.executable,
                                     EXAMPLES / "child_timeout.py"],
                          "child_timeout_check: success")


if __name__ == "__main__":
    unittest.main()
