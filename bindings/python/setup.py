"""Bundles libasyncrt.so into the package when one is at hand.

Everything else is in pyproject.toml. At build time the library is taken
from $ASYNCRT_LIBRARY if set, else from the repository's build
(../../build/libasyncrt.so, `make lib`), and copied next to the package's
modules, where asyncrt._lib looks for it after $ASYNCRT_LIBRARY. With no
library at hand the package is built without one (it then needs
$ASYNCRT_LIBRARY at run time) and is pure Python; with one, the wheel is
tagged for this platform, since the .so is a Linux binary (py3-none-<platform>:
ctypes, no Python ABI).
"""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LIBRARY_NAME = "libasyncrt.so"
HERE = Path(__file__).resolve().parent


def library_to_bundle():
    """The libasyncrt.so to copy in, or None."""
    named = os.environ.get("ASYNCRT_LIBRARY")
    if named:
        if not Path(named).is_file():
            raise SystemExit(f"asyncrt: ASYNCRT_LIBRARY={named} is not a file")
        return Path(named)
    repository_build = HERE.parent.parent / "build" / LIBRARY_NAME
    return repository_build if repository_build.is_file() else None


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "asyncrt" / LIBRARY_NAME
        library = library_to_bundle()
        if library is None:
            target.unlink(missing_ok=True)  # no stale copy from an earlier build
            return
        shutil.copyfile(library, target)  # always: an older file may be the right one
        print(f"asyncrt: bundled {library}")


commands = {"build_py": BuildPyWithLibrary}
if library_to_bundle() is not None:
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:  # no wheel package: nothing builds a wheel either
        pass
    else:
        class PlatformWheel(bdist_wheel):
            def finalize_options(self):
                super().finalize_options()
                self.root_is_pure = False

            def get_tag(self):
                return ("py3", "none", super().get_tag()[2])

        commands["bdist_wheel"] = PlatformWheel

setup(cmdclass=commands)
