"""A dependency-free TensorBoard scalar writer and reader.

Event files are TFRecord files: each record is `uint64 length (LE) | masked crc32c(length) | data |
masked crc32c(data)`, where `data` is a protobuf `Event` message. Only the fields scalars need are
encoded: `wall_time` (1, double), `step` (2, int64), `file_version` (3, string) and `summary` (5,
`Summary{value (1): Value{tag (1, string), simple_value (2, float)}}`).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: crc32c rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- protobuf encoding

def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64 values take ten bytes, as two's complement
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _encode_event(wall_time: float, step: int, *, file_version: str | None = None,
                  tag: str | None = None, value: float | None = None) -> bytes:
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    else:
        assert tag is not None and value is not None
        summary_value = _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value)
        msg += _field_bytes(5, _field_bytes(1, summary_value))
    return msg


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


# ----------------------------------------------------------------------------- protobuf decoding

def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of a message: ints for varints, raw bytes for the other wire types."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            out.append((number, value))
            continue
        if wire == 1:
            size = 8
        elif wire == 5:
            size = 4
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos + size > len(buf):
            raise ValueError("truncated protobuf field")
        out.append((number, buf[pos:pos + size]))
        pos += size
    return out


def _decode_scalars(event: bytes) -> list[tuple[str, float, int]]:
    step = 0
    summaries: list[bytes] = []
    for number, value in _fields(event):
        if number == 2 and isinstance(value, int):
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 5 and isinstance(value, bytes):
            summaries.append(value)
    scalars = []
    for summary in summaries:
        for number, value in _fields(summary):
            if number != 1 or not isinstance(value, bytes):
                continue
            tag, simple = None, None
            for vnum, vval in _fields(value):
                if vnum == 1 and isinstance(vval, bytes):
                    tag = vval.decode()
                elif vnum == 2 and isinstance(vval, bytes) and len(vval) == 4:
                    simple = struct.unpack("<f", vval)[0]
            if tag is not None and simple is not None:
                scalars.append((tag, simple, step))
    return scalars


# ----------------------------------------------------------------------------- public API

class ScalarWriter:
    """Appends scalar summaries to a new event file `events.out.tfevents.<time>.<hostname>` in `logdir`.

    Records wait in memory until `flush`, which appends them in one write: a process killed at any moment leaves
    whole records."""

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        base = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self.path = self.logdir / base
        n = 0
        while True:  # two writers started in the same second must not share a file
            try:
                self._file: BinaryIO | None = open(self.path, "xb", buffering=0)
                break
            except FileExistsError:
                n += 1
                self.path = self.logdir / f"{base}.{n}"
        self._pending = bytearray(_record(_encode_event(time.time(), 0, file_version="brain.Event:2")))
        self.flush()

    def add_scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        """Record `value` for `tag` at `step` (stored as float32, as TensorBoard does)."""
        if self._file is None:
            raise ValueError("ScalarWriter is closed")
        wall_time = time.time() if wall_time is None else wall_time
        self._pending += _record(_encode_event(float(wall_time), int(step), tag=tag, value=float(value)))

    def flush(self) -> None:
        """Append the records added since the last flush, in one write."""
        if self._file is not None and self._pending:
            data = memoryview(bytes(self._pending))
            try:
                while data:  # one write, unless the system takes only part of it
                    data = data[self._file.write(data) or 0:]
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(self.path)) from None
            self._pending.clear()

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def abandon(self) -> None:
        """Close without writing what is pending (after an error: a full disk must not fail the close too)."""
        self._pending.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ScalarWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_scalars(path: str | os.PathLike) -> list[tuple[str, float, int]]:
    """All `(tag, value, step)` scalars of an event file, in file order; ValueError if a record is damaged."""
    data = Path(path).read_bytes()
    pos = 0
    scalars: list[tuple[str, float, int]] = []
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {pos}")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"{path}: bad length checksum at byte {pos}")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"{path}: truncated record at byte {pos}")
        payload = data[start:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if data_crc != masked_crc32c(payload):
            raise ValueError(f"{path}: bad data checksum at byte {pos}")
        scalars.extend(_decode_scalars(payload))
        pos = end + 4
    return scalars
