"""The tests' own reader of a queue entry (queue/todo/ID, src/queue/entry.c,
mxgate-queue(8)): written from the format's description, so a test checks
the files against the document and not against the C code that wrote them.
"""
import re
import zlib

HEADER = 64
HEADER_RE = re.compile(rb"MXGQ1 (\d+) (\d+) ([0-9a-f]{8}) (\d+) *\n")
RECORD_RE = re.compile(rb"S (\d+) ([dpb]) (\d+) (-?\d+) ?(.*)")
WARNED_RE = re.compile(rb"W (\d+)")


class NotWhole(Exception):
    """the file is not a whole, sealed entry"""


class Entry:
    def __init__(self, data):
        m = HEADER_RE.fullmatch(data[:HEADER])
        if len(data) < HEADER or not m:
            raise NotWhole(f"header {data[:HEADER]!r}")
        msglen, envlen, crc = int(m.group(1)), int(m.group(2)), int(m.group(3), 16)
        end = HEADER + msglen + envlen
        if len(data) < end:
            raise NotWhole(f"{len(data)} bytes, the header says {end}")
        self.message = data[HEADER:HEADER + msglen]
        self.envelope = data[HEADER + msglen:end]
        if zlib.crc32(self.message + self.envelope) != crc:
            raise NotWhole("crc")
        fields = self.envelope.split(b"\0")
        assert self.envelope.endswith(b"\0\0") and fields[0].startswith(b"F"), self.envelope
        self.sender = fields[0][1:].decode("latin-1")
        self.rcpts = [f[1:].decode("latin-1") for f in fields[1:-2]]
        assert all(f.startswith(b"T") for f in fields[1:-2]), self.envelope
        self.states = {i: ("p", 0, 0, "") for i in range(len(self.rcpts))}
        self.records = data[end:]
        self.warned_at = 0                    # when the delay warning was queued
        for line in self.records.split(b"\n")[:-1]:
            w = WARNED_RE.fullmatch(line)
            if w:
                self.warned_at = int(w.group(1))
                continue
            r = RECORD_RE.fullmatch(line)
            assert r, f"bad state record {line!r}"
            self.states[int(r.group(1))] = (r.group(2).decode(), int(r.group(3)), int(r.group(4)),
                                            r.group(5).decode("latin-1"))

    def pending(self):
        """the recipients still to be delivered, in envelope order"""
        return [a for i, a in enumerate(self.rcpts) if self.states[i][0] == "p"]


def read(path):
    with open(path, "rb") as fh:
        return Entry(fh.read())
