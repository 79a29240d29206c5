"""The IO workloads of bench/run.py (`echo`, `http`): a server program and a
load generator, each its own process.

A server is `<prog> serve echo|http`: it listens on 127.0.0.1 at a port the
kernel picks, says "port <n>" on stdout, and serves until it is sent SIGTERM.
The load comes from bench/load/echo_load.c for echo and from `wrk -t1 -c64`
for http. With two CPUs or more the server runs pinned to the last CPU this
process may use and the load generator to the first, so neither takes turns
with the other on one CPU and each figure is what one server thread can do.

Standard library only, like run.py.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

ECHO_WARMUP_S = 0.5
# wrk has no warm-up of its own: a first, unreported wrk run of this long
# lets Go's and Node's heaps and JITs settle before the measured one.
HTTP_WARMUP_S = 1
PORT_TIMEOUT_S = 20


class ServerUnsupported(RuntimeError):
    """The server program has no such workload (it said so)."""


def placement():
    """(load generator CPU, server CPU), or (None, None) on one CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[-1]) if len(allowed) >= 2 else (None, None)


def pinned(cpu):
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def cpu_seconds(pid):
    """utime + stime of a process (every thread, dead ones included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5): utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A running server: `with Server(cmd, mode, env) as s:` gives s.port
    and s.pid; leaving stops it with SIGTERM. A server that exits early, or
    says nothing in PORT_TIMEOUT_S, is a RuntimeError naming its stderr."""

    def __init__(self, cmd, mode, env):
        self.cmd = cmd + ["serve", mode]
        self.env = env
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=self.env, text=True, preexec_fn=pinned(placement()[1]))
        self.pid = self.proc.pid
        ready, _, _ = select.select([self.proc.stdout], [], [], PORT_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        match = re.match(r"port (\d+)$", line.strip())
        if not match:
            said = self.stop()
            error = ServerUnsupported if "unsupported workload" in said else RuntimeError
            raise error(f"{' '.join(self.cmd)} did not announce a port: {said or line!r}")
        self.port = int(match.group(1))
        return self

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Stops the server; returns what it said on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr.seek(0)
        said = self.stderr.read().strip()
        self.stderr.close()
        return said

    def __exit__(self, *exc):
        if self.proc.stdout.closed:
            return
        died = not self.alive()
        said = self.stop()
        if died and exc[0] is None:
            raise RuntimeError(f"{' '.join(self.cmd)} exited {self.proc.returncode} "
                               f"during the run: {said}")


def client(cmd, timeout):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=pinned(placement()[0]))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc


# A load generator busier than this (share of its CPU) was the limit of
# the run, not the server.
LOAD_LIMIT = 0.9


def load_limited(workload, runtime, said):
    """Notes for the report when echo_load was the bottleneck of most runs
    (it says its CPU share on stderr): the req/s is then the load
    generator's limit, and echo_cpu is what tells the servers apart."""
    shares = [int(m.group(1)) / 100 for s in said
              for m in [re.search(r"load generator: (\d+)% of a CPU", s)] if m]
    if not shares or sorted(shares)[len(shares) // 2] < LOAD_LIMIT:
        return []
    return [f"{runtime} {workload}: the load generator used {max(shares):.0%} of its CPU: the "
            f"req/s is its limit more than the server's; {workload}_cpu compares the servers."]


def run_echo(server_cmd, env, sizes, seconds, load):
    """One echo run: ({figure: (value, unit)}, what was said on stderr).
    sizes: [connections, message bytes]."""
    connections, msg_bytes = sizes
    with Server(server_cmd, "echo", env) as server:
        out = client([load, str(server.port), str(connections), str(msg_bytes),
                      str(ECHO_WARMUP_S), str(seconds), str(server.pid)],
                     timeout=ECHO_WARMUP_S + seconds + 30)
    rate, cpu = out.stdout.split("\n")[:2]
    figures = {"echo": (float(rate.split()[0]), "req/s"),
               "echo_cpu": (float(cpu.split()[1]), "us")}
    return figures, out.stderr.strip()


def run_http(server_cmd, env, sizes, seconds):
    """One http run with wrk: req/s and the server's CPU per request over
    the measured wrk run. sizes: [connections]."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (bench/setup.sh installs it)")
    connections, = sizes
    with Server(server_cmd, "http", env) as server:
        url = f"http://127.0.0.1:{server.port}/"
        # wrk takes whole seconds.
        client([wrk, "-t1", f"-c{connections}", f"-d{HTTP_WARMUP_S}s", url], timeout=60)
        cpu0 = cpu_seconds(server.pid)
        out = client([wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url],
                     timeout=seconds + 60)
        cpu1 = cpu_seconds(server.pid)
    text = out.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if not rate or not total or int(total.group(1)) == 0:
        raise RuntimeError(f"wrk said nothing usable: {text.strip()}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        raise RuntimeError(f"{bad.group(1)} answers were not 200")
    errors = re.search(r"Socket errors:.*", text)
    figures = {"http": (float(rate.group(1)), "req/s"),
               "http_cpu": ((cpu1 - cpu0) / int(total.group(1)) * 1e6, "us")}
    return figures, errors.group(0) if errors else ""
