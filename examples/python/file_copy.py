"""file_copy.py -- copies a file with asyncrt.io ops: open, read, write,
fsync, close (the twin of examples/c/file_copy.c).

    python3 examples/python/file_copy.py [--backend auto|epoll|io_uring] SOURCE DEST

Reads 64 KiB blocks at their offsets and writes each at the same offset,
DEPTH blocks at a time (one task each, in a scope). On io_uring these are
ring operations; on epoll the driver runs them on its blocking pool.
Prints "file_copy: N bytes copied"; a failure prints the OSError and exits
1; exits 77 when the backend asked for is refused by the kernel.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402

BLOCK = 64 * 1024
DEPTH = 4


async def copy(io, src_path, dst_path):
    src = await io.open(src_path, "rb")
    try:
        dst = await io.open(dst_path, "wb")
        try:
            size = os.fstat(src).st_size
            next_block = 0
            copied = 0

            async def worker():
                nonlocal next_block, copied
                while next_block < size:
                    offset, next_block = next_block, next_block + BLOCK
                    data = await io.read(src, BLOCK, offset)
                    done = 0
                    while done < len(data):  # a partial write: the rest
                        done += await io.write(dst, memoryview(data)[done:], offset + done)
                    copied += len(data)

            async with asyncrt.scope() as scope:
                for _ in range(DEPTH):
                    scope.spawn(worker())
            await io.fsync(dst)
        finally:
            await io.close(dst)
    finally:
        await io.close(src)
    return copied


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto", choices=["auto", "epoll", "io_uring"])
    parser.add_argument("source")
    parser.add_argument("dest")
    args = parser.parse_args()
    with asyncrt.Executor() as ex:
        try:
            io = ex.io(backend=args.backend)
        except asyncrt.NotSupported:
            print(f"file_copy: backend {args.backend} refused by this kernel: skipped")
            return 77
        try:
            copied = ex.block_on(copy(io, args.source, args.dest), timeout=120)
        except OSError as exc:
            print(f"file_copy: {exc}", file=sys.stderr)
            return 1
    print(f"file_copy: {io.backend if not io.closed else args.backend} backend")
    print(f"file_copy: {copied} bytes copied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
