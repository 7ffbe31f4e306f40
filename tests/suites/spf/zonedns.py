"""zonedns.py - a loopback DNS server for the RFC 7208 test suite.

Serves the zonedata of one YAML document of the suite at a time (the
driver switches documents with ZoneServer.load()), over UDP and TCP on
127.0.0.1 and a free port. The suite's conventions:

  name: [ {A: addr}, {AAAA: addr}, {MX: [pref, name]}, {PTR: name},
          {CNAME: name}, {TXT: text | [strings]}, {SPF: text | [strings]},
          TIMEOUT, {TXT: NONE} ]

- TIMEOUT: the server never answers for that name, except for the
  types the name has records of ("TXT present, SPF lookup times out").
- SPF entries are also served as TXT when the name has no TXT entry of
  its own (RFC 7208 dropped type SPF; drivers duplicate them), but not
  when the name has "TXT: NONE".
- A string is one TXT character-string (cut into 255-octet pieces); a
  list is several; an empty list is a TXT record with no strings. Text
  is encoded as Latin-1 when it can be (the suite writes octets as
  \\xHH escapes), else UTF-8.
- Names are case-insensitive. A name without entries but with entries
  below it is an empty non-terminal (NODATA); others are NXDOMAIN.
  Negative answers carry an SOA so that resolvers cache them properly.
- CNAMEs are answered with the chain followed inside the data (8 hops).

Run standalone for manual tests: zonedns.py YAML INDEX [PORT]
(needs /usr/bin/python3 with python3-dnspython and python3-yaml).
"""
import socket
import socketserver
import struct
import sys
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 60
MAX_CNAME = 8


def _octets(s):
    """Text from the YAML document as the octets the suite means."""
    if isinstance(s, bytes):
        return s
    s = str(s)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def _txt_rdata(rdtype, value):
    """One TXT/SPF rdata (wire form) from a string or a list of strings."""
    strings = value if isinstance(value, list) else [value]
    wire = b""
    for s in strings:
        o = _octets(s)
        pieces = [o[i:i + 255] for i in range(0, len(o), 255)] or [b""]
        for p in pieces:
            wire += bytes([len(p)]) + p
    return dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0,
                               len(wire))


def _name(s):
    return dns.name.from_text(_octets(s).decode("latin-1").rstrip(".")
                              + ".")


class Zone:
    """One document's zonedata: name -> {rdtype: [rdata]}; TIMEOUT set."""

    def __init__(self, zonedata):
        self.records = {}
        self.timeout = set()
        self.names = set()
        for owner, entries in (zonedata or {}).items():
            key = self.key(owner)
            self.names.add(key)
            spf, has_txt, txt_none = [], False, False
            for e in entries or []:
                if e == "TIMEOUT":
                    self.timeout.add(key)
                    continue
                for t, v in e.items():
                    if t == "TXT" and v == "NONE":
                        txt_none = True
                    elif t == "SPF":
                        spf.append(v)
                        self.add(key, dns.rdatatype.SPF,
                                 _txt_rdata(dns.rdatatype.SPF, v))
                    elif t == "TXT":
                        has_txt = True
                        self.add(key, dns.rdatatype.TXT,
                                 _txt_rdata(dns.rdatatype.TXT, v))
                    else:
                        self.add(key, dns.rdatatype.from_text(t),
                                 self.rdata(t, v))
            if spf and not has_txt and not txt_none:
                for v in spf:
                    self.add(key, dns.rdatatype.TXT,
                             _txt_rdata(dns.rdatatype.TXT, v))

    @staticmethod
    def key(name):
        if isinstance(name, dns.name.Name):
            # The raw label octets: to_text() would escape spaces as \032.
            return b".".join(l for l in name.labels if l).decode(
                "latin-1").lower()
        return _octets(name).decode("latin-1").rstrip(".").lower()

    @staticmethod
    def rdata(t, v):
        if t == "MX":
            text = "%d %s" % (int(v[0]), _name(v[1]).to_text())
        elif t in ("PTR", "CNAME"):
            text = _name(v).to_text()
        else:
            text = str(v)
        return dns.rdata.from_text(dns.rdataclass.IN,
                                   dns.rdatatype.from_text(t), text)

    def add(self, key, rdtype, rd):
        self.records.setdefault(key, {}).setdefault(rdtype, []).append(rd)

    def exists(self, key):
        if key in self.names:
            return True
        suffix = "." + key
        return any(n.endswith(suffix) for n in self.names)


class ZoneServer:
    """UDP and TCP servers on 127.0.0.1:port answering from one Zone."""

    def __init__(self, port=0):
        self.zone = Zone({})
        self.lock = threading.Lock()
        self.queries = 0
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                out = outer.answer(data, 1232)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(5)
                try:
                    while True:
                        hdr = self._read(2)
                        if hdr is None:
                            return
                        data = self._read(struct.unpack("!H", hdr)[0])
                        if data is None:
                            return
                        out = outer.answer(data, 65535)
                        if out is not None:
                            self.request.sendall(
                                struct.pack("!H", len(out)) + out)
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

        class UdpServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
            daemon_threads = True

        class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        for _ in range(20):
            self.udp = UdpServer(("127.0.0.1", port), Udp)
            self.port = self.udp.server_address[1]
            try:
                self.tcp = TcpServer(("127.0.0.1", self.port), Tcp)
                break
            except OSError:
                self.udp.server_close()
                if port:
                    raise
        else:
            raise OSError("no free port for UDP and TCP")
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True)
                        for s in (self.udp, self.tcp)]
        for t in self.threads:
            t.start()

    def load(self, zonedata):
        zone = Zone(zonedata)
        with self.lock:
            self.zone = zone

    def close(self):
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()

    def answer(self, data, maxsize):
        """Wire bytes of the answer to data, or None to stay silent."""
        try:
            q = dns.message.from_wire(data)
        except Exception:
            return None
        if len(q.question) != 1:
            return None
        with self.lock:
            zone = self.zone
            self.queries += 1
        qn = q.question[0].name
        qt = q.question[0].rdtype
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA | dns.flags.RA
        name, key = qn, Zone.key(qn)
        for _ in range(MAX_CNAME + 1):
            recs = zone.records.get(key, {})
            if key in zone.timeout and qt not in recs:
                return None
            if qt in recs:
                rrs = dns.rrset.RRset(name, dns.rdataclass.IN, qt)
                for rd in recs[qt]:
                    rrs.add(rd, TTL)
                r.answer.append(rrs)
                break
            cname = recs.get(dns.rdatatype.CNAME)
            if not cname or qt == dns.rdatatype.CNAME:
                if not recs and not zone.exists(key) and not r.answer:
                    r.set_rcode(dns.rcode.NXDOMAIN)
                if not r.answer or r.rcode() == dns.rcode.NXDOMAIN:
                    self.soa(r, name)
                break
            rrs = dns.rrset.RRset(name, dns.rdataclass.IN,
                                  dns.rdatatype.CNAME)
            rrs.add(cname[0], TTL)
            r.answer.append(rrs)
            name = cname[0].target
            key = Zone.key(name)
        try:
            out = r.to_wire(max_size=maxsize)
        except dns.exception.TooBig:
            r = dns.message.make_response(q)
            r.flags |= dns.flags.AA | dns.flags.RA | dns.flags.TC
            out = r.to_wire()
        return out

    @staticmethod
    def soa(r, name):
        apex = name.split(3)[1] if len(name) > 3 else name
        soa = dns.rrset.from_text(apex, TTL, "IN", "SOA",
                                  "ns.%s hostmaster.%s 1 3600 600 86400 %d"
                                  % (apex.to_text(), apex.to_text(), TTL))
        r.authority.append(soa)


def main():
    import time
    import yaml
    docs = list(yaml.safe_load_all(open(sys.argv[1], "rb")))
    srv = ZoneServer(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    srv.load(docs[int(sys.argv[2])].get("zonedata"))
    print(srv.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.close()


if __name__ == "__main__":
    main()
