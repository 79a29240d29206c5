"""Stall detection from Python: a C task whose poll holds its worker is
reported once, with its worker, id, name and time on the executor's clock;
a Python report callable runs on the watchdog's thread; a report cannot
close or check its own executor; replaced callables are released. Polls are
held by a Blocker (a C future with a Python poll) until the test has seen the
report; under a test clock nothing is timed."""

import subprocess
import sys
import threading
import unittest
from pathlib import Path

import asyncrt
from asyncrt import Reentrant, stalls
from tests.support import WAIT, Blocker

SECOND = 10**9


class Reports:
    def __init__(self, action=None):
        self.infos = []
        self.threads = []
        self.action = action
        self.outcomes = []
        self.seen = threading.Event()

    def __call__(self, info):
        if self.action is not None:
            self.outcomes.append(self.action())
        self.infos.append(info)
        self.threads.append(threading.get_ident())
        self.seen.set()


def threads(test, **options):
    ex = asyncrt.Executor(kind="threads", workers=2, shutdown_timeout=WAIT, **options)
    test.addCleanup(ex.close)
    return ex


def outcome(fn):
    try:
        fn()
        return None
    except asyncrt.AsyncrtError as exc:
        return type(exc)


class StallTest(unittest.TestCase):
    def test_a_held_poll_is_reported_once_under_a_test_clock(self):
        ex = threads(self, clock="test")
        reports = Reports()
        ex.watch_stalls(threshold=1.0, report=reports, manual=True)
        blocker = Blocker()
        task = ex.spawn(blocker.future(), worker=1)
        self.addCleanup(task.close)
        task.name = "held"
        self.assertTrue(blocker.entered.wait(WAIT), "the poll did not start")
        try:
            self.assertEqual(ex.check_stalls(), 0)  # the first sample of the poll
            ex.advance_clock(0.5)
            self.assertEqual(ex.check_stalls(), 0)
            ex.advance_clock(0.5)
            self.assertEqual(ex.check_stalls(), 1)
            ex.advance_clock(5.0)
            self.assertEqual(ex.check_stalls(), 0)  # once per poll
        finally:
            blocker.release()
        [info] = reports.infos
        self.assertIsInstance(info, asyncrt.StallInfo)
        self.assertEqual((info.worker, info.task_id, info.task_name, info.duration_ns), (1, task.id, "held", SECOND))
        self.assertIsNotNone(info.poll)
        self.assertEqual(reports.threads, [threading.get_ident()])
        self.assertTrue(blocker.dropped.wait(WAIT))
        self.assertEqual(ex.stats().stalls, 1)
        self.assertEqual(ex.worker_stats(1).stalls, 1)
        self.assertEqual(ex.worker_stats(0).stalls, 0)

    def test_the_watchdog_thread_reports(self):
        # The real clock: the poll holds until the report has come.
        ex = threads(self)
        reports = Reports()
        ex.watch_stalls(threshold=0.001, report=reports)
        blocker = Blocker()
        ex.spawn(blocker.future()).close()
        self.assertTrue(blocker.entered.wait(WAIT), "the poll did not start")
        seen = reports.seen.wait(WAIT)
        blocker.release()
        self.assertTrue(seen, "no report within the bound")
        self.assertGreaterEqual(reports.infos[0].duration_ns, 10**6)
        self.assertNotEqual(reports.threads[0], threading.get_ident())

    def test_a_report_cannot_reenter_its_executor(self):
        ex = threads(self, clock="test")
        reports = Reports(lambda: (outcome(ex.check_stalls), outcome(ex.close)))
        ex.watch_stalls(threshold=1.0, report=reports, manual=True)
        blocker = Blocker()
        ex.spawn(blocker.future()).close()
        self.assertTrue(blocker.entered.wait(WAIT))
        try:
            ex.check_stalls()
            ex.advance_clock(1.0)
            self.assertEqual(ex.check_stalls(), 1)
        finally:
            blocker.release()
        self.assertEqual(reports.outcomes, [(Reentrant, Reentrant)])
        self.assertFalse(ex.closed)

    def test_replaced_reports_are_released(self):
        ex = threads(self)
        before = len(stalls._live)
        ex.watch_stalls(threshold=1.0, report=Reports(), manual=True)
        ex.watch_stalls(threshold=1.0, report=Reports(), manual=True)
        self.assertEqual(len(stalls._live), before + 1)
        ex.watch_stalls(None)  # off
        self.assertEqual(len(stalls._live), before)
        self.assertEqual(ex.check_stalls(), 0)
        ex.watch_stalls(threshold=1.0, report=Reports())
        ex.close()
        self.assertEqual(len(stalls._live), before)

    def test_negative_durations_are_refused(self):
        ex = threads(self)
        for options in ({"threshold": -1.0}, {"period": -0.5}):
            with self.subTest(options=options), self.assertRaises(ValueError):
                ex.watch_stalls(**options)

    def test_a_foreign_executor_is_not_watched(self):
        foreign = asyncrt.ForeignExecutor()
        self.addCleanup(foreign.close)
        before = len(stalls._live)
        with self.assertRaises(asyncrt.NotSupported):
            foreign.watch_stalls(report=Reports())
        self.assertEqual(len(stalls._live), before)  # handed over and released


class ExampleTest(unittest.TestCase):
    def test_stall_example_succeeds(self):
        """examples/python/stall.py: a blocking C poll is reported, then the counters."""
        example = Path(__file__).resolve().parents[3] / "examples" / "python" / "stall.py"
        done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("report: worker", done.stdout)
        self.assertIn("stall: success", done.stdout)


if __name__ == "__main__":
    unittest.main()
