"""asyncio and uvloop peer, run on Debian's /usr/bin/python3.

Same protocol as bench/common/bench.h, with the event loop named first:

    python3 aio_bench.py asyncio|uvloop yield|spawn|idle <min_seconds> <tasks> [yields]
"""

import asyncio
import sys
import time


class Group:
    """The idiomatic "spawn n and wait": a counter, and a future that the
    last task to finish resolves."""

    __slots__ = ("remaining", "done")

    def __init__(self, loop, tasks):
        self.remaining = tasks
        self.done = loop.create_future()

    def finish_one(self):
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set_result(None)


async def yielder(group, yields):
    for _ in range(yields):
        await asyncio.sleep(0)
    group.finish_one()


async def trivial(group):
    group.finish_one()


async def fan_out(tasks, make):
    loop = asyncio.get_running_loop()
    group = Group(loop, tasks)
    create_task = loop.create_task
    for _ in range(tasks):
        create_task(make(group))
    await group.done


def time_iterations(loop, min_seconds, ops_per_iter, once):
    """One untimed warm-up iteration (page faults are costly on this machine
    kind), then whole iterations until min_seconds have passed."""
    loop.run_until_complete(once())
    start = time.perf_counter()
    iters = 0
    while iters == 0 or time.perf_counter() - start < min_seconds:
        loop.run_until_complete(once())
        iters += 1
    ns = (time.perf_counter() - start) * 1e9 / (iters * ops_per_iter)
    print(f"{ns:.3f} ns/op iters={iters}")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


async def parked(never, counter):
    counter[0] += 1
    await never


async def idle_bytes_per_task(tasks):
    """Runtime bytes per task parked on a future nobody resolves. The
    coroutines (the future state) are created first and their memory is
    measured apart, like asyncrt's state array; what remains is the Task and
    its registration on the awaited future."""
    loop = asyncio.get_running_loop()
    never = loop.create_future()
    counter = [0]
    before_state = rss_bytes()
    coroutines = [parked(never, counter) for _ in range(tasks)]
    keep = [None] * tasks  # sized here so the list is not counted as runtime memory
    before_tasks = rss_bytes()
    for i, coroutine in enumerate(coroutines):
        keep[i] = loop.create_task(coroutine)
    while counter[0] < tasks:
        await asyncio.sleep(0)
    grown = rss_bytes() - before_tasks
    print(f"future state {(before_tasks - before_state) / tasks:.1f} bytes/task excluded",
          file=sys.stderr)
    for task in keep:  # else exit logs "Task was destroyed but it is pending!" per task
        task.cancel()
    return grown / tasks


def main():
    loop_name, kind = sys.argv[1], sys.argv[2]
    min_seconds, tasks = float(sys.argv[3]), int(sys.argv[4])
    if loop_name == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    if kind == "yield":
        yields = int(sys.argv[5])
        time_iterations(loop, min_seconds, tasks * yields,
                        lambda: fan_out(tasks, lambda g: yielder(g, yields)))
    elif kind == "spawn":
        time_iterations(loop, min_seconds, tasks, lambda: fan_out(tasks, trivial))
    elif kind == "idle":
        print(f"{loop.run_until_complete(idle_bytes_per_task(tasks)):.1f} bytes/task")
    else:
        sys.exit(f"unsupported workload {kind}")


if __name__ == "__main__":
    main()
