"""one_tree.py -- one tree, three languages: a C future, a Python coroutine
and a Rust future are children of one scope.

A Python coroutine (the parent task) opens a scope and spawns three
children into it: a C future (c_child.c, in libpolyglot_c.so), a Python
coroutine (below), and a Rust future (rust/, in libpolyglot_rust.so, made
with the asyncrt crate's `into_raw`). The C and Rust children cross into
Python as plain asyncrt_futures, so asyncrt runs all three as tasks of the
same executor, under the same scope. One of them fails; the scope
(FIRST_ERROR, the default) cancels the other two, each in its own
language's way -- the C future's cleanup slot runs, asyncrt.Cancelled is
thrown into the coroutine, the Rust future is dropped -- and the parent,
leaving the scope once all three are gone, gets the failing child's error:
its status and message (or, for the Python child, its own exception).

Run from the repository root after building both shared objects
(`make polyglot-test` does all of it):

    python3 examples/polyglot/one_tree.py               # each child fails in turn
    python3 examples/polyglot/one_tree.py --fail rust   # only the Rust child fails

Exits 0 when every count is what polyglot.h and asyncrt.h promise: each
child started once and was dropped once, none finished, the two siblings
were cancelled, and the parent saw the one error.
"""

import argparse
import sys
from ctypes import CDLL, POINTER, Structure, byref, c_int, c_uint32, c_void_p
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))

import asyncrt  # noqa: E402

C_LIBRARY = ROOT / "build" / "cmake" / "examples" / "polyglot" / "libpolyglot_c.so"
RUST_LIBRARY = ROOT / "build" / "cargo" / "debug" / "libpolyglot_rust.so"

FAIL_AFTER = 0.05  # seconds, as polyglot.h's POLYGLOT_FAIL_AFTER_NS
WAIT = 60  # the others wait a minute: only a cancel ends them in time
TIMEOUT = 10  # the bound on the whole run, in real seconds
# What each child fails with: the C and Rust children's statuses and
# messages are polyglot.h's; a Python exception fails its task with EFAILED,
# and the parent gets the exception itself.
EXPECTED = {"C": (1001, "the C child failed"), "Python": (asyncrt.Status.EFAILED, "the Python child failed"),
            "Rust": (1002, "the Rust child failed")}


class Counts(Structure):
    """polyglot_counts, shared with the C and Rust children."""

    _fields_ = [("started", c_uint32), ("finished", c_uint32), ("cleanups", c_uint32), ("drops", c_uint32)]


class RawFuture(Structure):
    """asyncrt_future: what the C and Rust children are handed out as."""

    _fields_ = [("self", c_void_p), ("vtable", c_void_p)]


class Children:
    """Makes the three children; each counts what happens to it in a Counts."""

    def __init__(self, c_library, rust_library):
        self.c_child = CDLL(str(c_library)).polyglot_c_child
        self.rust_child = CDLL(str(rust_library)).polyglot_rust_child
        for make in (self.c_child, self.rust_child):
            make.argtypes = [c_int, POINTER(Counts), POINTER(RawFuture)]
            make.restype = c_int

    def make(self, language, fail, counts):
        if language == "Python":
            return python_child(fail, counts)
        raw = RawFuture()
        made = {"C": self.c_child, "Rust": self.rust_child}[language]
        status = made(int(fail), byref(counts), byref(raw))
        if status:
            raise asyncrt.AsyncrtError(f"polyglot_{language.lower()}_child failed", status)
        return asyncrt.CFuture(raw.self, raw.vtable)  # owns it until it is spawned


class PythonChildFailed(Exception):
    pass


async def python_child(fail, counts):
    counts.started += 1
    try:
        await asyncrt.sleep(FAIL_AFTER if fail else WAIT)
        if fail:
            raise PythonChildFailed("the Python child failed")
        counts.finished += 1
    except asyncrt.Cancelled:  # thrown in where it waits when a sibling fails
        counts.cleanups += 1
        raise
    finally:
        counts.drops += 1


async def parent(executor, children, failing, counts, tasks):
    scope = asyncrt.scope(name="one tree")
    try:
        async with scope:
            for language in ("C", "Python", "Rust"):
                child = children.make(language, language == failing, counts[language])
                tasks[language] = scope.spawn(child, name=f"{language} child")
            print(executor.dump(), end="")
    except Exception as error:  # the failing child's: all three are gone by now
        return error, scope.errors
    return None, scope.errors


def run(children, failing):
    """One tree whose `failing` child fails; returns the problems found."""
    print(f"one tree: a C, a Python and a Rust child in one scope; the {failing} child fails")
    counts = {language: Counts() for language in ("C", "Python", "Rust")}
    tasks = {}
    with asyncrt.Executor() as executor:
        try:
            error, errors = executor.block_on(parent(executor, children, failing, counts, tasks), timeout=TIMEOUT)
        except asyncrt.TimedOut:  # closing the executor cancels what is left
            return [f"the tree was not gone after {TIMEOUT} s: a failure should have ended it at once"]
        statuses = {language: task.status for language, task in tasks.items()}
        failing_id = tasks[failing].id
    print(f"  the parent caught {type(error).__name__}: {error}")
    for language, c in counts.items():
        print(f"  {language} child: {getattr(statuses[language], 'name', statuses[language])}, started "
              f"{c.started}, finished {c.finished}, cleanups {c.cleanups}, drops {c.drops}")
    return check(failing, error, errors, failing_id, statuses, counts)


def check(failing, error, errors, failing_id, statuses, counts):
    problems = []
    expected_status, message = EXPECTED[failing]
    if failing == "Python":
        if not isinstance(error, PythonChildFailed) or str(error) != message:
            problems.append(f"the parent should see the Python child's own exception, not {error!r}")
    elif not isinstance(error, asyncrt.AsyncrtError) or (error.status, error.message) != (expected_status, message):
        problems.append(f"the parent should see status {expected_status} and {message!r}, not {error!r}")
    if (len(errors) != 1 or errors[0].task_id != failing_id or errors[0].status != expected_status
            or errors[0].exception is not error):
        problems.append(f"the scope should record one error, the {failing} child's (task {failing_id}): {errors}")
    for language, c in counts.items():
        if (c.started, c.finished, c.drops) != (1, 0, 1):
            problems.append(f"the {language} child should start once, not finish, and be dropped once")
        if language == failing:
            want_status, want_cleanups = expected_status, 0
        else:
            # Rust has no async drop: a cancelled Rust future is only dropped.
            want_status, want_cleanups = asyncrt.Status.ECANCELLED, 0 if language == "Rust" else 1
        if statuses[language] != want_status:
            problems.append(f"the {language} child should end with {want_status}, not {statuses[language]}")
        if c.cleanups != want_cleanups:
            problems.append(f"the {language} child's cancel should run {want_cleanups} cleanup(s), not {c.cleanups}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail", choices=["c", "python", "rust"], action="append",
                        help="the child that fails (repeatable; default: each in turn)")
    parser.add_argument("--c-library", default=C_LIBRARY, help=f"libpolyglot_c.so (default: {C_LIBRARY})")
    parser.add_argument("--rust-library", default=RUST_LIBRARY, help=f"libpolyglot_rust.so (default: {RUST_LIBRARY})")
    args = parser.parse_args()
    names = {"c": "C", "python": "Python", "rust": "Rust"}
    children = Children(args.c_library, args.rust_library)
    problems = []
    for failing in args.fail or names:
        problems += [f"{names[failing]} fails: {p}" for p in run(children, names[failing])]
    for problem in problems:
        print(f"one_tree: FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("one_tree: success")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
