"""fanout.py -- structured concurrency from Python: a scope of 100 children,
one of which fails.

Each child waits on a long sleep. Child 37 fails instead; under the default
policy (FIRST_ERROR) the scope cancels the other 99 at once: asyncrt throws
asyncrt.Cancelled into each where it waits, so its `finally` block runs, and
that cleanup may itself await (here a short sleep that stands for flushing a
connection). Leaving the scope re-raises child 37's own exception once every
child is gone. Run from the repository root after `make lib`:

    python3 examples/python/fanout.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402

CHILDREN = 100
FAILING = 37


class Tally:
    def __init__(self):
        self.cancelled = 0
        self.cleanups = 0
        self.finished = 0


async def child(i, tally):
    if i == FAILING:
        await asyncrt.yield_now()
        raise ValueError(f"child {i} failed")
    try:
        await asyncrt.sleep(60)  # never reached: the failure cancels this
        tally.finished += 1
    except asyncrt.Cancelled:
        tally.cancelled += 1
        raise
    finally:
        await asyncrt.sleep(0.001)  # a cleanup may await
        tally.cleanups += 1


async def main(tally):
    async with asyncrt.scope(name="fanout") as s:
        for i in range(CHILDREN):
            s.spawn(child(i, tally), name=f"child-{i}")
    return "no child failed"


def run():
    tally = Tally()
    print(f"asyncrt {asyncrt.library_version()}: a scope of {CHILDREN} children, child {FAILING} fails")
    with asyncrt.Executor() as executor:
        try:
            outcome = executor.block_on(main(tally), timeout=10)
        except ValueError as exc:
            outcome = f"the scope raised ValueError({exc})"
        stats = executor.stats()
    print(f"  {outcome}")
    print(f"  {tally.cancelled} children cancelled, {tally.cleanups} cleanups ran, {tally.finished} finished")
    print(f"  {stats.tasks_spawned} tasks spawned, {stats.tasks_live} live at the end")
    want = (CHILDREN - 1, CHILDREN - 1, 0)
    expected = f"the scope raised ValueError(child {FAILING} failed)"
    if (tally.cancelled, tally.cleanups, tally.finished) != want or outcome != expected:
        print(f"fanout: FAILED: expected {want[0]} cancelled, {want[1]} cleanups, none finished, and child "
              f"{FAILING}'s error", file=sys.stderr)
        return 1
    print("fanout: success")
    return 0


if __name__ == "__main__":
    sys.exit(run())
