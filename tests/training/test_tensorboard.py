import re
import socket
import struct

import numpy as np
import pytest

from stylegan.training.tensorboard import ScalarWriter, crc32c, masked_crc32c, read_scalars


def test_crc32c_known_vectors():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert masked_crc32c(b"") == 0xA282EAD8


def test_round_trip(tmp_path):
    values = [("Loss/G", 1.5, 0), ("Loss/D", -0.25, 0), ("Loss/G", 3.1, 1000), ("Metrics/x", 1e-3, 2**40),
              ("neg/step", 7.0, -5)]
    with ScalarWriter(tmp_path / "logs") as w:
        for tag, value, step in values:
            w.add_scalar(tag, value, step, wall_time=123.5)
    files = list((tmp_path / "logs").iterdir())
    assert len(files) == 1
    got = read_scalars(files[0])
    assert [(t, s) for t, _, s in got] == [(t, s) for t, _, s in values]
    np.testing.assert_allclose([v for _, v, _ in got], np.float32([v for _, v, _ in values]))


def test_file_name_and_version_record(tmp_path):
    w = ScalarWriter(tmp_path)
    w.add_scalar("a", 1.0, 1)
    w.close()
    w.close()  # idempotent
    assert re.fullmatch(rf"events\.out\.tfevents\.\d+\.{re.escape(socket.gethostname())}", w.path.name)
    data = w.path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    first = data[12:12 + length]
    assert b"\x1a\x0dbrain.Event:2" in first
    assert read_scalars(w.path) == [("a", 1.0, 1)]
    with pytest.raises(ValueError):
        w.add_scalar("a", 2.0, 2)


def test_two_writers_same_dir(tmp_path):
    with ScalarWriter(tmp_path) as a, ScalarWriter(tmp_path) as b:
        a.add_scalar("x", 1.0, 0)
        b.add_scalar("y", 2.0, 0)
    assert a.path != b.path
    assert read_scalars(a.path) == [("x", 1.0, 0)] and read_scalars(b.path) == [("y", 2.0, 0)]


@pytest.mark.parametrize("where", ["length", "data", "truncate"])
def test_corruption_raises(tmp_path, where):
    with ScalarWriter(tmp_path) as w:
        w.add_scalar("tag", 0.5, 3)
    data = bytearray(w.path.read_bytes())
    if where == "truncate":
        data = data[:-2]
    else:
        pos = -10 if where == "data" else len(data) - 30  # in the last record's payload / header
        data[pos] ^= 0x01
    w.path.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        read_scalars(w.path)
