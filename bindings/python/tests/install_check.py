"""The installed package works on its own: run by scripts/pyinstall_test.sh
(`make pyinstall-test`) with the venv's python, from a temporary directory,
isolated (-I) and without ASYNCRT_LIBRARY. Not a unittest module: it checks
the installation, and exits non-zero with a message on the first failure."""

import asyncio
import os
import sys
import sysconfig
from pathlib import Path

import asyncrt

WAIT = 10.0  # seconds: a bound on each wait


def check(ok, what):
    if not ok:
        sys.exit(f"install_check: FAILED: {what}")
    print(f"ok   {what}")


async def add(a, b):
    await asyncrt.yield_now()
    return a + b


async def asyncio_main():
    with asyncrt.aio.run_in() as driver:
        task = driver.executor.spawn(add(40, 2))
        return await task


def main():
    check("ASYNCRT_LIBRARY" not in os.environ, "ASYNCRT_LIBRARY is not set")
    package = Path(asyncrt.__file__).resolve().parent
    site_dirs = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    check(package.parent in site_dirs, f"asyncrt is imported from the venv's site-packages ({package})")
    check(Path(asyncrt.library_path()).resolve() == package / "libasyncrt.so",
          f"the library is the package's own copy ({asyncrt.library_path()})")
    check((package / "py.typed").is_file(), "the package is marked typed (py.typed)")
    with asyncrt.Executor() as executor:
        task = executor.spawn(add(1, 2))
        check(executor.block_on(task, timeout=WAIT) == 3, "a coroutine runs as a task")
    check(asyncrt.aio.run(asyncio.wait_for(asyncio_main(), WAIT)) == 42, "asyncio awaits an asyncrt task")
    print(f"install_check: asyncrt {asyncrt.__version__} (library {asyncrt.library_version()}) works installed")


if __name__ == "__main__":
    main()
