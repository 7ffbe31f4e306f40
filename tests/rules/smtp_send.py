#!/usr/bin/python3
"""smtp_send.py - send rule-corpus messages over SMTP for the rules suites.

usage: smtp_send.py one PORT SRC_IP CLIENT_IP HELO FROM RCPT FILE [MODE]
       smtp_send.py load PORT SENDERS COUNT OUTFILE RELOAD_CMD LOG FILE

MODE is how the client address CLIENT_IP reaches the filter:
  xclient   Postfix XCLIENT ADDR= (milter behind Postfix; default)
  proxy     a PROXY protocol v1 header (mxwarden proxy, trusted upstream)
  none      CLIENT_IP is ignored (the TCP source SRC_IP is the client)

"one" prints one line: STAGE CODE TEXT, where STAGE is the step that
got the first refusal (connect, helo, mail, rcpt, data, eom) or "eom"
with the final 250. A network error prints "error - REASON".

"load" sends COUNT messages from SENDERS parallel clients (FILE with a
"Subject: load N" header, source addresses 127.0.0.30 onwards, no
XCLIENT) to PORT. Once a quarter of them are done it runs RELOAD_CMD
(a shell command) and waits (10 s at most) until LOG contains
"reload: new configuration"; it writes one line per message to OUTFILE:
  N CODE T_START T_END
and "reload T" with the time the reload was seen. Every socket wait is
bounded (30 s); the whole run is bounded by the caller's timeout.
"""
import socket
import subprocess
import sys
import threading
import time


class Refused(Exception):
    def __init__(self, stage, line):
        Exception.__init__(self, line)
        self.stage, self.line = stage, line


class Client:
    def __init__(self, port, src, timeout=30):
        self.s = socket.socket()
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect(('127.0.0.1', port))
        self.buf = b''

    def reply(self):
        """One complete reply: (code, last line)."""
        while True:
            while b'\r\n' not in self.buf:
                c = self.s.recv(65536)
                if not c:
                    raise EOFError('connection closed')
                self.buf += c
            line, self.buf = self.buf.split(b'\r\n', 1)
            t = line.decode('latin-1')
            if len(t) < 4 or t[3] != '-':
                return t

    def cmd(self, stage, text, want='2'):
        if text is not None:
            self.s.sendall(text.encode('latin-1') + b'\r\n')
        r = self.reply()
        if not r.startswith(want):
            raise Refused(stage, r)
        return r

    def close(self):
        try:
            self.s.sendall(b'QUIT\r\n')
            self.reply()
        except (OSError, EOFError):
            pass
        self.s.close()


def data_bytes(path):
    """The message with CRLF line ends, dot-stuffed, ending in CRLF.CRLF."""
    raw = open(path, 'rb').read().replace(b'\r\n', b'\n')
    out = []
    for line in raw.split(b'\n'):
        if line.startswith(b'.'):
            line = b'.' + line
        out.append(line)
    if out and out[-1] == b'':
        out.pop()
    return b'\r\n'.join(out) + b'\r\n.\r\n'


def xclient_addr(ip):
    return 'IPV6:' + ip if ':' in ip else ip


def send_one(port, src, client_ip, helo, mail_from, rcpt, path, mode):
    c = Client(port, src)
    try:
        if mode == 'proxy':
            fam = 'TCP6' if ':' in client_ip else 'TCP4'
            dst = '::1' if ':' in client_ip else '127.0.0.1'
            c.s.sendall(('PROXY %s %s %s 40000 25\r\n'
                         % (fam, client_ip, dst)).encode())
        c.cmd('connect', None)
        if mode == 'xclient':
            c.cmd('helo', 'EHLO xclient.test')
            c.cmd('connect', 'XCLIENT ADDR=%s NAME=[UNAVAILABLE]'
                  % xclient_addr(client_ip))
        c.cmd('helo', 'EHLO ' + helo)
        c.cmd('mail', 'MAIL FROM:<%s>' % mail_from)
        for r in rcpt.split(','):
            c.cmd('rcpt', 'RCPT TO:<%s>' % r)
        c.cmd('data', 'DATA', want='3')
        c.s.sendall(data_bytes(path))
        r = c.cmd('eom', None)
        return 'eom ' + r
    except Refused as e:
        return '%s %s' % (e.stage, e.line)
    finally:
        c.close()


def one(argv):
    port, src, cip, helo, frm, rcpt, path = argv[:7]
    mode = argv[7] if len(argv) > 7 else 'xclient'
    try:
        print(send_one(int(port), src, cip, helo, frm, rcpt, path, mode))
    except (OSError, EOFError) as e:
        print('error - %s' % e)


def load(argv):
    port, senders, count, outfile, reload_cmd, log, path = argv[:7]
    port, senders, count = int(port), int(senders), int(count)
    body = open(path, 'rb').read().decode('latin-1')
    results, lock = [], threading.Lock()
    nxt = [0]
    reload_at = [None]

    def worker(k):
        src = '127.0.0.%d' % (30 + k)
        while True:
            with lock:
                if nxt[0] >= count:
                    return
                n = nxt[0]
                nxt[0] += 1
            fn = '%s.%d' % (outfile, n)
            with open(fn, 'w', encoding='latin-1') as f:
                f.write('Subject: load %d\n%s' % (n, body))
            t0 = time.time()
            try:
                r = send_one(port, src, src, 'load%d.test' % k,
                             'carol@mx.sender.test', 'bob@local.test', fn,
                             'none')
            except (OSError, EOFError) as e:
                r = 'error - %s' % e
            t1 = time.time()
            code = r.split(' ', 2)[1]
            with lock:
                results.append('%d %s %s %.6f %.6f'
                               % (n, r.split(' ')[0], code, t0, t1))

    threads = [threading.Thread(target=worker, args=(k,))
               for k in range(senders)]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while time.time() < deadline:
        with lock:
            if len(results) >= count // 4:
                break
        time.sleep(0.01)
    subprocess.run(reload_cmd, shell=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        if 'reload: new configuration' in open(log, errors='replace').read():
            reload_at[0] = time.time()
            break
        time.sleep(0.01)
    for t in threads:
        t.join(180)
    with open(outfile, 'w') as f:
        for r in results:
            f.write(r + '\n')
        f.write('reload %s\n' % (reload_at[0] or 'none'))


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == 'one':
        one(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == 'load':
        load(sys.argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
