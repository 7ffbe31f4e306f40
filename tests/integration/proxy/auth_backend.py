#!/usr/bin/python3
"""auth_backend.py - a scripted SMTP backend that offers AUTH PLAIN and
LOGIN (user "alice", password "secret"), for the proxy's AUTH relay
test: a private Postfix with SASL would need Dovecot or Cyrus here.

usage: auth_backend.py PORT LOGFILE MSGDIR
Logs every line it receives (passwords included: test data only) and
the replies; stores each message as MSGDIR/N.eml. Stops on SIGTERM.
"""
import base64
import os
import socketserver
import sys

PORT, LOG, MSGDIR = int(sys.argv[1]), sys.argv[2], sys.argv[3]
count = [0]


def log(s):
    with open(LOG, 'a') as f:
        f.write(s + '\n')


def check_plain(b64):
    try:
        parts = base64.b64decode(b64).split(b'\0')
    except Exception:
        return False
    return len(parts) == 3 and parts[1] == b'alice' and parts[2] == b'secret'


class Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def out(self, s):
        log('S: ' + s)
        self.wfile.write(s.encode() + b'\r\n')
        self.wfile.flush()

    def line(self):
        l = self.rfile.readline(4096)
        if not l:
            raise EOFError
        t = l.decode('latin-1').rstrip('\r\n')
        log('C: ' + t)
        return t

    def handle(self):
        try:
            self.out('220 backend.test ESMTP scripted')
            while True:
                l = self.line()
                v = l.split(' ')[0].upper()
                if v == 'EHLO':
                    for x in ('250-backend.test', '250-PIPELINING',
                              '250-SIZE 10240000', '250-AUTH PLAIN LOGIN',
                              '250-8BITMIME', '250 ENHANCEDSTATUSCODES'):
                        self.out(x)
                elif v == 'AUTH':
                    self.auth(l.split(' ')[1:])
                elif v in ('MAIL', 'RCPT', 'RSET', 'NOOP', 'HELO'):
                    self.out('250 2.0.0 Ok')
                elif v == 'DATA':
                    self.out('354 go')
                    body = []
                    while True:
                        t = self.rfile.readline(8192)
                        if not t or t == b'.\r\n':
                            break
                        body.append(t)
                    count[0] += 1
                    with open(os.path.join(MSGDIR, '%d.eml' % count[0]), 'wb') as f:
                        f.writelines(body)
                    self.out('250 2.0.0 Ok: queued as SCRIPT%d' % count[0])
                elif v == 'QUIT':
                    self.out('221 2.0.0 Bye')
                    return
                else:
                    self.out('502 5.5.2 Error: command not recognized')
        except (EOFError, OSError):
            return

    def auth(self, args):
        mech = args[0].upper() if args else ''
        if mech == 'PLAIN':
            if len(args) > 1:
                resp = args[1]
            else:
                self.out('334 ')
                resp = self.line()
            ok = check_plain(resp)
        elif mech == 'LOGIN':
            self.out('334 VXNlcm5hbWU6')
            u = self.line()
            if u == '*':
                self.out('501 5.7.0 cancelled')
                return
            self.out('334 UGFzc3dvcmQ6')
            p = self.line()
            ok = (base64.b64decode(u) == b'alice' and
                  base64.b64decode(p) == b'secret')
        else:
            self.out('504 5.5.4 unsupported mechanism')
            return
        if ok:
            self.out('235 2.7.0 Authentication successful')
        else:
            self.out('535 5.7.8 Error: authentication failed')


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(('127.0.0.1', PORT), Handler).serve_forever()
