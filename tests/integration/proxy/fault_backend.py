#!/usr/bin/python3
"""fault_backend.py - a scripted SMTP backend that fails on purpose.

usage: fault_backend.py PORT DIR

Listens on 127.0.0.1:PORT (one thread per connection) and plays a
plain, correct SMTP server, except for the fault named in DIR/mode,
read afresh at each new connection. The DATA faults hit the
connection's first DATA only, so that a client's next transaction in
the same session shows whether the proxy recovered:

  ok            no fault
  drop-data     close the connection when DATA arrives (no reply)
  drop-dot      answer 354, read the message, close without a reply
  data-451      answer DATA with 451 4.3.0
  data-554      answer DATA with 554 5.5.1
  dot-451       read the message, answer the final dot with 451 4.3.0
  dot-stall     read the message, never answer (until the proxy gives up)
  drop-rcpt     close the connection when RCPT arrives (no reply)
  slow-rcpt     answer each RCPT after 3 s
  trickle       no fault, but every reply (the greeting too) is sent 3
                bytes at a time, 20 ms apart: lines arrive in pieces
  ehlo-refuse   answer EHLO and HELO with 550 5.7.1 (read afresh at each
                one, so that a connection the proxy kept shows it too)

It records what it received in DIR/log, one line per event:
  conn N / cmd N VERB / msg N SIZE FIRST-SUBJECT / reply-dot N CODE /
  close N
and every message it read (accepted or not) as DIR/msg.N.K (N the
connection, K the message in it). Only faults that a real MTA cannot be
made to show are played here. Every wait is bounded: a connection idle
for 60 s is closed, and the server exits after 600 s.
"""
import os
import socket
import sys
import threading
import time

PORT, DIR = int(sys.argv[1]), sys.argv[2]
LOCK = threading.Lock()
COUNT = [0]


def log(line):
    with LOCK:
        with open(os.path.join(DIR, 'log'), 'a') as f:
            f.write(line + '\n')


def mode():
    try:
        with open(os.path.join(DIR, 'mode')) as f:
            return f.read().strip() or 'ok'
    except OSError:
        return 'ok'


class Conn:
    def __init__(self, s, n, trickle=False):
        self.s, self.n, self.buf, self.trickle = s, n, b'', trickle
        s.settimeout(60)
        if trickle:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def line(self):
        while b'\r\n' not in self.buf:
            c = self.s.recv(65536)
            if not c:
                raise EOFError
            self.buf += c
        l, self.buf = self.buf.split(b'\r\n', 1)
        return l

    def send(self, text):
        data = text.encode('latin-1') + b'\r\n'
        if not self.trickle:
            self.s.sendall(data)
            return
        for i in range(0, len(data), 3):
            self.s.sendall(data[i:i + 3])
            time.sleep(0.02)

    def message(self):
        """Read DATA up to the final dot; the raw bytes, unstuffed."""
        lines = []
        while True:
            l = self.line()
            if l == b'.':
                return b''.join(x + b'\r\n' for x in lines)
            lines.append(l[1:] if l.startswith(b'.') else l)


def subject(data):
    for l in data.split(b'\r\n'):
        if not l:
            break
        if l.lower().startswith(b'subject:'):
            return l[8:].strip().decode('latin-1').replace(' ', '_')
    return '-'


def serve(s, n):
    m = mode()
    c = Conn(s, n, m == 'trickle')
    k = datas = 0
    log('conn %d %s' % (n, m))
    try:
        c.send('220 fault.backend.test ESMTP')
        in_txn = False
        while True:
            l = c.line().decode('latin-1')
            verb = l.split(' ', 1)[0].upper()
            log('cmd %d %s' % (n, verb))
            if verb in ('EHLO', 'HELO') and mode() == 'ehlo-refuse':
                c.send('550 5.7.1 Error: scripted %s refusal' % verb)
            elif verb == 'EHLO':
                in_txn = False
                c.send('250-fault.backend.test')
                c.send('250-8BITMIME')
                c.send('250 ENHANCEDSTATUSCODES')
            elif verb == 'HELO':
                c.send('250 fault.backend.test')
            elif verb == 'MAIL':
                if in_txn:
                    c.send('503 5.5.1 Error: nested MAIL command')
                else:
                    in_txn = True
                    c.send('250 2.1.0 Ok')
            elif verb == 'RCPT':
                if m == 'drop-rcpt':
                    return
                if m == 'slow-rcpt':
                    time.sleep(3)
                c.send('250 2.1.5 Ok')
            elif verb == 'DATA':
                if datas > 0 and m != 'drop-rcpt':
                    m = 'ok'
                datas += 1
                if m == 'drop-data':
                    return
                if m == 'data-451':
                    in_txn = False
                    c.send('451 4.3.0 Error: scripted DATA failure')
                    continue
                if m == 'data-554':
                    in_txn = False
                    c.send('554 5.5.1 Error: scripted DATA refusal')
                    continue
                c.send('354 End data with <CR><LF>.<CR><LF>')
                data = c.message()
                k += 1
                with open(os.path.join(DIR, 'msg.%d.%d' % (n, k)), 'wb') as f:
                    f.write(data)
                log('msg %d %d %s' % (n, len(data), subject(data)))
                in_txn = False
                if m == 'drop-dot':
                    return
                if m == 'dot-stall':
                    time.sleep(30)
                    return
                code = '451 4.3.0 Error: scripted failure at end of data' \
                    if m == 'dot-451' else '250 2.0.0 Ok: queued as F%d%d' % (n, k)
                log('reply-dot %d %s' % (n, code[:3]))
                c.send(code)
            elif verb == 'RSET':
                in_txn = False
                c.send('250 2.0.0 Ok')
            elif verb == 'NOOP':
                c.send('250 2.0.0 Ok')
            elif verb == 'QUIT':
                c.send('221 2.0.0 Bye')
                return
            else:
                c.send('502 5.5.2 Error: command not recognized')
    except (EOFError, OSError):
        pass
    finally:
        log('close %d' % n)
        try:
            s.close()
        except OSError:
            pass


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', PORT))
    ls.listen(128)
    ls.settimeout(1)
    end = time.time() + 600
    while time.time() < end:
        try:
            s, _ = ls.accept()
        except socket.timeout:
            continue
        COUNT[0] += 1
        threading.Thread(target=serve, args=(s, COUNT[0]), daemon=True).start()


main()
