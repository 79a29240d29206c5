"""The Python examples of the READMEs run and print what they say they print.

Each ```python block of a README section is run in a fresh interpreter with
the repository's package on the path; a line `print(...)  # text` says the
block prints `text` there, in order."""

import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

from tests.support import WAIT

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = ROOT / "bindings" / "python"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PRINTS = re.compile(r"^\s*print\(.*\)\s+#\s?(.*)$", re.M)


def section(path, heading):
    """The text of the `heading` section of a Markdown file, up to the next
    heading of the same level."""
    text = path.read_text()
    start = text.index(heading + "\n")
    level = heading.split(" ")[0]
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


class ReadmeTest(unittest.TestCase):
    def run_blocks(self, path, heading):
        blocks = BLOCK.findall(section(path, heading))
        self.assertTrue(blocks, f"{path.name} {heading!r} has no python block")
        for i, code in enumerate(blocks):
            with self.subTest(readme=path.name, section=heading, block=i):
                expected = PRINTS.findall(code)
                self.assertTrue(expected, "the block prints nothing it documents")
                env = dict(os.environ, PYTHONPATH=str(PACKAGE_DIR))
                try:
                    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                          timeout=WAIT, env=env, cwd=ROOT)
                except subprocess.TimeoutExpired:
                    self.fail(f"block {i} did not finish within {WAIT} s")
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(done.stdout.splitlines(), expected)

    def test_the_top_readmes_python_section(self):
        self.run_blocks(ROOT / "README.md", "## Python")

    def test_the_bindings_asyncio_section(self):
        self.run_blocks(PACKAGE_DIR / "README.md", "## asyncio")


if __name__ == "__main__":
    unittest.main()
