"""asyncrt_py: asyncrt's Python binding, run on Debian's /usr/bin/python3 like
the asyncio peer (bench/peers/python/aio_bench.py) and in the same idiom:
coroutines spawned onto the running executor, `await asyncrt.yield_now()`
for a yield, a counter and an asyncrt.Notify for "spawn n and wait". The
tasks are scheduled by asyncrt's C run queue; their Python side is polled in
batches through the executor's host queue (see bindings/python/asyncrt/_host.py).

Same protocol as bench/common/bench.h:

    python3 asyncrt_py_bench.py yield|spawn <min_seconds> <tasks> [yields]

Loads the package from bindings/python and the library the package finds
(build/libasyncrt.so, or $ASYNCRT_LIBRARY).
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))

import asyncrt  # noqa: E402


class Group:
    """The idiomatic "spawn n and wait": a counter, and a Notify that the
    last task to finish notifies (it keeps a permit if nobody waits yet)."""

    __slots__ = ("remaining", "done")

    def __init__(self, tasks):
        self.remaining = tasks
        self.done = asyncrt.Notify(local=True)

    def finish_one(self):
        self.remaining -= 1
        if self.remaining == 0:
            self.done.notify_one()


async def yielder(group, yields):
    yield_now = asyncrt.yield_now
    for _ in range(yields):
        await yield_now()
    group.finish_one()


async def trivial(group):
    group.finish_one()


async def fan_out(tasks, make):
    group = Group(tasks)
    spawn = asyncrt.spawn
    for _ in range(tasks):
        spawn(make(group))
    await group.done.wait()
    group.done.close()


def time_iterations(executor, min_seconds, ops_per_iter, once):
    """One untimed warm-up iteration, then whole iterations until min_seconds
    have passed (bench/common/bench.c's loop)."""
    executor.block_on(once())
    start = time.perf_counter()
    iters = 0
    while iters == 0 or time.perf_counter() - start < min_seconds:
        executor.block_on(once())
        iters += 1
    ns = (time.perf_counter() - start) * 1e9 / (iters * ops_per_iter)
    print(f"{ns:.3f} ns/op iters={iters}")


def main():
    kind, min_seconds, tasks = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    with asyncrt.Executor() as executor:
        if kind == "yield":
            yields = int(sys.argv[4])
            time_iterations(executor, min_seconds, tasks * yields,
                            lambda: fan_out(tasks, lambda g: yielder(g, yields)))
        elif kind == "spawn":
            time_iterations(executor, min_seconds, tasks, lambda: fan_out(tasks, trivial))
        else:
            sys.exit(f"unsupported workload {kind}")


if __name__ == "__main__":
    main()
