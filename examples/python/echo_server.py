"""echo_server.py -- a TCP echo server with asyncrt.net, in the style of
asyncio's streams.

    python3 examples/python/echo_server.py [--backend auto|epoll|io_uring] [--port P]
        serves 127.0.0.1:P (default 7000) until interrupted;
    python3 examples/python/echo_server.py [--backend B] --self-test N
        serves a free port and runs N client coroutines on the same executor:
        each connects, sends ROUNDS lines and checks that each comes back;
        then the server closes and it prints "echo_server.py: success".
        Exits 77 when the backend asked for is refused by the kernel.

Each connection runs client_connected_cb in a task of its own; every read
and write is an op of the executor's IO driver (epoll or io_uring). Run
from the repository root after `make lib`.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402
import asyncrt.net  # noqa: E402

ROUNDS = 5


async def echo(reader, writer):
    """One connection: every line back, until the client closes."""
    async for line in reader:
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(port, i):
    reader, writer = await asyncrt.net.open_connection("127.0.0.1", port)
    for r in range(ROUNDS):
        line = f"client {i} round {r} " + "x" * (i * 37 % 500) + "\n"
        writer.write(line.encode())
        await writer.drain()
        echoed = await reader.readline()
        if echoed != line.encode():
            raise AssertionError(f"client {i}: sent {line!r}, got {echoed!r}")
    writer.close()
    await writer.wait_closed()
    return i


async def self_test(n):
    async with await asyncrt.net.start_server(echo, "127.0.0.1", 0) as server:
        print(f"echo_server.py: {server.io.backend} backend, listening on 127.0.0.1:{server.port}")
        async with asyncrt.scope() as scope:  # all clients at once; the first failure cancels the rest
            tasks = [scope.spawn(client(server.port, i)) for i in range(n)]
        done = sorted(task.result() for task in tasks)
    assert done == list(range(n)), done
    print(f"echo_server.py: {n} clients x {ROUNDS} rounds echoed")


async def serve(port):
    server = await asyncrt.net.start_server(echo, "127.0.0.1", port)
    print(f"echo_server.py: {server.io.backend} backend, listening on 127.0.0.1:{server.port}", flush=True)
    await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto", choices=["auto", "epoll", "io_uring"])
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--self-test", type=int, metavar="N")
    args = parser.parse_args()
    with asyncrt.Executor() as ex:
        try:
            ex.io(backend=args.backend)
        except asyncrt.NotSupported as exc:
            print(f"echo_server.py: backend {args.backend} refused by this kernel: skipped ({exc})")
            return 77
        if args.self_test:
            ex.block_on(self_test(args.self_test), timeout=60)
            print("echo_server.py: success")
        else:
            try:
                ex.block_on(serve(args.port))
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
