#!/usr/bin/env python3
"""Builds and runs asyncrt's benchmarks against its peers (see
shared/BENCHMARKS.md), prints `BENCH <workload> <runtime> <value> <unit>`
lines and a table of ratios, and writes the table and a chart to
bench/results/.

    python3 bench/run.py [WORKLOAD ...] [--runs N] [--runtimes a,b] [--min-seconds S]
                         [--io-seconds S]

Standard library only: `make bench` runs it with whatever python3 is first on
PATH. The Python peers, asyncrt_py (the Python binding) and the chart run on
Debian's /usr/bin/python3, the one python3-uvloop and python3-matplotlib
install into.
"""

import argparse
import collections
import datetime
import functools
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

import io_workloads

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, "build")
RESULTS = os.path.join(BENCH, "results")
LIB_DIR = os.path.join(ROOT, "build")
SYSTEM_PYTHON = "/usr/bin/python3"

# asyncrt_epoll, asyncrt_uring and node run the IO workloads only: asyncrt's
# servers with the backend forced (ASYNCRT_IO), and Node (libuv) in its idiom.
IO_ONLY = ["asyncrt_epoll", "asyncrt_uring", "node"]
RUNTIMES = ["asyncrt", "asyncrt_epoll", "asyncrt_uring", "c_baseline", "libuv", "tokio_ct", "tokio_mt",
            "go", "node", "asyncio", "uvloop", "asyncrt_py"]
ONE_THREAD = [r for r in RUNTIMES if r not in ["tokio_mt", "asyncrt_py"] + IO_ONLY]
ECHO_SERVERS = ["asyncrt_epoll", "asyncrt_uring", "c_baseline", "libuv", "tokio_ct", "go", "node"]
# tokio has no HTTP server without hyper, libuv's is Node's.
HTTP_SERVERS = ["asyncrt_epoll", "asyncrt_uring", "c_baseline", "go", "node"]
# asyncrt's Python binding runs the workloads its program has
# (bench/asyncrt/asyncrt_py_bench.py), against the Python peers.
PY_ONE_THREAD = ONE_THREAD + ["asyncrt_py"]
PYTHON_PEERS = ["asyncio", "uvloop"]


class Workload(collections.namedtuple(
        "Workload", "mode sizes unit runtimes cpus part_of extras env server",
        defaults=(None, None, None, False))):
    """What run.py runs: `prog <mode> <min_seconds> <sizes...>` for each of
    `runtimes`. The sizes live here only: every program takes them on its
    command line. `cpus` is how many CPUs a run should keep busy (None: no
    check, the workload sleeps on purpose). A workload `part_of` another is
    an extra figure of it measured by a separate run: it is selected with
    it, and its ratios are taken against the other's peers. `extras` names
    the extra figures reported (None: all the program prints); `env` is added
    to the programs' environment. A `server` workload runs each runtime's
    server (`prog serve <mode>`) under a load generator instead, with the
    sizes as the load generator's (io_workloads.py)."""


# timers holds every task alive until the last timer fires, then frees them
# all: glibc then returns the heap top to the kernel, and the next iteration
# faults it back in at ~20 us a page on this VM, which for tokio's 1 KiB
# task cells (2.3 KB of heap a timer) was 80% of its time (815 ms against
# 165 ms). These settings keep the pages the warm-up touched, as the warm-up
# intends, for every program alike (Go's heap and pymalloc's arenas ignore
# them: Go keeps its pages, pymalloc unmaps an empty arena regardless).
KEEP_HEAP = {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=17179869184:"
                               "glibc.malloc.mmap_threshold=33554432"}

WORKLOADS = {
    "yield_many": Workload("yield", [1000, 1000], "ns/op", PY_ONE_THREAD, 1),
    "yield_few": Workload("yield", [4, 1000], "ns/op", PY_ONE_THREAD, 1),
    "spawn_many": Workload("spawn", [1_000_000], "ns/op", PY_ONE_THREAD, 1),
    # The same children in a scope that the spawner opens and joins: what a
    # scoped task costs over a detached one (asyncrt only; peers: spawn_many's).
    "scope_spawn_many": Workload("scope_spawn", [1_000_000], "ns/op", ["asyncrt"], 1, "spawn_many"),
    "spawn_many_mt": Workload("spawn_mt", [1_000_000], "ns/op", ["asyncrt", "tokio_mt", "go"], 2),
    "chained_spawn": Workload("chain", [1_000_000], "ns/op",
                              ["asyncrt", "c_baseline", "libuv", "tokio_ct", "go"], 1),
    "ping_pong": Workload("ping_pong", [1_000_000], "ns/op", ONE_THREAD, 1),
    "cross_thread_wake": Workload("wake", [100_000], "ns/op",
                                  ["asyncrt", "c_baseline", "libuv", "tokio_ct", "go"], None),
    # The same task on a 1-worker thread-per-core executor instead of a
    # local one under block_on.
    "cross_thread_wake_threads": Workload("wake_threads", [100_000], "ns/op", ["asyncrt"], None,
                                          "cross_thread_wake"),
    "idle_task_memory": Workload("idle", [1_000_000], "bytes/task", ONE_THREAD, 1),
    # One program mode, two sizes: the first figure is the wall time, from
    # before the first timer is created until the last has fired.
    "timers": Workload("timers", [100_000], "ms", ONE_THREAD, None,
                       extras=("create", "p99_late"), env=KEEP_HEAP),
    "timers_1k": Workload("timers", [1_000], "ms", ONE_THREAD, None,
                          extras=("p50_late", "p99_late"), env=KEEP_HEAP),
    # sizes: connections, message bytes. Figures: req/s and echo_cpu.
    "echo": Workload("echo", [64, 64], "req/s", ECHO_SERVERS, None, server=True),
    # sizes: connections (wrk -t1). Figures: req/s and http_cpu.
    "http": Workload("http", [64], "req/s", HTTP_SERVERS, None, server=True),
}

# How long the load of one IO run lasts after its warm-up (--io-seconds
# overrides both): echo as BENCHMARKS.md's 0.2-2 s asks, http as its
# `wrk -d4s` says.
IO_SECONDS = {"echo": 2.0, "http": 4.0}
# The servers' environment: asyncrt's backend forced by the variable its
# driver reads at asyncrt_io_open.
SERVER_ENV = {"asyncrt_epoll": {"ASYNCRT_IO": "epoll"}, "asyncrt_uring": {"ASYNCRT_IO": "io_uring"}}

# spawn_many_mt: each of the 2 workers must run at least this share of the
# tasks (in percent); a run where one did not is flagged.
SPLIT_MIN = 30

# Declared deviations from the workload sizes, so that a run stays near the
# 0.2-2 s BENCHMARKS.md asks for. Each shrinks a slow peer's work, which only
# makes asyncrt's ratio against it more modest.
_PY_SPAWN = ("one asyncio iteration at N=1,000,000 takes ~10 s and costs ~11 us/task: the "
             "cyclic GC rescans every live Task and each new page costs ~12 us on this VM")
_PY_PING_PONG = ("one asyncio iteration at M=1,000,000 takes 5-20 s: each round trip is two "
                 "loop iterations, each with an epoll_wait(0) and asyncio.Queue's getpid()")
_IDLE = ("the per-task figure at N=1,000,000 was checked equal within 1%, but that run "
         "takes 13-20 s (2.7 GB of goroutine stacks, 1 GB of Tasks)")
SIZE_OVERRIDES = {
    ("spawn_many", "asyncio"): ([100_000], _PY_SPAWN),
    ("spawn_many", "uvloop"): ([100_000], _PY_SPAWN),
    ("spawn_many", "asyncrt_py"): ([100_000], "the N of its Python peers, for a like-for-like ratio: "
                                              "it keeps as many Python objects per task alive"),
    ("ping_pong", "asyncio"): ([100_000], _PY_PING_PONG),
    ("ping_pong", "uvloop"): ([100_000], _PY_PING_PONG),
    ("idle_task_memory", "go"): ([100_000], _IDLE),
    ("idle_task_memory", "asyncio"): ([100_000], _IDLE),
    ("idle_task_memory", "uvloop"): ([100_000], _IDLE),
}

# Workloads (or extra figures) a runtime cannot express, and why (printed
# under the table).
NOT_APPLICABLE = {
    ("spawn_many_mt_split", "go"): "Go has no API that says which P ran a goroutine",
    ("idle_task_memory", "c_baseline"): "a parked callback in a ring-buffer loop is only the "
    "state its waker points to: 0 runtime bytes",
    ("idle_task_memory", "libuv"): "libuv has handles, not tasks; a stopped handle is caller "
    "memory libuv does not track",
}

# Reference medians from BENCHMARKS.md (this machine kind); ours must land
# within +-25% before a ratio against them is quoted.
REFERENCE = {
    "yield_many": {"c_baseline": 3.0, "libuv": 4.0, "tokio_ct": 47, "go": 98,
                   "asyncio": 1340, "uvloop": 900},
    "spawn_many": {"c_baseline": 4.7, "libuv": 86, "tokio_ct": 196, "go": 950,
                   "asyncio": 6200, "uvloop": 5700},
    "spawn_many_mt": {"tokio_mt": 348, "go": 275},
    "ping_pong": {"c_baseline": 6.0, "libuv": 460, "tokio_ct": 205, "go": 327,
                  "asyncio": 5200, "uvloop": 2700},
    "cross_thread_wake": {"c_baseline": 12700, "libuv": 13300, "tokio_ct": 13400, "go": 17100},
    "timers": {"c_baseline": 105, "libuv": 132, "tokio_ct": 205, "go": 320,
               "asyncio": 676, "uvloop": 565},
    "timers_p99_late": {"c_baseline": 2700, "libuv": 27000, "tokio_ct": 92000, "go": 148000,
                        "asyncio": 490000, "uvloop": 295000},
    "timers_1k_p99_late": {"c_baseline": 71, "libuv": 1940, "tokio_ct": 1950, "go": 1070,
                           "asyncio": 1090, "uvloop": 1190},
    "http": {"c_baseline": 100000, "node": 36000, "go": 50000},
}
REFERENCE_TOLERANCE = 0.25


class Skip(Exception):
    """A runtime that cannot be built here; the message says why."""


class Unsupported(RuntimeError):
    """A program without the workload's mode (it said "unsupported workload"
    on stderr): reported as n/a, not as a failure."""


def sh(cmd, cwd=None, env=None):
    """Runs a build step, echoing it; a failure ends the harness."""
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def output_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def build_c(name, sources, extra, common=True):
    """gcc -O2 of `sources` (relative to bench/), with common/bench.c unless
    `common` is False (the servers and the load generator do without)."""
    out = os.path.join(BUILD, name)
    sources = sources + (["common/bench.c"] if common else [])
    sh(["gcc", "-O2", "-Wall", "-Wextra", "-pthread", "-I", os.path.join(BENCH, "common"),
        "-o", out] + [os.path.join(BENCH, s) for s in sources] + extra)
    return [out]


@functools.cache  # asyncrt and asyncrt_py share it
def make_lib():
    lib = os.path.join(LIB_DIR, "libasyncrt.so")
    if os.path.exists(os.path.join(ROOT, "Makefile")):
        # Cheap when the library is up to date; `make bench` has built it already.
        subprocess.run(["make", "-C", ROOT, "--no-print-directory", "lib"],
                       stdout=sys.stderr, check=False)
    if not os.path.exists(lib):
        raise Skip(f"{lib} is missing (run `make lib`)")


ASYNCRT_LINK = ["-I", os.path.join(ROOT, "include"), "-L", LIB_DIR, "-lasyncrt",
                "-Wl,-rpath," + LIB_DIR]


def build_asyncrt():
    make_lib()
    return build_c("asyncrt_bench", ["asyncrt/asyncrt_bench.c"], ASYNCRT_LINK)


@functools.cache  # asyncrt_epoll and asyncrt_uring are one program
def build_asyncrt_servers():
    make_lib()
    return build_c("asyncrt_servers", ["asyncrt/asyncrt_servers.c"], ASYNCRT_LINK, common=False)


def build_node():
    node = shutil.which("node")
    if node is None:
        raise Skip("node is not installed")
    return [node, os.path.join(BENCH, "peers", "node", "server.js")]


@functools.cache  # tokio_ct and tokio_mt are one program
def build_tokio():
    # The cargo config (Debian's crates as a directory source) sits in
    # peers/tokio/.cargo, so cargo must run from there.
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(BUILD, "tokio"))
    sh(["cargo", "build", "--release", "--offline", "--quiet"],
       cwd=os.path.join(BENCH, "peers", "tokio"), env=env)
    return [os.path.join(BUILD, "tokio", "release", "tokio_bench")]


@functools.cache  # the bench program is also the server
def build_go():
    out = os.path.join(BUILD, "go_bench")
    # Its own module with no dependencies; GOWORK=off keeps any workspace out.
    sh(["go", "build", "-o", out, "."], cwd=os.path.join(BENCH, "peers", "go"),
       env=dict(os.environ, GOWORK="off"))
    return [out]


def python_peer(loop):
    return [SYSTEM_PYTHON, os.path.join(BENCH, "peers", "python", "aio_bench.py"), loop]


def build_asyncrt_py():
    """The binding's program runs on the peers' Python; the package
    (bindings/python) finds build/libasyncrt.so by itself."""
    make_lib()
    return [SYSTEM_PYTHON, os.path.join(BENCH, "asyncrt", "asyncrt_py_bench.py")]


# The server programs of the IO workloads (`prog serve <mode>`).
SERVER_BUILDERS = {
    "asyncrt_epoll": build_asyncrt_servers,
    "asyncrt_uring": build_asyncrt_servers,
    "c_baseline": lambda: build_c("c_servers", ["peers/c_baseline/c_servers.c"], [], common=False),
    "libuv": lambda: build_c("libuv_servers", ["peers/libuv/libuv_servers.c"], ["-luv"], common=False),
    "tokio_ct": build_tokio,
    "go": build_go,
    "node": build_node,
}


def build_servers(runtimes, workloads):
    """The IO workloads' servers and load generator: ({runtime: command
    prefix}, {runtime: why skipped}, the echo load generator or None)."""
    wanted = [r for r in runtimes
              if any(WORKLOADS[w].server and r in WORKLOADS[w].runtimes for w in workloads)]
    servers, skipped = {}, {}
    for name in wanted:
        try:
            servers[name] = SERVER_BUILDERS[name]()
        except Skip as e:
            skipped[name] = str(e)
            print(f"warning: skipping {name}'s server: {e}", file=sys.stderr)
    load = build_c("echo_load", ["load/echo_load.c"], [], common=False)[0] \
        if "echo" in workloads else None
    return servers, skipped, load


def build(runtimes):
    """Returns {runtime: command prefix} and {runtime: reason it is skipped}."""
    os.makedirs(BUILD, exist_ok=True)
    builders = {
        "asyncrt": build_asyncrt,
        "c_baseline": lambda: build_c("c_baseline", ["peers/c_baseline/c_baseline.c"], []),
        "libuv": lambda: build_c("libuv_bench", ["peers/libuv/libuv_bench.c"], ["-luv"]),
        "tokio_ct": build_tokio,
        "tokio_mt": build_tokio,
        "go": build_go,
        "asyncio": lambda: python_peer("asyncio"),
        "uvloop": lambda: python_peer("uvloop"),
        "asyncrt_py": build_asyncrt_py,
    }
    commands, skipped = {}, {}
    for name in runtimes:
        try:
            commands[name] = builders[name]()
        except Skip as e:
            skipped[name] = str(e)
            print(f"warning: skipping {name}: {e}", file=sys.stderr)
    return commands, skipped


def parse_value(text):
    """A figure's value: a number, or a split "a/b" (a tuple of shares)."""
    return tuple(float(x) for x in text.split("/")) if "/" in text else float(text)


def run_once(cmd, workload, spec):
    """Runs one measurement process. Returns ({figure: (value, unit)}, cpu/wall,
    what the program said on stderr about its figure). The first output line
    is the workload's figure, each further "<name> <value> <unit>" line the
    figure <workload>_<name> (if `spec.extras` lists it). cpu/wall above 1
    means more than one thread was busy (spinning is to be declared, per
    BENCHMARKS.md)."""
    env = dict(os.environ, **(spec.env or {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        error = Unsupported if "unsupported workload" in proc.stderr else RuntimeError
        raise error(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    first, *extra = proc.stdout.strip().splitlines()
    value, unit = first.split()[:2]
    figures = {workload: (parse_value(value), unit)}
    for line in extra:
        name, value, unit = line.split()
        if spec.extras is None or name in spec.extras:
            figures[f"{workload}_{name}"] = (parse_value(value), unit)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures, cpu / wall, proc.stderr.strip()


Results = collections.namedtuple("Results", "figures medians cpu_ratios failures flags")


def run_server_once(cmd, workload, spec, runtime, seconds, load):
    """One IO run: the same (figures, cpu/wall, said) as run_once, with
    cpu/wall None (the load generator says how busy both sides were)."""
    env = dict(os.environ, **(spec.env or {}), **SERVER_ENV.get(runtime, {}))
    if workload == "echo":
        figures, said = io_workloads.run_echo(cmd, env, spec.sizes, seconds, load)
    else:
        figures, said = io_workloads.run_http(cmd, env, spec.sizes, seconds)
    return figures, None, said


def measure(workloads, commands, runs, min_seconds, servers=None, io_seconds=None, load=None):
    """Medians per (figure, runtime). Runtimes take turns within each round,
    in reversed order every other round, so slow drift of the machine falls
    on every side alike. A split's median is the run with the median share
    on the spawner's worker."""
    figures = {}  # figure -> (unit, workload), in the order first seen
    medians, cpu_ratios, failures, flags = {}, {}, {}, []
    for workload in workloads:
        spec = WORKLOADS[workload]
        programs = servers if spec.server else commands
        sides = [r for r in programs
                 if r in spec.runtimes and (workload, r) not in NOT_APPLICABLE]
        samples = {r: [] for r in sides}
        unsupported = set()
        for round_no in range(runs):
            for runtime in (sides if round_no % 2 == 0 else sides[::-1]):
                if runtime in failures.get(workload, {}) or runtime in unsupported:
                    continue
                args = SIZE_OVERRIDES.get((workload, runtime), (spec.sizes,))[0]
                cmd = programs[runtime] + [spec.mode, str(min_seconds)] + [str(a) for a in args]
                try:
                    if spec.server:
                        seconds = io_seconds or IO_SECONDS[workload]
                        samples[runtime].append(run_server_once(
                            programs[runtime], workload, spec, runtime, seconds, load))
                    else:
                        samples[runtime].append(run_once(cmd, workload, spec))
                except (Unsupported, io_workloads.ServerUnsupported):
                    unsupported.add(runtime)
                    flags.append(f"{runtime} {workload}: n/a, its program has no "
                                 f"`{spec.mode}` mode yet.")
                    print(f"warning: {flags[-1]}", file=sys.stderr)
                except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
                    failures.setdefault(workload, {})[runtime] = str(e)
                    print(f"error: {workload} {runtime}: {e}", file=sys.stderr)
        for runtime, got in samples.items():
            if not got:
                continue
            if not spec.server:
                cpu_ratios[(workload, runtime)] = statistics.median(c for _, c, _ in got)
            for said in dict.fromkeys(s for _, _, s in got if s):
                print(f"  {runtime}: {said}", file=sys.stderr)
            if spec.server:
                flags += io_workloads.load_limited(workload, runtime, [s for _, _, s in got])
            for figure in dict.fromkeys(f for run, _, _ in got for f in run):
                values = [run[figure][0] for run, _, _ in got if figure in run]
                unit = next(run[figure][1] for run, _, _ in got if figure in run)
                figures.setdefault(figure, (unit, workload))
                split = isinstance(values[0], tuple)
                value = statistics.median_low(values) if split else statistics.median(values)
                medians[(figure, runtime)] = value
                print(f"BENCH {figure} {runtime} {plain(value)} {unit}", flush=True)
                for i, v in enumerate(values if split else []):
                    if min(v) < SPLIT_MIN:
                        flags.append(f"{runtime} {workload}: run {i + 1} split {plain(v)} {unit}: "
                                     f"a worker ran less than the {SPLIT_MIN}% each must run.")
                        print(f"warning: {flags[-1]}", file=sys.stderr)
    return Results(figures, medians, cpu_ratios, failures, flags)


def plain(v):
    if isinstance(v, tuple):
        return "/".join(f"{x:.0f}" for x in v)
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def pretty(v):
    return f"{v:,.0f}" if not isinstance(v, tuple) and v >= 100 else plain(v)


def cell_ratio(ours, theirs, is_peer):
    if theirs:
        return f"{ours / theirs:.2f}"
    return "n/a" if is_peer else "-"


def peer_figure(figure):
    """The figure a peer's value comes from in asyncrt's ratio: the same one,
    or for a figure of a workload that is part of another, the other's."""
    for name, spec in WORKLOADS.items():
        if spec.part_of and (figure == name or figure.startswith(name + "_")):
            return spec.part_of + figure[len(name):]
    return figure

def machine_stamp():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lock = open(os.path.join(BENCH, "peers", "tokio", "Cargo.lock")).read()
    tokio = re.search(r'name = "tokio"\nversion = "([^"]+)"', lock)
    header = open(os.path.join(ROOT, "include", "asyncrt.h")).read()
    asyncrt = re.search(r'#define ASYNCRT_VERSION_STRING "([^"]+)"', header)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} ({os.cpu_count()} cores), Linux {platform.release()}",
        "versions": ", ".join([
            "asyncrt " + (asyncrt.group(1) if asyncrt else "unknown"),
            output_of(["gcc", "--version"]),
            output_of(["go", "version"]),
            output_of(["rustc", "--version"]),
            "tokio " + (tokio.group(1) if tokio else "unknown"),
            output_of([SYSTEM_PYTHON, "--version"]),
            "uvloop " + output_of([SYSTEM_PYTHON, "-c",
                                   "import uvloop; print(uvloop.__version__)"]),
            "libuv " + output_of(["pkg-config", "--modversion", "libuv"]),
            "node " + output_of(["node", "--version"]),
            "wrk " + output_of(["dpkg-query", "-W", "-f=${Version}", "wrk"]),
        ]),
    }


def ratio_table(ours_name, peers, shown, results, meaning=None):
    """Markdown lines: the ratio of `ours_name`'s medians to each of `peers`'
    (`meaning` says which way is better, if not "below 1")."""
    medians = results.medians
    if ours_name not in shown or not peers:
        return []
    meaning = meaning or f"below 1: {ours_name} is faster or smaller"
    lines = ["", f"Ratio {ours_name} / peer ({meaning}):", "",
             "| workload | " + " | ".join(peers) + " |",
             "| --- |" + " --: |" * len(peers)]
    for figure in results.figures:
        ours = medians.get((figure, ours_name))
        if ours is None or isinstance(ours, tuple):
            continue
        workload = results.figures[figure][1]
        peer_workload = WORKLOADS[workload].part_of or workload
        cells = [cell_ratio(ours, medians.get((peer_figure(figure), r)),
                            r in WORKLOADS[peer_workload].runtimes) for r in peers]
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    return lines


def render(workloads, runtimes, results, skipped, stamp, runs, chart):
    """The Markdown report: medians, ratios asyncrt/peer, then notes. A
    runtime that is not a peer in a workload shows "-"."""
    medians, failures = results.medians, results.failures
    shown = [r for r in runtimes if any(r2 == r for (_, r2) in medians)]

    def cell(figure, workload, runtime):
        if (figure, runtime) in medians:
            return pretty(medians[(figure, runtime)])
        return "n/a" if runtime in WORKLOADS[workload].runtimes else "-"

    lines = [
        f"# asyncrt benchmarks, {stamp['date']}",
        "",
        f"- Machine: {stamp['cpu']}",
        f"- Versions: {stamp['versions']}",
        f"- Medians of {runs} runs per runtime, runtimes alternating; lower is better, but for "
        "req/s (echo, http), where higher is better. Method (warm-up, what is timed, what "
        "memory counts, splits, the IO servers' CPUs): bench/README.md.",
        "",
        "| workload | unit | " + " | ".join(shown) + " |",
        "| --- | --- |" + " --: |" * len(shown),
    ]
    for figure, (unit, workload) in results.figures.items():
        cells = [cell(figure, workload, r) for r in shown]
        lines.append(f"| {figure} | {unit} | " + " | ".join(cells) + " |")
    # asyncrt against every peer; the Python binding against the Python peers.
    for ours_name, candidates in (("asyncrt", [r for r in shown if r not in ("asyncrt", "asyncrt_py")]),
                                  ("asyncrt_py", [r for r in shown if r in PYTHON_PEERS])):
        lines += ratio_table(ours_name, candidates, shown, results)
    # The IO servers, each backend against the peers' servers.
    io_peers = [r for r in shown if not r.startswith("asyncrt")]
    for ours_name in ("asyncrt_epoll", "asyncrt_uring"):
        lines += ratio_table(ours_name, io_peers, shown, results,
                             f"req/s: above 1 is {ours_name} faster; us per request: below 1 "
                             f"is {ours_name} cheaper")
    if chart:
        lines += ["", f"![times as a ratio to the C baseline]({chart})"]
    notes = []
    smaller = {}  # one note per (workload, size, reason), naming every runtime it covers
    for (w, r), (sizes, why) in SIZE_OVERRIDES.items():
        if w in workloads and (w, r) in medians:
            smaller.setdefault((w, sizes[0], why), []).append(r)
    for (w, n, why), names in smaller.items():
        notes.append(f"{', '.join(names)} {w} ran with N={n:,} instead of "
                     f"{WORKLOADS[w].sizes[0]:,}: {why}.")
    for (w, r), why in NOT_APPLICABLE.items():
        if (w in workloads or w in results.figures) and r in shown:
            notes.append(f"{r} {w}: n/a, {why}.")
    for w, failed in failures.items():
        for r, why in failed.items():
            notes.append(f"{r} {w} FAILED: {why}")
    for r, why in skipped.items():
        notes.append(f"{r} skipped: {why}")
    notes += results.flags
    for (w, r), ratio in results.cpu_ratios.items():
        cpus = WORKLOADS[w].cpus
        if cpus is None:
            continue
        if ratio > cpus * 1.15:
            notes.append(f"{r} {w}: CPU time {ratio:.2f}x wall time (more than {cpus} "
                         f"thread{'s' if cpus > 1 else ''} busy).")
        elif ratio < cpus * 0.8:
            notes.append(f"{r} {w}: got only {ratio:.2f} CPUs of {cpus} (the machine was busy, "
                         "or the process slept): treat this figure with care.")
    for w, refs in REFERENCE.items():
        for r, ref in refs.items():
            got = medians.get((w, r))
            if got is not None and abs(got / ref - 1) > REFERENCE_TOLERANCE:
                notes.append(f"{r} {w}: {pretty(got)} is {got / ref - 1:+.0%} off the reference "
                             f"{pretty(ref)} in BENCHMARKS.md.")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_chart(path, runtimes, results, stamp):
    """Draws the chart with Debian's python3 (matplotlib lives there).
    Returns False, with a warning, when it cannot."""
    medians = results.medians
    figures = [f for f, (unit, _) in results.figures.items() if unit in ("ns/op", "bytes/task")]
    data = {
        "title": f"asyncrt benchmarks, {stamp['date']} - {stamp['cpu']}",
        "versions": stamp["versions"],
        "workloads": [[f, results.figures[f][0]] for f in figures],
        "runtimes": runtimes,
        "values": {f: {r: medians[(f, r)] for r in runtimes if (f, r) in medians}
                   for f in figures},
        "baselines": {f: medians[(peer_figure(f), "c_baseline")] for f in figures
                      if (peer_figure(f), "c_baseline") in medians},
    }
    proc = subprocess.run([SYSTEM_PYTHON, os.path.join(BENCH, "chart.py"), path],
                          input=json.dumps(data), text=True, capture_output=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["chart.py failed"])[-1]
        hint = "; bench/setup.sh installs python3-matplotlib" if "matplotlib" in why else ""
        print(f"warning: no chart: {why}{hint}", file=sys.stderr)
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                        help="any of " + ", ".join(WORKLOADS) + " (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="runs per runtime (default 3)")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES),
                        help="comma-separated subset of " + ",".join(RUNTIMES))
    parser.add_argument("--min-seconds", type=float, default=0.2,
                        help="least timed span of one run (default 0.2)")
    parser.add_argument("--io-seconds", type=float, default=None,
                        help="load span of one echo or http run after its warm-up (default: "
                             + ", ".join(f"{w} {s:g}" for w, s in IO_SECONDS.items()) + ")")
    args = parser.parse_args()
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = [w for w in args.workloads if w not in WORKLOADS] + \
              [r for r in runtimes if r not in RUNTIMES]
    if unknown or args.runs < 1:
        parser.error(f"unknown: {', '.join(unknown)}" if unknown else "--runs must be >= 1")
    chosen = set(args.workloads or WORKLOADS)
    workloads = [w for w, spec in WORKLOADS.items() if w in chosen or spec.part_of in chosen]
    # Build only what the chosen workloads run.
    runtimes = [r for r in runtimes if any(r in WORKLOADS[w].runtimes for w in workloads)]

    programs = [r for r in runtimes
                if any(r in WORKLOADS[w].runtimes and not WORKLOADS[w].server for w in workloads)]
    commands, skipped = build(programs)
    servers, server_skipped, load = build_servers(runtimes, workloads)
    skipped.update(server_skipped)
    results = measure(workloads, commands, args.runs, args.min_seconds,
                      servers, args.io_seconds, load)

    stamp = machine_stamp()
    os.makedirs(RESULTS, exist_ok=True)
    # A full run also replaces latest.*, which the README embeds; a partial
    # one (a workload or runtime filter) only leaves its dated files.
    full = not args.workloads and runtimes == RUNTIMES
    base = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    drawn = write_chart(os.path.join(RESULTS, base + ".png"), runtimes, results, stamp)
    for name in [base] + (["latest"] if full else []):
        report = render(workloads, runtimes, results, skipped, stamp, args.runs,
                        name + ".png" if drawn else None)
        with open(os.path.join(RESULTS, name + ".md"), "w") as f:
            f.write(report)
        if drawn and name != base:
            shutil.copyfile(os.path.join(RESULTS, base + ".png"),
                            os.path.join(RESULTS, name + ".png"))
    print()
    print(report, end="")
    print(f"\nwritten: bench/results/{base}.md" + (" and latest.md" if full else ""))
    ours_skipped = [r for r in ("asyncrt", "asyncrt_epoll") if r in runtimes and r in skipped]
    return 1 if results.failures or ours_skipped else 0



if __name__ == "__main__":
    sys.exit(main())
