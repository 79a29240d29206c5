"""asyncio and uvloop peer, run on Debian's /usr/bin/python3.

Same protocol as bench/common/bench.h, with the event loop named first:

    python3 aio_bench.py asyncio|uvloop yield|spawn|ping_pong|idle|timers <min_seconds> <tasks> [yields]
"""

import asyncio
import sys
import time
from time import monotonic_ns


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


async def ponger(ping, pong):
    while (v := await ping.get()) is not None:
        await pong.put(v + 1)


async def pinger(ping, pong, rounds):
    for i in range(rounds):
        await ping.put(i)
        if await pong.get() != i + 1:
            raise AssertionError("ping_pong: wrong reply")
    await ping.put(None)  # the ponger's end


async def ping_pong(rounds):
    """Two tasks exchange a number through a pair of asyncio.Queue(1),
    `rounds` round trips: the pinger sends i and waits for i + 1."""
    ping, pong = asyncio.Queue(1), asyncio.Queue(1)
    loop = asyncio.get_running_loop()
    answering = loop.create_task(ponger(ping, pong))
    await loop.create_task(pinger(ping, pong, rounds))
    await answering


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


def timer_offset_ns(i):
    """Offset i of the timers workload, in [0, 100 ms): the splitmix64
    sequence and scaling of bench/common/bench.c, so every program waits the
    same times."""
    mask = (1 << 64) - 1
    z = (0x7431 + (i + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return ((z >> 32) * 100_000_000) >> 32


async def timer(group, late, woke_early, i, deadline):
    """A task per timer: sleeps until its deadline (CLOCK_MONOTONIC ns, the
    clock of asyncio's loop.time) and stores how late it woke, in ns.

    uvloop rounds a delay to the nearest millisecond of libuv's clock, which
    drops the part of the current millisecond already gone, so its sleep can
    end up to 1.5 ms early (MagicStack/uvloop#739, libuv/libuv#4773). A task
    that must not run before its deadline sleeps again for what is left;
    `woke_early` counts the timers that had to and the sleeps that took, and
    the mode prints them on stderr."""
    await asyncio.sleep((deadline - monotonic_ns()) / 1e9)
    if (left := deadline - monotonic_ns()) > 0:
        woke_early[0] += 1
        while left > 0:
            woke_early[1] += 1
            await asyncio.sleep(left / 1e9)
            left = deadline - monotonic_ns()
    late[i] = monotonic_ns() - deadline
    group.finish_one()


async def timers_once(offsets, late, woke_early):
    """One timers iteration; returns the time spent creating the tasks."""
    loop = asyncio.get_running_loop()
    group = Group(loop, len(offsets))
    create_task = loop.create_task
    start = monotonic_ns()
    for i, offset in enumerate(offsets):
        create_task(timer(group, late, woke_early, i, monotonic_ns() + offset))
    create = monotonic_ns() - start
    await group.done
    return create


def time_timers(loop, min_seconds, timers):
    """The timers mode of bench/common/bench.c: one untimed warm-up
    iteration, then whole iterations until min_seconds have passed, each
    checked (all fired, none early); prints wall ms per iteration, creation
    ns per timer and the p50/p99 lateness of every timer of the timed
    iterations."""
    offsets = [timer_offset_ns(i) for i in range(timers)]
    unfired = object()
    woke_early = [0, 0]

    def iteration():
        late = [unfired] * timers
        start = monotonic_ns()
        create = loop.run_until_complete(timers_once(offsets, late, woke_early))
        wall = monotonic_ns() - start
        never = sum(1 for x in late if x is unfired)
        early = [x for x in late if x is not unfired and x < 0]
        if never or early:
            sys.exit(f"bench: timers: {never} of {timers} never fired, {len(early)} fired early "
                     f"(earliest {-min(early, default=0)} ns before its deadline)")
        return wall, create, late

    iteration()
    woke_early[:] = [0, 0]
    pool, wall, create, iters = [], 0, 0, 0
    start = time.perf_counter()
    while iters == 0 or time.perf_counter() - start < min_seconds:
        w, c, late = iteration()
        wall, create, iters = wall + w, create + c, iters + 1
        pool += late
    pool.sort()

    def percentile_us(pct):
        rank = (len(pool) * pct + 99) // 100
        return pool[max(rank, 1) - 1] / 1e3

    print(f"{wall / 1e6 / iters:.3f} ms iters={iters}")
    print(f"create {create / len(pool):.1f} ns")
    print(f"p50_late {percentile_us(50):.1f} us")
    print(f"p99_late {percentile_us(99):.1f} us")
    if woke_early[0]:
        print(f"{woke_early[0]} of {len(pool)} timers woke before their deadline and slept "
              f"again ({woke_early[1]} more sleeps)", file=sys.stderr)


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
    elif kind == "ping_pong":
        time_iterations(loop, min_seconds, tasks, lambda: ping_pong(tasks))
    elif kind == "timers":
        time_timers(loop, min_seconds, tasks)
    elif kind == "idle":
        print(f"{loop.run_until_complete(idle_bytes_per_task(tasks)):.1f} bytes/task")
    else:
        sys.exit(f"unsupported workload {kind}")


if __name__ == "__main__":
    main()
