#!/usr/bin/env python3
"""A MARS peer written independently of lib/ (from docs/protocol.md), for the VM tests: it
speaks the protocol well enough to authenticate, and badly on purpose to attack a server.

  peer_tool.py ATTACK HOST PORT [options]

Attacks (each prints one line per probe and exits 0 if the server behaved: answered with an error
frame and/or closed the connection, never hung past the deadline):
  garbage        random bytes
  oversized      valid headers announcing payloads over every type's limit
  half           half a frame, then silence (the server must close it on its own)
  early          a tree-request before any hello
  flood N        N connections at once, held open silent for a while
  stall SECRET NAME   handshake, ask for the whole tree, never read the reply (prints "stalled"
                 and sleeps; the test then removes the module on the server)
  handshake SECRET NAME   handshake only; prints the server's name or its refusal
  fetch SECRET NAME       handshake, then the whole tree: prints bytes, seconds and MB/s
  logcopy SECRET NAME RES DIR [WINDOW]   on the replication port: lists RES's logfiles, then
                 copies each into DIR (appending to what DIR holds already) with WINDOW
                 log-fetch requests of 256 KiB in flight; prints "NAME SIZE" per logfile
  sink                    (reference) accepts one TCP connection on PORT and reads it to the end
  source BYTES            (reference) sends BYTES over one TCP connection: prints seconds, MB/s
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = b"MaRN"
HELLO, AUTH_PROOF, ERROR, KEEPALIVE, TREE_REQUEST, TREE_DATA = 1, 2, 3, 4, 16, 17
LOG_LIST_REQUEST, LOG_LIST, LOG_FETCH, LOG_DATA = 32, 33, 34, 35


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def frame(kind, payload, request_id=0, version=1, declared_len=None):
    length = len(payload) if declared_len is None else declared_len
    head = MAGIC + struct.pack("<HHIIQI", version, kind, 0, length, request_id, crc32c(payload) if payload else 0)
    return head + struct.pack("<I", crc32c(head)) + payload


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("closed")
        out += chunk
    return out


def recv_frame(s):
    head = recv_exact(s, 32)
    if head[:4] != MAGIC:
        raise ValueError("bad magic")
    _ver, kind, _flags, length, rid, _pcrc, _hcrc = struct.unpack("<HHIIQII", head[4:])
    return kind, rid, recv_exact(s, length)


def error_text(payload):
    code, n = struct.unpack("<HH", payload[:4])
    return code, payload[4:4 + n].decode("utf-8", "replace")


def connect(host, port, timeout=10):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def send_attack(s, data):
    """Sends attack bytes; the server may close before taking them all, which is fine."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def outcome(s, deadline_s):
    """What the server does next: 'error N: TEXT, closed', 'closed', or 'hung'."""
    s.settimeout(deadline_s)
    said = []
    try:
        while True:
            kind, _rid, payload = recv_frame(s)
            if kind == ERROR:
                said.append("error %d: %s" % error_text(payload))
            else:
                said.append("frame type %d" % kind)
    except (EOFError, ConnectionResetError):
        said.append("closed")
    except socket.timeout:
        said.append("hung")
    except ValueError as e:
        said.append(str(e))
    return ", ".join(said)


def cluster_id(secret):
    return hmac.new(secret, b"mars-cluster-id-v1", hashlib.sha256).digest()[:16]


def hello_payload(secret, name, nonce):
    n = name.encode()
    return struct.pack("<HH", 1, 2) + cluster_id(secret) + nonce + bytes([len(n)]) + n


def handshake(s, secret, name):
    own = hello_payload(secret, name, os.urandom(32))
    s.sendall(frame(HELLO, own))
    kind, _rid, peer = recv_frame(s)
    if kind == ERROR:
        raise PermissionError("refused: error %d: %s" % error_text(peer))
    if kind != HELLO:
        raise ValueError("expected a hello, got type %d" % kind)
    proof = hmac.new(secret, b"mars-auth-v1" + b"\x01" + own + peer, hashlib.sha256).digest()
    s.sendall(frame(AUTH_PROOF, proof))
    kind, _rid, payload = recv_frame(s)
    if kind == ERROR:
        raise PermissionError("refused: error %d: %s" % error_text(payload))
    want = hmac.new(secret, b"mars-auth-v1" + b"\x02" + peer + own, hashlib.sha256).digest()
    if payload != want:
        raise PermissionError("the server's proof is wrong")
    return peer[53:53 + peer[52]].decode()


def main():
    attack, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    args = sys.argv[4:]
    ok = True
    if attack == "garbage":
        for size in (1, 31, 32, 100, 4096, 70000):
            s = connect(host, port)
            sent = send_attack(s, os.urandom(size))
            r = outcome(s, 15) + ("" if sent else " (closed while sending)")
            print("garbage %d bytes: %s" % (size, r))
            ok &= "hung" not in r
    elif attack == "oversized":
        for kind, length in ((HELLO, 117), (TREE_REQUEST, 9), (TREE_DATA, 1 << 21), (KEEPALIVE, 0xFFFFFFFF), (999, 8)):
            s = connect(host, port)
            send_attack(s, frame(kind, b"", declared_len=length))
            r = outcome(s, 15)
            print("type %d announcing %d bytes: %s" % (kind, length, r))
            ok &= "hung" not in r and "closed" in r
    elif attack == "half":
        s = connect(host, port)
        s.sendall(frame(HELLO, hello_payload(b"x" * 32, "intruder", os.urandom(32)))[:20])
        t0 = time.time()
        r = outcome(s, 40)
        print("half a hello, then silence: %s after %.1f s" % (r, time.time() - t0))
        ok &= "closed" in r
    elif attack == "early":
        s = connect(host, port)
        send_attack(s, frame(TREE_REQUEST, struct.pack("<Q", 0), request_id=1))
        r = outcome(s, 15)
        print("tree-request before the handshake: %s" % r)
        ok &= "closed" in r and "frame type 17" not in r
    elif attack == "flood":
        n = int(args[0])
        socks, refused = [], 0
        for _ in range(n):
            try:
                socks.append(connect(host, port, timeout=5))
            except OSError:
                refused += 1
        print("flood: %d connections open, %d not accepted" % (len(socks), refused))
        time.sleep(float(args[1]) if len(args) > 1 else 5)
        closed = 0
        for s in socks:
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except socket.timeout:
                pass
            except OSError:
                closed += 1
            s.close()
        print("flood: %d closed by the server meanwhile" % closed)
    elif attack == "stall":
        secret, name = open(args[0], "rb").read(), args[1]
        s = connect(host, port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        print("authenticated %s" % handshake(s, secret, name))
        s.sendall(frame(TREE_REQUEST, struct.pack("<Q", 0), request_id=1))
        print("stalled", flush=True)
        time.sleep(float(args[2]) if len(args) > 2 else 120)
    elif attack == "fetch":
        secret, name = open(args[0], "rb").read(), args[1]
        s = connect(host, port, timeout=120)
        handshake(s, secret, name)
        t0 = time.time()
        s.sendall(frame(TREE_REQUEST, struct.pack("<Q", 0), request_id=1))
        total, frames = 0, 0
        while True:
            kind, _rid, payload = recv_frame(s)
            total += 32 + len(payload)
            frames += 1
            if kind != TREE_DATA or payload[8] == 1:
                break
        dt = time.time() - t0
        print("fetch: %d bytes in %d frames in %.2f s: %.2f MB/s" % (total, frames, dt, total / dt / 1e6))
    elif attack == "logcopy":
        secret, name, resource, outdir = open(args[0], "rb").read(), args[1], args[2], args[3]
        window = int(args[4]) if len(args) > 4 else 4
        s = connect(host, port, timeout=60)
        handshake(s, secret, name)

        def field_name(text):
            raw = text.encode()
            return bytes([len(raw)]) + raw

        def take_name(p, at):
            n = p[at]
            return p[at + 1 : at + 1 + n].decode(), at + 1 + n

        def reply(expected):
            kind, rid, p = recv_frame(s)
            if kind == ERROR:
                code, n = struct.unpack_from("<HH", p)
                raise RuntimeError("error %d: %s" % (code, p[4 : 4 + n].decode()))
            if kind != expected:
                raise RuntimeError("frame type %d, expected %d" % (kind, expected))
            return rid, p

        s.sendall(frame(LOG_LIST_REQUEST, field_name(resource), request_id=1))
        rid, p = reply(LOG_LIST)
        assert rid == 1, rid
        res, at = take_name(p, 0)
        assert res == resource, res
        (count,) = struct.unpack_from("<I", p, at)
        at += 4
        files = []
        for _ in range(count):
            fname, at = take_name(p, at)
            (size,) = struct.unpack_from("<Q", p, at)
            at += 8
            files.append((fname, size))
        next_id = 2
        for fname, size in files:
            path = os.path.join(outdir, fname)
            have = os.path.getsize(path) if os.path.exists(path) else 0
            asked, in_flight, arrived = have, {}, {}
            with open(path, "ab") as out:
                while have < size:
                    while len(in_flight) < window and asked < size:
                        n = min(256 << 10, size - asked)
                        req = field_name(resource) + field_name(fname) + struct.pack("<QI", asked, n)
                        s.sendall(frame(LOG_FETCH, req, request_id=next_id))
                        in_flight[next_id] = asked
                        next_id += 1
                        asked += n
                    rid, p = reply(LOG_DATA)
                    offset = in_flight.pop(rid)
                    res, at = take_name(p, 0)
                    got_name, at = take_name(p, at)
                    (got_offset,) = struct.unpack_from("<Q", p, at)
                    (n,) = struct.unpack_from("<I", p, at + 9)
                    data = p[at + 13 : at + 13 + n]
                    assert (res, got_name, got_offset) == (resource, fname, offset), (res, got_name, got_offset)
                    arrived[offset] = data
                    while have in arrived:
                        chunk = arrived.pop(have)
                        if not chunk:
                            raise RuntimeError("%s: no data at %d of %d" % (fname, have, size))
                        out.write(chunk)
                        have += len(chunk)
            print("%s %d" % (fname, size))
    elif attack == "sink":
        l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((host, port))
        l.listen(1)
        c, _ = l.accept()
        while c.recv(1 << 20):
            pass
    elif attack == "source":
        n = int(args[0])
        s = connect(host, port, timeout=120)
        block = os.urandom(1 << 20)
        t0 = time.time()
        sent = 0
        while sent < n:
            s.sendall(block[: min(len(block), n - sent)])
            sent += min(len(block), n - sent)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        dt = time.time() - t0
        print("source: %d bytes in %.2f s: %.2f MB/s" % (n, dt, n / dt / 1e6))
    elif attack == "handshake":
        secret, name = open(args[0], "rb").read(), args[1]
        s = connect(host, port)
        try:
            print("authenticated %s" % handshake(s, secret, name))
        except (PermissionError, EOFError, ConnectionResetError) as e:
            print("refused: %s" % e)
            ok = False
    else:
        sys.exit("unknown attack %s" % attack)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
