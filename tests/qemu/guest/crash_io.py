"""Writers and checkers for the crash scenario (run inside a test VM with the host's python3).

Only writes a flush covered are promised to survive a power cut: the test disks have a volatile
cache that loses the rest (tests/qemu/volatile_disk.py). So a write goes into a journal only once
its REQ_FUA write or a later REQ_PREFLUSH flush has completed.

write DEV JOURNAL WORKER WORKERS SEQ0 BLOCKS MODE SEED: writes 4 KiB blocks with O_DIRECT, each
    holding its block number and a sequence number (repeated over the whole block), to random
    blocks of its share (block % WORKERS == WORKER), until killed. MODE `dsync`: O_DSYNC, every
    write is a FUA write and is journalled ("block seq") once it returns. MODE `flush:N`: plain
    writes, and after every N of them an fdatasync (a flush of the device); the N are journalled
    once it returns.
check DEV JOURNAL...: for every block in the journals, the device must hold that block's number
    and a sequence number at least the newest journalled one, the same over the whole block
    (a newer write may have landed without reaching the journal; a torn or older block is a lost
    write the device had promised). Prints what it checked; exits 1 on any loss.
files DIR JOURNAL SEED: writes files of random size and content into DIR, each fsync()ed with its
    directory, then journalled as "name sha256", until killed.
check-files DIR JOURNAL: every journalled file must exist with its content.
"""
import hashlib
import mmap
import os
import random
import struct
import sys

BLOCK = 4096


def pattern(block, seq):
    return struct.pack("<QQ", block, seq) * (BLOCK // 16)


def write(dev, journal, worker, workers, seq0, blocks, mode, seed):
    rng = random.Random(f"{seed}/{worker}/{seq0}")
    dsync = mode == "dsync"
    per_flush = 1 if dsync else int(mode.split(":")[1])
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT | (os.O_DSYNC if dsync else 0))
    buf = mmap.mmap(-1, BLOCK)
    seq = seq0
    done = []
    with open(journal, "a", buffering=1) as j:
        while True:
            block = rng.randrange(worker, blocks, workers)
            seq += 1
            buf.seek(0)
            buf.write(pattern(block, seq))
            if os.pwrite(fd, buf, block * BLOCK) != BLOCK:
                raise SystemExit("short write")
            done.append(f"{block} {seq}\n")
            if len(done) >= per_flush:
                if not dsync:
                    os.fdatasync(fd)
                j.write("".join(done))
                done.clear()


def read_journal(paths):
    """Complete lines of the journals (the line being written when the VM died is skipped)."""
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as j:
            for line in j:
                if line.endswith("\n") and len(line.split()) == 2:
                    yield line.split()


def check(dev, journals):
    acked = {}
    for block, seq in read_journal(journals):
        acked[int(block)] = max(acked.get(int(block), 0), int(seq))
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
                print(f"LOST: block {block} flushed with seq {seq}, device has block {got_block} seq {got_seq}")
    print(f"{dev}: {len(acked)} flushed blocks checked, {lost} lost")
    return 1 if lost else 0


def files(directory, journal, seed):
    rng = random.Random(f"{seed}/files/{journal}/{os.path.getsize(journal) if os.path.exists(journal) else 0}")
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    with open(journal, "a", buffering=1) as j:
        n = 0
        while True:
            n += 1
            name = f"f-{rng.getrandbits(48):012x}-{n}"
            data = rng.randbytes(rng.randrange(1, 64) * 1024 + rng.randrange(0, 1024))
            fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dfd)
            j.write(f"{name} {hashlib.sha256(data).hexdigest()}\n")


def check_files(directory, journal):
    bad = total = 0
    for name, digest in read_journal([journal]):
        total += 1
        try:
            with open(os.path.join(directory, name), "rb") as f:
                ok = hashlib.sha256(f.read()).hexdigest() == digest
        except FileNotFoundError:
            ok = False
        if not ok:
            bad += 1
            if bad <= 5:
                print(f"LOST: fsynced file {name} is missing or differs")
    print(f"{directory}: {total} fsynced files checked, {bad} lost")
    return 1 if bad else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "write":
        write(args[0], args[1], *map(int, args[2:6]), args[6], args[7])
    elif cmd == "check":
        sys.exit(check(args[0], args[1:]))
    elif cmd == "files":
        files(*args)
    elif cmd == "check-files":
        sys.exit(check_files(*args))
    else:
        sys.exit(f"unknown command {cmd}")
