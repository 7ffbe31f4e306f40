#!/usr/bin/python3
"""idle_clients.py - hold many idle SMTP connections open.

usage: idle_clients.py PORT N SRC_IP

Opens N connections to 127.0.0.1:PORT from SRC_IP (non-blocking; at
most BATCH waiting for their greeting at any time, so that the burst
does not overflow the listen queue, where SYN cookies would lose
connections the client believes open), reads each one's greeting and
prints one line:
  banners OK BAD      OK connections got a 220 greeting, BAD did not
                      (refused, closed or silent for 90 s)
then waits (at most 300 s) for a line "quit" on standard input, sends
QUIT on every connection, waits (at most 60 s) for the replies and
prints
  quit OK             OK connections answered 221
Every wait is bounded; the connections are closed at the end.
"""
import resource
import selectors
import socket
import sys
import time

BATCH = 64


def main():
    port, n, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 64)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    sel = selectors.DefaultSelector()
    socks, data = [], {}
    ok = bad = 0
    deadline = time.monotonic() + 120
    while (len(socks) < n or sel.get_map()) and time.monotonic() < deadline:
        while len(socks) < n and len(sel.get_map()) < BATCH:
            s = socket.socket()
            s.setblocking(False)
            s.bind((src, 0))
            s.connect_ex(('127.0.0.1', port))
            socks.append(s)
            data[s] = b''
            sel.register(s, selectors.EVENT_READ)
        o, b = read_some(sel, data, b'220')
        ok += o
        bad += b
    bad += n - len(socks) + len(sel.get_map())
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    print('banners', ok, bad, flush=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = sys.stdin.readline()
        if not line or line.strip() == 'quit':
            break
    for s in socks:
        data[s] = b''
        try:
            s.send(b'QUIT\r\n')
            sel.register(s, selectors.EVENT_READ)
        except OSError:
            pass
    ok, _ = read_replies(sel, data, b'221', 60)
    print('quit', ok, flush=True)
    for s in socks:
        s.close()


def read_some(sel, data, code):
    """One select round (1 s at most): each socket whose line is complete
    (or that failed) is unregistered and counted: (ok, bad)."""
    ok = bad = 0
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        try:
            chunk = s.recv(4096)
        except OSError:
            chunk = b''
        data[s] += chunk
        if chunk and b'\r\n' not in data[s]:
            continue
        sel.unregister(s)
        if data[s].startswith(code):
            ok += 1
        else:
            bad += 1
    return ok, bad


def read_replies(sel, data, code, seconds):
    """Read one line from every registered socket; count those that
    start with code."""
    ok = bad = 0
    deadline = time.monotonic() + seconds
    while sel.get_map() and time.monotonic() < deadline:
        o, b = read_some(sel, data, code)
        ok += o
        bad += b
    bad += len(sel.get_map())
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    return ok, bad


if __name__ == '__main__':
    main()
