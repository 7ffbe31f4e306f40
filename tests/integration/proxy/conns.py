#!/usr/bin/python3
"""conns.py - connections held open at once, for the connection limits.

usage: conns.py PORT STEP...

Steps, in order; every connection stays open until the end unless the
step says otherwise; one output line per step, "LABEL FIRST-LINE":
  hold:IP          connect from IP, print the greeting's first line
  try:IP           the same, then close at once
  quiet:IP         connect from IP, say nothing: print WAITING when no
                   greeting comes within 1.5 s (a trusted upstream gets
                   none before its PROXY header), else its first line
  pp:IP:CLIENT     connect from IP, send a PROXY v1 header naming CLIENT,
                   print the reply's first line (labelled CLIENT)
A closed connection prints CLOSED, an error ERR and the reason. Every
wait is bounded (10 s a connection, 1.5 s for quiet).
"""
import socket
import sys


def first_line(s, label):
    try:
        data = s.recv(4096).decode('latin-1')
        print(label, data.split('\r\n')[0][:40] if data else 'CLOSED')
    except socket.timeout:
        print(label, 'WAITING')
    except OSError as e:
        print(label, 'ERR', e)


def main():
    port = int(sys.argv[1])
    held = []
    for step in sys.argv[2:]:
        kind, _, rest = step.partition(':')
        ip, _, client = rest.partition(':')
        s = socket.socket()
        s.settimeout(1.5 if kind == 'quiet' else 10)
        s.bind((ip, 0))
        s.connect(('127.0.0.1', port))
        if kind == 'pp':
            s.sendall(('PROXY TCP4 %s 127.0.0.1 4444 25\r\n' % client).encode())
        first_line(s, client if kind == 'pp' else ip)
        if kind == 'try':
            s.close()
        else:
            held.append(s)
    for s in held:
        s.close()


if __name__ == '__main__':
    main()
