"""Writer and checker for the crash scenario (run inside a test VM with the host's python3).

write DEV JOURNAL WORKER WORKERS SEQ0 BLOCKS: writes 4 KiB blocks with O_DIRECT, each holding its
    block number and a sequence number (repeated over the whole block), to random blocks of its
    share (block % WORKERS == WORKER), and appends "block seq" to JOURNAL after each write has been
    acknowledged. Runs until killed.
check DEV JOURNAL...: for every block in the journals, the device must hold that block's number
    and a sequence number at least the newest acknowledged one, the same over the whole block
    (a newer write may have landed without its acknowledgement reaching the journal; a torn or
    older block is a lost acknowledged write). Prints what it checked; exits 1 on any loss.
"""
import mmap
import os
import random
import struct
import sys

BLOCK = 4096


def pattern(block, seq):
    return struct.pack("<QQ", block, seq) * (BLOCK // 16)


def write(dev, journal, worker, workers, seq0, blocks):
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK)
    seq = seq0
    with open(journal, "a", buffering=1) as j:
        while True:
            block = random.randrange(worker, blocks, workers)
            seq += 1
            buf.seek(0)
            buf.write(pattern(block, seq))
            if os.pwrite(fd, buf, block * BLOCK) != BLOCK:
                raise SystemExit("short write")
            j.write(f"{block} {seq}\n")


def check(dev, journals):
    acked = {}
    for path in journals:
        if not os.path.exists(path):
            continue
        with open(path) as j:
            for line in j:
                parts = line.split()
                if len(parts) != 2 or not line.endswith("\n"):
                    continue  # the line being written when the VM died
                block, seq = int(parts[0]), int(parts[1])
                acked[block] = max(acked.get(block, 0), seq)
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK)
    lost = 0
    for block, seq in sorted(acked.items()):
        os.preadv(fd, [buf], block * BLOCK)
        data = bytes(buf)
        got_block, got_seq = struct.unpack_from("<QQ", data)
        if data != pattern(got_block, got_seq) or got_block != block or got_seq < seq:
            lost += 1
            if lost <= 5:
                print(f"LOST: block {block} acknowledged with seq {seq}, device has block {got_block} seq {got_seq}")
    print(f"{dev}: {len(acked)} acknowledged blocks checked, {lost} lost")
    return 1 if lost else 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]))
    else:
        sys.exit(check(sys.argv[2], sys.argv[3:]))
