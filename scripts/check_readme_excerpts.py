#!/usr/bin/env python3
"""check_readme_excerpts.py README HEADING FILE... -- the code a README
section shows must be the code the tests run.

Every fenced block tagged c, python or rust in the section that starts with
the line HEADING (up to the next heading of the same level) must appear in
one of the FILEs as consecutive lines; indentation aside, since an excerpt
from inside a function is shown dedented. Other blocks (sh, output) are not
checked. Exits 1, naming the block, when one does not appear, or when the
section has no such block at all.
"""

import re
import sys
import textwrap
from pathlib import Path

CHECKED = {"c", "python", "rust"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def section(text, heading):
    lines = text.splitlines(keepends=True)
    level = heading.split(" ", 1)[0]
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == heading)
    except StopIteration:
        return None
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and lines[i].split(" ", 1)[0] == level), len(lines))
    return "".join(lines[start:end])


def appears_in(block, lines):
    """True if `block`'s lines are consecutive lines of `lines`, both dedented."""
    want = textwrap.dedent(block).splitlines()
    for i in range(len(lines) - len(want) + 1):
        if textwrap.dedent("\n".join(lines[i:i + len(want)])).splitlines() == want:
            return True
    return False


def main(argv):
    if len(argv) < 4:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    readme, heading, files = Path(argv[1]), argv[2], [Path(f) for f in argv[3:]]
    text = section(readme.read_text(), heading)
    if text is None:
        print(f"FAIL {readme} has no line {heading!r}")
        return 1
    sources = {f: f.read_text().splitlines() for f in files}
    blocks = [(lang, body) for lang, body in FENCE.findall(text) if lang in CHECKED]
    if not blocks:
        print(f"FAIL {readme}, {heading!r}: no c, python or rust block to check")
        return 1
    status = 0
    for lang, body in blocks:
        first = (body.strip().splitlines() or [""])[0]
        found = [f for f, lines in sources.items() if appears_in(body, lines)]
        if found:
            print(f"ok   {readme}, {heading!r}: the {lang} block ({first!r}) is in {found[0]}")
        else:
            print(f"FAIL {readme}, {heading!r}: the {lang} block ({first!r}) is in none of "
                  f"{', '.join(map(str, files))}: the README and the code drifted apart")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
