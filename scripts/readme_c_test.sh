#!/bin/sh
# readme_c_test.sh -- builds and runs every complete program (a C block with
# `int main(`) in the README's "## C" section against build/libasyncrt.so:
# the README's first example must work as printed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build/readme_c
mkdir -p "$out"
rm -f "$out"/prog*.c
python3 - "$root/README.md" "$out" <<'PY'
import re, sys
readme, out = sys.argv[1], sys.argv[2]
text = open(readme).read()
section = text.split("\n## C\n", 1)[1].split("\n## ", 1)[0]
blocks = [b for b in re.findall(r"```c\n(.*?)```", section, re.S) if "int main(" in b]
if not blocks:
    sys.exit("FAIL the README's C section has no complete program")
for i, b in enumerate(blocks):
    open(f"{out}/prog{i}.c", "w").write(b)
PY
status=0
for src in "$out"/prog*.c; do
    bin=${src%.c}
    if gcc -std=c99 -Wall -Wextra -Werror -I"$root/include" -I"$root/bindings/c" "$src" \
        -L"$root/build" -lasyncrt -Wl,-rpath,"$root/build" -o "$bin" && timeout 30 "$bin"; then
        echo "ok   README.md C example $(basename "$src") builds and exits 0"
    else
        echo "FAIL README.md C example $(basename "$src")"
        status=1
    fi
done
exit $status
