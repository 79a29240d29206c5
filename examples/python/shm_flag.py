"""shm_flag.py -- a subsystem written in Python: coroutines wait on a counter
in shared memory that another process bumps.

The subsystem's poll reads the counter once per tick and, when it moved,
completes the waiting operations it moved past, so 100 waiting coroutines
cost one read per tick, not 100. A timeout bounds the whole wait. Run from the repository root
after `make lib`:

    python3 examples/python/shm_flag.py
"""

import subprocess
import sys
from multiprocessing import shared_memory
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402

ROUNDS = 3
WAITERS = 100

# The writer: a separate Python process (not a fork: asyncrt refuses calls in
# a forked child) that bumps byte 0 of the shared block ROUNDS times.
WRITER = """
import sys, time
from multiprocessing import resource_tracker, shared_memory
block = shared_memory.SharedMemory(name=sys.argv[1])
resource_tracker.unregister(block._name, "shared_memory")  # the parent owns it
for _ in range(int(sys.argv[2])):
    time.sleep(0.01)
    block.buf[0] = (block.buf[0] + 1) % 256
block.close()
"""


class SharedCounter:
    """Op i waits for the counter to pass args[0]; it completes with the value
    that passed it."""

    def __init__(self, block):
        self.block = block
        self.seen = block.buf[0]

    def submit(self, scx, op):
        if self.block.buf[0] != op.args[0]:
            op.complete(result=self.block.buf[0])  # moved already

    def poll(self, scx, budget):
        now = self.block.buf[0]
        if now == self.seen:
            return 0
        self.seen = now
        # An op submitted after the counter moved but before this poll saw it
        # waits for a value past `now`: completing it with `now` would tell
        # its coroutine nothing new (and cost it a round).
        done = 0
        for op in scx.ops():
            if op.args[0] != now:
                op.complete(result=now)
                done += 1
        return done


async def waiter(sub, block):
    # Until the last bump: a busy machine may fold two bumps into one change.
    last = block.buf[0]
    while last < ROUNDS:
        last = await sub.submit(0, last)
    return last


async def main(ex, sub, block):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, block.name, str(ROUNDS)])
    try:
        tasks = [ex.spawn(waiter(sub, block)) for _ in range(WAITERS)]
        results = [await asyncrt.timeout(task, 10) for task in tasks]
    finally:
        writer.wait()
    return results


def run():
    block = shared_memory.SharedMemory(create=True, size=1)
    block.buf[0] = 0
    try:
        with asyncrt.Executor() as ex:
            sub = ex.register_subsystem(SharedCounter(block), name="shared-counter")
            results = ex.block_on(main(ex, sub, block))
            stats = sub.stats()
            ticks = ex.worker_stats(0).ticks
    finally:
        block.close()
        block.unlink()
    print(f"{WAITERS} coroutines saw the counter reach {set(results)} after {ROUNDS} bumps")
    print(f"subsystem: {stats.polls} polls in {ticks} ticks, {stats.empty_polls} empty, "
          f"{stats.completions} completions")
    ok = set(results) == {ROUNDS} and WAITERS <= stats.completions <= WAITERS * ROUNDS and stats.polls <= ticks
    print("shm_flag: success" if ok else "shm_flag: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run())
