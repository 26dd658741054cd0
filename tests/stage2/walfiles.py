# walfiles.py - reads WAL segments the way the server's recovery does, so
# tests can compute exactly which records lie before a cut or a flipped byte.
# Frame: u32 big-endian payload length, u32 big-endian CRC32C, payload.
import os
import struct


def segments(data_dir):
    """Segment file paths in index order (base file excluded)."""
    wal = os.path.join(data_dir, "wal")
    names = sorted(n for n in os.listdir(wal) if n.endswith(".log") and not n.startswith("base-"))
    return [os.path.join(wal, n) for n in names]


def record_ends(path):
    """Byte offsets where each complete record of the file ends. The last
    segment is preallocated: a record boundary followed only by zero bytes
    is the end of the log."""
    with open(path, "rb") as f:
        data = f.read()
    nonzero_end = len(data.rstrip(b"\0"))  # from here on, only zeros
    ends, off = [], 0
    while off + 8 <= len(data) and off < nonzero_end:
        (length,) = struct.unpack(">I", data[off:off + 4])
        if off + 8 + length > len(data):
            break
        off += 8 + length
        ends.append(off)
    return ends


def data_end(path):
    """Where the records of a segment end (its preallocated zeros follow)."""
    ends = record_ends(path)
    return ends[-1] if ends else 0
