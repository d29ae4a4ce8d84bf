"""Disks with a volatile write cache for the VM harness: an NBD server on a Unix socket.

A QEMU kill keeps every write QEMU had made, so on plain image files no test ever loses a disk's
write cache, and a missing flush or FUA would pass. This server stands between QEMU and the
image files and behaves like a disk with a volatile cache:

- a write is acknowledged once it is in the cache (memory); reads see it at once;
- a flush (NBD_CMD_FLUSH) writes the cache to the image, in order, before it is acknowledged;
  a write with NBD_CMD_FLAG_FUA goes to the image before its acknowledgement;
- when the connection ends without NBD_CMD_DISC (QEMU was killed: a power cut), each cached
  write independently reaches the image with probability KEEP (the disk may have destaged some
  of its cache, in any order it liked) and the rest are lost;
- NBD_CMD_DISC (QEMU shut down cleanly) writes the whole cache out.

One process serves every image given, each as the export named by its file name without the
directory; one client at a time per export (a new boot waits until the old connection's power
cut has been carried out). The random choices come from SEED, printed in every message, so a run
can be replayed.

    volatile_disk.py SOCKET SEED KEEP IMAGE...
"""
import collections
import os
import random
import socket
import socketserver
import struct
import sys
import threading

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_INFO, OPT_GO = 1, 2, 6, 7
REP_ACK, REP_INFO = 1, 3
REP_ERR_UNSUP, REP_ERR_UNKNOWN = 2**31 + 1, 2**31 + 6
INFO_EXPORT = 0
# Transmission flags: has flags, flush, FUA, trim, write zeroes.
TX_FLAGS = 1 | 4 | 8 | 32 | 64
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES = 0, 1, 2, 3, 4, 6
CMD_FLAG_FUA = 1
EINVAL, EIO = 22, 5
SECTOR = 512
# A real cache is bounded: past this much the oldest writes are destaged, as a disk would.
CACHE_LIMIT = 256 << 20


def log(msg):
    print(f"[volatile_disk seed={SEED}] {msg}", file=sys.stderr, flush=True)


class Export:
    """One image with its volatile cache. `lock` is held by the one connection using it."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.fd = os.open(path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.lock = threading.Lock()
        self.pending = collections.deque()  # (offset, bytes) in the order the writes were acknowledged
        self.pending_bytes = 0
        self.overlay = {}  # sector -> 512 bytes: the newest cached content of that sector
        self.boots = 0

    def write(self, offset, data, fua):
        if fua:
            # FUA asks only for this write; destaging the older ones first is allowed and keeps
            # the cache from holding data older than the image. (virtio-blk has no FUA, so QEMU
            # turns a guest's FUA into a write and a flush; this path is for completeness.)
            self.destage_all()
            os.pwrite(self.fd, data, offset)
            return
        self.pending.append((offset, data))
        self.pending_bytes += len(data)
        for i in range(0, len(data), SECTOR):
            self.overlay[(offset + i) // SECTOR] = data[i:i + SECTOR]
        while self.pending_bytes > CACHE_LIMIT:
            self.destage_oldest()

    def read(self, offset, length):
        buf = bytearray(os.pread(self.fd, length, offset))
        if self.overlay:
            for i in range(0, length, SECTOR):
                cached = self.overlay.get((offset + i) // SECTOR)
                if cached is not None:
                    buf[i:i + SECTOR] = cached
        return bytes(buf)

    def destage_oldest(self):
        offset, data = self.pending.popleft()
        self.pending_bytes -= len(data)
        os.pwrite(self.fd, data, offset)
        # The overlay still holds the newest content; it stays right for reads.

    def destage_all(self):
        for offset, data in self.pending:
            os.pwrite(self.fd, data, offset)
        self.pending.clear()
        self.pending_bytes = 0
        self.overlay.clear()

    def power_cut(self, rng):
        kept = [w for w in self.pending if rng.random() < KEEP]
        for offset, data in kept:
            os.pwrite(self.fd, data, offset)
        log(f"{self.name} boot {self.boots}: power cut with {len(self.pending)} unflushed writes "
            f"({self.pending_bytes} bytes): {len(kept)} reached the disk, {len(self.pending) - len(kept)} lost")
        self.pending.clear()
        self.pending_bytes = 0
        self.overlay.clear()


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        try:
            (client_flags,) = struct.unpack(">I", recv_exact(sock, 4))
            export = self.negotiate(sock, client_flags)
        except (EOFError, ConnectionError):
            return
        if export is None:
            return
        with export.lock:
            export.boots += 1
            rng = random.Random(f"{SEED}/{export.name}/{export.boots}")
            clean = self.transmit(sock, export)
            if clean:
                export.destage_all()
            else:
                export.power_cut(rng)

    def option_reply(self, sock, opt, rtype, data=b""):
        sock.sendall(struct.pack(">QIII", REPLY_MAGIC, opt, rtype, len(data)) + data)

    def negotiate(self, sock, client_flags):
        while True:
            magic, opt, length = struct.unpack(">QII", recv_exact(sock, 16))
            if magic != IHAVEOPT or length > 4096:
                return None
            data = recv_exact(sock, length)
            if opt == OPT_EXPORT_NAME:
                export = EXPORTS.get(data.decode(errors="replace"))
                if export is None:
                    return None
                tail = b"" if client_flags & FLAG_NO_ZEROES else bytes(124)
                sock.sendall(struct.pack(">QH", export.size, TX_FLAGS) + tail)
                return export
            if opt in (OPT_INFO, OPT_GO):
                (nlen,) = struct.unpack_from(">I", data)
                export = EXPORTS.get(data[4:4 + nlen].decode(errors="replace"))
                if export is None:
                    self.option_reply(sock, opt, REP_ERR_UNKNOWN)
                    continue
                self.option_reply(sock, opt, REP_INFO, struct.pack(">HQH", INFO_EXPORT, export.size, TX_FLAGS))
                self.option_reply(sock, opt, REP_ACK)
                if opt == OPT_GO:
                    return export
                continue
            if opt == OPT_ABORT:
                self.option_reply(sock, opt, REP_ACK)
                return None
            self.option_reply(sock, opt, REP_ERR_UNSUP)

    def transmit(self, sock, export):
        """Serves requests until DISC (returns True) or the connection dies (returns False)."""
        while True:
            try:
                magic, flags, cmd, handle, offset, length = struct.unpack(">IHHQQI", recv_exact(sock, 28))
                if magic != REQUEST_MAGIC:
                    return False
                data = recv_exact(sock, length) if cmd == CMD_WRITE else b""
            except (EOFError, ConnectionError):
                return False
            if cmd == CMD_DISC:
                return True
            error, payload = 0, b""
            if cmd in (CMD_READ, CMD_WRITE, CMD_TRIM, CMD_WRITE_ZEROES) and offset + length > export.size:
                error = EINVAL
            elif cmd == CMD_READ:
                payload = export.read(offset, length)
            elif cmd == CMD_WRITE:
                export.write(offset, data, flags & CMD_FLAG_FUA)
            elif cmd == CMD_WRITE_ZEROES:
                export.write(offset, bytes(length), flags & CMD_FLAG_FUA)
            elif cmd == CMD_TRIM:
                pass  # discarded data may read back as before: a valid TRIM
            elif cmd == CMD_FLUSH:
                export.destage_all()
            else:
                error = EINVAL
            try:
                sock.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, error, handle) + payload)
            except ConnectionError:
                return False


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    sock_path, SEED, KEEP = sys.argv[1], sys.argv[2], float(sys.argv[3])
    EXPORTS = {e.name: e for e in map(Export, sys.argv[4:])}
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    server = Server(sock_path, Handler)
    log(f"serving {', '.join(EXPORTS)} on {sock_path} (cached writes kept at a power cut: {KEEP})")
    server.serve_forever()
