"""A Python model of the index format (docs/FORMAT.md, 1.x and 2.0), for building hostile indexes.

Independent of the C++ codec on purpose: the tests use it to write indexes
that pass the checksum but lie about everything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAGIC = b"TFDCIDX\n"


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), as in the index and shards."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def with_crc(body: bytes) -> bytes:
    """`body` followed by its CRC32C: an index whose checksum holds."""
    return body + struct.pack("<I", crc32c(body))


@dataclass
class Tensor:
    dtype: int
    encoding: int
    shape: list[int]
    shard: int
    offset: int
    length: int
    crc: int
    stream: int = 0  # format 2.0: 0 the own shards, j >= 1 referenced stream j - 1


@dataclass
class Entry:
    type_name_id: int
    metadata: bytes
    tensors: list[Tensor] = field(default_factory=list)


@dataclass
class Component:
    """One component of the element spec (format 1.1): rank -1 is unknown."""

    dtype: int
    rank: int
    dims: list[int] = field(default_factory=list)


@dataclass
class Index:
    major: int
    minor: int
    tf_version: bytes
    library_version: bytes
    nonce: int
    created: int
    total_bytes: int
    shards: list[tuple[bytes, int, int]]
    type_names: list[bytes]
    entries: list[Entry]
    # Format 2.0: per referenced stream, its shards as (name, size).
    streams: list[list[tuple[bytes, int]]] = field(default_factory=list)
    # The element spec section (format >= 1.1) is written when `spec_section`:
    # its flag byte (`spec_flag`, 1 when there is an element spec), then the
    # components.
    spec_section: bool = False
    spec_flag: int = 0
    element_spec: list[Component] | None = None
    trailer: bytes = b""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def bytes(self) -> bytes:
        n = self.take("<I")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value


def decode(data: bytes) -> Index:
    """Parses a well-formed index (no validation)."""
    assert data[:8] == MAGIC
    r = _Reader(data[:-4])
    r.pos = 8
    index = Index(r.take("<I"), r.take("<I"), r.bytes(), r.bytes(), r.take("<Q"), r.take("<q"),
                  r.take("<Q"), [], [], [])
    for _ in range(r.take("<I")):
        index.shards.append((r.bytes(), r.take("<Q"), r.take("<I")))
    if index.major >= 2:
        for _ in range(r.take("<I")):
            index.streams.append([(r.bytes(), r.take("<Q")) for _ in range(r.take("<I"))])
    index.type_names = [r.bytes() for _ in range(r.take("<I"))]
    for _ in range(r.take("<Q")):
        entry = Entry(r.take("<I"), r.bytes())
        for _ in range(r.take("<I")):
            dtype, encoding, rank = r.take("<I"), r.take("<B"), r.take("<B")
            shape = [r.take("<q") for _ in range(rank)]
            stream = r.take("<I") if index.major >= 2 else 0
            entry.tensors.append(Tensor(dtype, encoding, shape, r.take("<I"), r.take("<Q"),
                                        r.take("<Q"), r.take("<I"), stream))
        index.entries.append(entry)
    if index.major >= 2 or index.minor >= 1:
        index.spec_section, index.spec_flag = True, r.take("<B")
        if index.spec_flag == 1:
            index.element_spec = []
            for _ in range(r.take("<I")):
                dtype, rank = r.take("<I"), r.take("<i")
                index.element_spec.append(
                    Component(dtype, rank, [r.take("<q") for _ in range(max(rank, 0))]))
    index.trailer = r.data[r.pos :]
    return index


def _b(value: bytes) -> bytes:
    return struct.pack("<I", len(value)) + value


def encode(index: Index, *, counts: dict | None = None) -> bytes:
    """Serializes `index` with a correct CRC; `counts` may override stored counts."""
    counts = counts or {}
    out = [MAGIC, struct.pack("<II", index.major, index.minor), _b(index.tf_version),
           _b(index.library_version),
           struct.pack("<QqQ", index.nonce, index.created, index.total_bytes),
           struct.pack("<I", counts.get("shards", len(index.shards)) & 0xFFFFFFFF)]
    for name, size, crc in index.shards:
        out += [_b(name), struct.pack("<QI", size & (2**64 - 1), crc)]
    if index.major >= 2:
        out.append(struct.pack("<I", counts.get("streams", len(index.streams)) & 0xFFFFFFFF))
        for stream in index.streams:
            out.append(struct.pack("<I", len(stream)))
            out += [_b(name) + struct.pack("<Q", size & (2**64 - 1)) for name, size in stream]
    out.append(struct.pack("<I", counts.get("type_names", len(index.type_names)) & 0xFFFFFFFF))
    out += [_b(name) for name in index.type_names]
    out.append(struct.pack("<Q", counts.get("entries", len(index.entries)) & (2**64 - 1)))
    for entry in index.entries:
        out += [struct.pack("<I", entry.type_name_id), _b(entry.metadata),
                struct.pack("<I", len(entry.tensors))]
        for t in entry.tensors:
            out.append(struct.pack("<IBB", t.dtype & 0xFFFFFFFF, t.encoding & 0xFF,
                                   len(t.shape) & 0xFF))
            out += [struct.pack("<q", d) for d in t.shape]
            if index.major >= 2:
                out.append(struct.pack("<I", t.stream & 0xFFFFFFFF))
            out.append(struct.pack("<IQQI", t.shard & 0xFFFFFFFF, t.offset & (2**64 - 1),
                                   t.length & (2**64 - 1), t.crc & 0xFFFFFFFF))
    if index.spec_section:
        out.append(struct.pack("<B", index.spec_flag & 0xFF))
        if index.element_spec is not None:
            out.append(struct.pack("<I", counts.get("components", len(index.element_spec))
                                   & 0xFFFFFFFF))
            for c in index.element_spec:
                out.append(struct.pack("<Ii", c.dtype & 0xFFFFFFFF,
                                       max(-(2**31), min(2**31 - 1, c.rank))))
                out += [struct.pack("<q", d) for d in c.dims]
    out.append(index.trailer)
    return with_crc(b"".join(out))
