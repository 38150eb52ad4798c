"""zonedns.py -- a small authoritative-and-recursive-looking DNS server for
the SPF tests, on 127.0.0.1 (UDP and TCP on one free port), built on
python3-dnspython.

It serves zone data in the RFC 7208 test-suite form (a dict: name -> list
of records, each a one-key dict like {"A": "1.2.3.4"}, {"MX": [10, "mx"]},
{"TXT": "text"} or {"TXT": ["several", "strings"]}, {"SPF": ...},
{"CNAME": "target"}, {"PTR": "name"}, or a marker string), with the
suite's conventions:
- SPF (type 99) records are also served as TXT unless the name has TXT
  records of its own or "TXT: NONE";
- "TIMEOUT": a query for that name is not answered, unless a record of the
  asked type comes before the marker (as the suite's reference driver does);
- CNAMEs are followed inside the server and the chain is put in the answer,
  as a recursive resolver does; a CNAME loop answers SERVFAIL.
Markers beyond the suite, for hostile-DNS tests: "SERVFAIL", "REFUSED",
{"DELAY": seconds} (answer late). Names are matched case-insensitively
and may hold any byte (labels are built directly, not parsed from text).
Records are sent in the order the zone lists them (the suite's ptr-limit
test depends on it). UDP answers over 512 bytes are truncated (TC) so the
client retries on TCP.
"""
import socket, struct, threading, time

import dns.exception, dns.flags, dns.message, dns.name, dns.rcode, dns.rdata
import dns.rdataclass, dns.rdatatype, dns.rrset
import dns.rdtypes.ANY.CNAME, dns.rdtypes.ANY.MX, dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SPF, dns.rdtypes.ANY.TXT


def key(name):
    """text form used as dict key: lower case, no trailing dot"""
    return name.lower().rstrip(".")


def mkname(text):
    text = text.rstrip(".")
    labels = [l.encode("utf-8", "surrogateescape") for l in text.split(".")] if text else []
    return dns.name.Name(labels + [b""])


def qkey(name):
    return ".".join(l.decode("latin-1") for l in name.labels if l).lower()


def txt_strings(value):
    """one TXT record's strings as bytes, long strings split at 255"""
    if isinstance(value, (list, tuple)):
        parts = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in value]
    else:
        v = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts = [v[i:i + 255] for i in range(0, len(v), 255)] or [b""]
    out = []
    for p in parts:
        out.extend([p[i:i + 255] for i in range(0, len(p), 255)] or [b""])
    return out


class Zone:
    def __init__(self, zonedata):
        self.names = {}
        for name, recs in (zonedata or {}).items():
            entries = []
            has_txt = any(isinstance(r, dict) and "TXT" in r for r in recs)
            for r in recs:
                if isinstance(r, str):
                    entries.append((r, None))
                    continue
                for t, v in r.items():
                    if t == "TXT" and v == "NONE":
                        continue
                    entries.append((t, v))
                    if t == "SPF" and not has_txt:
                        entries.append(("TXT", v))
            self.names[key(name)] = entries

    def exists(self, k):
        if k in self.names:
            return True
        suffix = "." + k
        return any(n.endswith(suffix) for n in self.names)   # empty non-terminal

    def answer(self, qname, qtype):
        """(rcode, [rrsets], delay) or None for no answer at all"""
        k, owner, rrsets, seen, delay = qkey(qname), qname, [], set(), 0
        while True:
            if k in seen or len(seen) > 16:
                return dns.rcode.SERVFAIL, [], delay
            seen.add(k)
            entries = self.names.get(k)
            if entries is None:
                return (dns.rcode.NOERROR if self.exists(k) else dns.rcode.NXDOMAIN), rrsets, delay
            cname = [v for t, v in entries if t == "CNAME"]
            if cname and qtype != dns.rdatatype.CNAME:
                target = mkname(cname[0])
                rrsets.append(self.rrset(owner, "CNAME", [cname[0]]))
                owner, k = target, key(cname[0])
                continue
            values, tname = [], dns.rdatatype.to_text(qtype)
            for t, v in entries:
                if t == "TIMEOUT" and not values:
                    return None
                if t in ("SERVFAIL", "REFUSED") and not values:
                    return getattr(dns.rcode, t), rrsets, delay
                if t == "DELAY":
                    delay = float(v)
                if t == tname:
                    values.append(v)
            # one RRset per record keeps the zone's order on the wire
            rrsets.extend(self.rrset(owner, tname, [v]) for v in values)
            return dns.rcode.NOERROR, rrsets, delay

    @staticmethod
    def rrset(owner, tname, values):
        rdtype = dns.rdatatype.from_text(tname)
        rs = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)
        rs.ttl = 60
        for v in values:
            if tname in ("TXT", "SPF"):
                cls = dns.rdtypes.ANY.TXT.TXT if tname == "TXT" else dns.rdtypes.ANY.SPF.SPF
                rd = cls(dns.rdataclass.IN, rdtype, txt_strings(v))
            elif tname == "MX":
                rd = dns.rdtypes.ANY.MX.MX(dns.rdataclass.IN, rdtype, int(v[0]), mkname(v[1] or "."))
            elif tname == "CNAME":
                rd = dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, rdtype, mkname(v))
            elif tname == "PTR":
                rd = dns.rdtypes.ANY.PTR.PTR(dns.rdataclass.IN, rdtype, mkname(v))
            else:
                rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, str(v))
            rs.add(rd)
        return rs


class Server:
    """serve(zonedata) ... set_zone(other) ... stop(); .port, .queries"""

    def __init__(self, zonedata=None):
        self.zone = Zone(zonedata)
        self.queries = 0
        self.lock = threading.Lock()
        srv = self
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", port))
                break
            except OSError:
                udp.close(); tcp.close()
        tcp.listen(16)
        udp.settimeout(0.5)
        tcp.settimeout(0.5)
        self.port, self.udp, self.tcp = port, udp, tcp
        self.running = True
        self.threads = [threading.Thread(target=self.udp_loop, daemon=True),
                        threading.Thread(target=self.tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def set_zone(self, zonedata):
        with self.lock:
            self.zone = Zone(zonedata)

    def respond(self, wire, maxsize):
        try:
            q = dns.message.from_wire(wire)
        except Exception:
            return None
        with self.lock:
            self.queries += 1
            zone = self.zone
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        if not q.question:
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire()
        question = q.question[0]
        a = zone.answer(question.name, question.rdtype)
        if a is None:
            return None
        rcode, rrsets, delay = a
        if delay:
            time.sleep(delay)
        r.set_rcode(rcode)
        r.answer = rrsets
        try:
            return r.to_wire(max_size=maxsize)
        except dns.exception.TooBig:
            t = dns.message.make_response(q)
            t.flags |= dns.flags.RA | dns.flags.TC
            return t.to_wire()

    def udp_loop(self):
        while self.running:
            try:
                wire, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.udp_one, args=(wire, peer), daemon=True).start()

    def udp_one(self, wire, peer):
        out = self.respond(wire, 512)
        if out is not None:
            try:
                self.udp.sendto(out, peer)
            except OSError:
                pass

    def tcp_loop(self):
        while self.running:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.tcp_one, args=(conn,), daemon=True).start()

    def tcp_one(self, conn):
        conn.settimeout(10)
        try:
            while True:
                hdr = conn.recv(2, socket.MSG_WAITALL)
                if len(hdr) < 2:
                    return
                n = struct.unpack("!H", hdr)[0]
                wire = conn.recv(n, socket.MSG_WAITALL)
                out = self.respond(wire, 65535)
                if out is None:
                    continue
                conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            return
        finally:
            conn.close()

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(timeout=5)
        for s in (self.udp, self.tcp):
            try:
                s.close()
            except OSError:
                pass
