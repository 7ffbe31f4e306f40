#!/usr/bin/python3
"""parallel_rcpt.py - many client sessions waiting on RCPT at once.

usage: parallel_rcpt.py PORT N SRC_IP

Opens N connections to 127.0.0.1:PORT from SRC_IP and takes each, in
lockstep, through the banner, EHLO, MAIL and RCPT (all at once, without
threads: one selector). When every session has its RCPT reply (or has
failed) prints
  rcpt OK BAD SECONDS
OK sessions got 250 to RCPT, BAD did not (another reply, closed, or
silent); SECONDS from the first RCPT sent to the last reply. Then QUIT
on every session. Every wait is bounded: 60 s for the whole run.
"""
import selectors
import socket
import sys
import time

STEPS = [None, b'EHLO parallel.test\r\n', b'MAIL FROM:<p@mx.sender.test>\r\n',
         b'RCPT TO:<u@local.test>\r\n']


def main():
    port, n, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sel = selectors.DefaultSelector()
    state = {}
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.bind((src, 0))
        s.connect(('127.0.0.1', port))
        s.setblocking(False)
        state[s] = {'step': 0, 'buf': b''}
        sel.register(s, selectors.EVENT_READ)
    ok = bad = 0
    first_rcpt = last_reply = None
    end = time.monotonic() + 60
    while ok + bad < n and time.monotonic() < end:
        for key, _ in sel.select(timeout=1):
            s, st = key.fileobj, state[key.fileobj]
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            if not data:
                bad += 1
                sel.unregister(s)
                continue
            st['buf'] += data
            lines = st['buf'].split(b'\r\n')
            if not lines[-1] == b'' or len(lines) < 2 or lines[-2][3:4] != b' ':
                continue        # the reply is not complete yet
            code = lines[-2][:3]
            st['buf'] = b''
            if st['step'] == len(STEPS) - 1:
                last_reply = time.monotonic()
                ok += code == b'250'
                bad += code != b'250'
                sel.unregister(s)
                continue
            expect = b'220' if st['step'] == 0 else b'250'
            if code != expect:
                bad += 1
                sel.unregister(s)
                continue
            st['step'] += 1
            if st['step'] == len(STEPS) - 1 and first_rcpt is None:
                first_rcpt = time.monotonic()
            s.sendall(STEPS[st['step']])
    bad = n - ok
    secs = (last_reply - first_rcpt) if first_rcpt and last_reply else -1
    print('rcpt %d %d %.1f' % (ok, bad, secs), flush=True)
    for s in state:
        try:
            s.sendall(b'QUIT\r\n')
            s.settimeout(5)
            s.recv(4096)
        except OSError:
            pass
        s.close()


if __name__ == '__main__':
    main()
