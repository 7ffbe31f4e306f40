#!/usr/bin/python3
"""faultdns.py - a DNS server that misbehaves on purpose, for tests.

    faultdns.py PORT

Listens on 127.0.0.1:PORT (UDP and TCP), authoritative for fault.test.
Each behaviour applies to its name and to every name below it, so a test
can put e.g. a DMARC or DKIM lookup under it (_dmarc.timeout.fault.test):

  timeout.fault.test    never answers (UDP dropped, TCP left silent)
  servfail.fault.test   rcode SERVFAIL
  refused.fault.test    rcode REFUSED
  tc.fault.test         UDP: empty answer with TC set; TCP: the connection
                        is closed without an answer
  huge.fault.test       TXT: 300 records (over UDP truncated, full on TCP)
  many.fault.test       TXT: 200 records (over UDP truncated, full on TCP)
  garbage.fault.test    answers random bytes
  badrdata.fault.test   A: one record with a 5-octet rdata
  slow.fault.test       answers A 192.0.2.1 after 0.3 seconds
  fault.test            SOA and NS at the apex; other names: NXDOMAIN

Used by tests/dns/dnsenv; stopped by its PID (SIGTERM).
"""
import os
import socketserver
import struct
import sys
import threading
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.exception

ZONE = dns.name.from_text("fault.test.")
TCP_IDLE = 30.0


def behaviour(qname):
    """The first label below fault.test, or None for the apex/others."""
    if not qname.is_subdomain(ZONE) or qname == ZONE:
        return None
    rel = qname.relativize(ZONE)
    return rel.labels[-1].decode("ascii", "replace").lower()


def txt_records(q, count):
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    qn = q.question[0].name
    texts = ['"record %04d padding padding padding"' % i for i in range(count)]
    r.answer.append(dns.rrset.from_text_list(qn, 60, "IN", "TXT", texts))
    return r


def answer(q, tcp):
    """Wire bytes to send, or None for silence."""
    qn = q.question[0].name
    qt = q.question[0].rdtype
    b = behaviour(qn)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA
    if b == "timeout":
        return None
    if b == "slow":
        time.sleep(0.3)
        if qt == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qn, 60, "IN", "A",
                                                "192.0.2.1"))
    elif b == "servfail":
        r.set_rcode(dns.rcode.SERVFAIL)
        r.flags &= ~dns.flags.AA
    elif b == "refused":
        r.set_rcode(dns.rcode.REFUSED)
        r.flags &= ~dns.flags.AA
    elif b == "tc":
        if tcp:
            return b""      # close without an answer
        r.flags |= dns.flags.TC
    elif b in ("huge", "many"):
        if qt == dns.rdatatype.TXT:
            r = txt_records(q, 300 if b == "huge" else 200)
    elif b == "garbage":
        return os.urandom(37)
    elif b == "badrdata":
        if qt == dns.rdatatype.A:
            r.use_edns(False)       # so the answer can go at the end
            wire = bytearray(r.to_wire())
            wire[6:8] = struct.pack("!H", 1)            # ANCOUNT
            wire += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 5)
            wire += b"\xc0\x00\x02\x01\x07"
            return bytes(wire)
    elif qn == ZONE:
        if qt == dns.rdatatype.SOA:
            r.answer.append(dns.rrset.from_text(
                qn, 60, "IN", "SOA",
                "ns.fault.test. hostmaster.fault.test. 1 60 60 60 60"))
        elif qt == dns.rdatatype.NS:
            r.answer.append(dns.rrset.from_text(qn, 60, "IN", "NS",
                                                "ns.fault.test."))
    elif qn.is_subdomain(ZONE):
        r.set_rcode(dns.rcode.NXDOMAIN)
    else:
        r.set_rcode(dns.rcode.REFUSED)
        r.flags &= ~dns.flags.AA
    if tcp:
        return r.to_wire(max_size=65535)
    try:
        return r.to_wire(max_size=q.payload if q.edns >= 0 else 512)
    except dns.exception.TooBig:
        t = dns.message.make_response(q)
        t.flags |= dns.flags.AA | dns.flags.TC
        return t.to_wire()


def parse(data):
    try:
        q = dns.message.from_wire(data)
    except Exception:       # a bad query: ignore it
        return None
    return q if q.question else None


class UDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        q = parse(data)
        if q is None:
            return
        out = answer(q, False)
        if out:
            sock.sendto(out, self.client_address)


class TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(TCP_IDLE)
        try:
            while True:
                hdr = self._read(2)
                if hdr is None:
                    return
                data = self._read(struct.unpack("!H", hdr)[0])
                q = parse(data) if data else None
                if q is None:
                    return
                out = answer(q, True)
                if out is None:             # stay silent until idle
                    time.sleep(TCP_IDLE)
                    return
                if out == b"":
                    return
                self.request.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            return

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


class UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True


class TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: faultdns.py PORT")
    port = int(sys.argv[1])
    udp = UDPServer(("127.0.0.1", port), UDPHandler)
    tcp = TCPServer(("127.0.0.1", port), TCPHandler)
    for srv in (udp, tcp):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("faultdns listening on 127.0.0.1:%d" % port, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
