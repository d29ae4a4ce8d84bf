"""Sequence-stamped blocks for the prefix scenario (run inside a test VM with the host's python3).

write DEV BLOCKS COUNT: writes COUNT 4 KiB blocks with O_DIRECT, write i (from 1) to block
    i % BLOCKS, the block holding i and its block number (repeated over the whole block), one
    write at a time, so the primary's log holds them in the order of i.
check DEV BLOCKS: the device must hold the state after the first m writes for some m: every
    block the value of the newest write i <= m that went to it, or zeros if none did; m is the
    newest value found. Prints m; exits 1 (saying which block is wrong) if the device holds no
    such prefix, e.g. a newer write applied before an older one, or a torn block.
"""
import mmap
import os
import struct
import sys

BLOCK = 4096
WORD = struct.Struct("<QQ")


def block_of(i, b):
    return WORD.pack(i, b) * (BLOCK // WORD.size)


def write(dev, blocks, count):
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK)
    for i in range(1, count + 1):
        b = i % blocks
        buf.seek(0)
        buf.write(block_of(i, b))
        os.pwritev(fd, [buf], b * BLOCK)
    os.close(fd)


def check(dev, blocks):
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK * 256)
    values = []
    for start in range(0, blocks, 256):
        n = min(256, blocks - start)
        view = memoryview(buf)[: n * BLOCK]
        got = os.preadv(fd, [view], start * BLOCK)
        if got != n * BLOCK:
            print(f"short read at block {start}: {got} bytes")
            return 1
        for k in range(n):
            data = bytes(buf[k * BLOCK : (k + 1) * BLOCK])
            b = start + k
            if data == bytes(BLOCK):
                values.append(0)
                continue
            i, stamped = WORD.unpack_from(data)
            if data != block_of(i, stamped) or stamped != b:
                print(f"block {b} is torn or foreign: starts with write {i} of block {stamped}")
                return 1
            values.append(i)
    os.close(fd)
    m = max(values)
    for b, v in enumerate(values):
        # The newest write <= m to block b: i = m - ((m - b) % blocks), if that is >= 1.
        want = m - ((m - b) % blocks)
        want = want if want >= 1 else 0
        if v != want:
            print(f"not a prefix: after write {m} block {b} should hold write {want}, it holds {v}")
            return 1
    print(f"prefix of {m} writes")
    return 0


def main():
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    if cmd == "check":
        return check(sys.argv[2], int(sys.argv[3]))
    print(f"unknown command {cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
