#!/usr/bin/python3
"""smtpc.py - a scripted SMTP client for the proxy suites.

usage: smtpc.py PORT [--ip SRC] [--implicit-tls] [--no-banner] STEP...

Steps (run in order, the output is one line per event):
  send:TEXT   send TEXT after Python-escape decoding ("\\r\\n", "\\x00")
  reply       read one complete reply; print its lines
  tls         TLS handshake (no certificate check); print "TLS version"
  tls:1.2     the same, offering TLS 1.2 at most
  sleep:S     wait S seconds
  drain       read until the server closes (10 s at most); print lines
The banner is read first (unless --no-banner). Errors print "EOF",
"TIMEOUT" or "TLS-ERROR ..." and end the script with status 0; every
wait is bounded.
"""
import socket
import ssl
import sys
import time


def main():
    args = sys.argv[1:]
    port = int(args.pop(0))
    ip, implicit, banner = '127.0.0.6', False, True
    while args and args[0].startswith('--'):
        o = args.pop(0)
        if o == '--ip':
            ip = args.pop(0)
        elif o == '--implicit-tls':
            implicit = True
        elif o == '--no-banner':
            banner = False
    s = socket.socket()
    s.settimeout(10)
    s.bind((ip, 0))
    s.connect(('127.0.0.1', port))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    buf = [b'']

    def recv():
        c = s.recv(65536)
        if not c:
            raise EOFError
        buf[0] += c

    def reply():
        lines = []
        while True:
            while b'\r\n' not in buf[0]:
                recv()
            line, buf[0] = buf[0].split(b'\r\n', 1)
            t = line.decode('latin-1')
            lines.append(t)
            if len(t) < 4 or t[3] != '-':
                return lines

    try:
        if implicit:
            s = ctx.wrap_socket(s)
            print('TLS', s.version())
        if banner:
            for l in reply():
                print(l)
        for st in args:
            if st.startswith('send:'):
                s.sendall(st[5:].encode('latin-1').decode('unicode_escape')
                          .encode('latin-1'))
            elif st == 'reply':
                for l in reply():
                    print(l)
            elif st in ('tls', 'tls:1.2'):
                if buf[0]:
                    print('UNREAD', repr(buf[0]))
                if st == 'tls:1.2':
                    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                s = ctx.wrap_socket(s)
                print('TLS', s.version())
            elif st.startswith('sleep:'):
                time.sleep(float(st[6:]))
            elif st == 'drain':
                end = time.time() + 10
                while time.time() < end:
                    try:
                        recv()
                    except (EOFError, OSError):
                        break  # closed, or reset with our data unread
                for l in buf[0].decode('latin-1').split('\r\n'):
                    if l:
                        print(l)
                buf[0] = b''
                print('EOF')
                return
    except EOFError:
        print('EOF')
    except socket.timeout:
        print('TIMEOUT')
    except ssl.SSLError as e:
        print('TLS-ERROR', e.reason)
    except OSError as e:
        print('OSERROR', e.errno)


main()
