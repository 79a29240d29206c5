"""hello.py -- asyncrt from Python: hand-written futures that yield and join.

Two "counter" futures each yield a few times (waking themselves, so the
executor interleaves them) and then return how far they counted. A third
future joins both and adds their results. Run from the repository root after
`make lib`:

    python3 examples/python/hello.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402


class Counter(asyncrt.Future):
    """Yields `steps` times, then is ready with `steps`."""

    def __init__(self, name, steps):
        self.name = name
        self.steps = steps
        self.count = 0

    def poll(self, cx):
        if self.count == self.steps:
            print(f"  {self.name}: done after {self.count} yields")
            return asyncrt.Ready(self.count)
        self.count += 1
        print(f"  {self.name}: step {self.count} of {self.steps}, yielding")
        cx.waker.wake_by_ref()  # runnable again at once: a yield
        return asyncrt.PENDING

    def drop(self):
        print(f"  {self.name}: dropped")


class JoinBoth(asyncrt.Future):
    """Waits for two tasks, one after the other, and adds their results."""

    def __init__(self, first, second):
        self.joins = [first.join(), second.join()]
        self.total = 0

    def poll(self, cx):
        while self.joins:
            result = self.joins[0].poll(cx)
            if result is asyncrt.PENDING:
                print("  joiner: waiting")
                return asyncrt.PENDING
            self.total += result.value
            self.joins.pop(0)
        print(f"  joiner: both finished, total {self.total}")
        return asyncrt.Ready(self.total)


def main():
    print(f"asyncrt {asyncrt.library_version()} from Python")
    with asyncrt.Executor() as executor:
        first = executor.spawn(Counter("counter A", 3))
        second = executor.spawn(Counter("counter B", 2))
        print(f"spawned task {first.id} and task {second.id}; joining them from a third")
        total = executor.block_on(JoinBoth(first, second), timeout=10)
        stats = executor.stats()
        print(f"total {total}; {stats.tasks_spawned} tasks, {stats.polls} polls")
        first.close()
        second.close()
    if total != 5:
        print("hello: FAILED: expected a total of 5", file=sys.stderr)
        return 1
    print("hello: success")
    return 0


if __name__ == "__main__":
    sys.exit(main())
