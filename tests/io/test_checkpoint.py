"""Native checkpoints: safetensors + JSON config, atomic writes, clear errors."""

from __future__ import annotations

import errno
import json
import os
import tempfile

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from stylegan import Network, load_network
from stylegan.io.checkpoint import atomic_write_bytes, process_umask, read_checkpoint, temp_file_beside
from stylegan.io.load import NetworkLoadError
from stylegan.models import Discriminator, Generator
from stylegan.training.presets import network_preset


def _tiny_network(c_dim: int = 0) -> Network:
    torch.manual_seed(0)
    g_cfg, d_cfg = network_preset("sg2-32", c_dim=c_dim)
    G, D = Generator(g_cfg), Discriminator(d_cfg)
    for p in list(G.parameters()) + list(D.parameters()):
        p.data.add_(torch.randn_like(p) * 0.1)
    G.mapping.w_avg.normal_()
    return Network(G_ema=G, D=D)


@pytest.mark.parametrize("c_dim", [0, 5])
def test_round_trip_is_exact(tmp_path, c_dim):
    net = _tiny_network(c_dim)
    path = tmp_path / "net.safetensors"
    net.save(path)
    back = load_network(path)
    assert back.source_format == "native" and back.G is None
    for name in ("G_ema", "D"):
        a, b = getattr(net, name).state_dict(), getattr(back, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert back.G_ema.config == net.G_ema.config and back.D.config == net.D.config
    z = torch.randn(4, 64)
    c = torch.eye(5)[:4] if c_dim else None
    torch.testing.assert_close(back.G_ema(z, c, noise_mode="const"), net.G_ema.eval()(z, c, noise_mode="const"), rtol=0, atol=0)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    atomic_write_bytes(path, b"old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert process_umask() == mask
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    _tiny_network().save(tmp_path / "net.safetensors")
    tmp = temp_file_beside(tmp_path / "video.mp4", suffix=".mp4")
    for path in (tmp_path / "a.bin", tmp_path / "net.safetensors", tmp):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, (path.name, oct(path.stat().st_mode))
    assert tmp.parent == tmp_path and tmp.name.startswith(".video.mp4.") and tmp.suffix == ".mp4"


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "net.safetensors"
    _tiny_network().save(path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(NetworkLoadError) as e:
        load_network(path)
    assert str(e.value).startswith(str(path))


def test_foreign_safetensors_is_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, path)
    with pytest.raises(NetworkLoadError, match="not a stylegan checkpoint"):
        load_network(path)


def test_weights_that_do_not_fit_name_the_tensors(tmp_path):
    from stylegan.io.checkpoint import read_checkpoint, save_checkpoint

    path = tmp_path / "net.safetensors"
    _tiny_network().save(path)
    nets, extra = read_checkpoint(path)
    spec, state = nets["G_ema"]
    state["synthesis.b8.conv0.weight"] = torch.zeros(1, 2, 3, 3)
    del state["mapping.fc1.bias"]
    save_checkpoint(path, {"G_ema": (spec, state)})
    with pytest.raises(NetworkLoadError, match=r"missing mapping\.fc1\.bias.*shape mismatch synthesis\.b8\.conv0\.weight"):
        load_network(path)


def test_missing_file(tmp_path):
    with pytest.raises(NetworkLoadError, match="no such file"):
        load_network(tmp_path / "nope.pkl")


def test_native_file_whose_header_length_starts_with_a_pickle_byte(tmp_path):
    # The 8-byte header length of a safetensors file can begin with 0x80, the first byte of a pickle.
    g_cfg, _ = network_preset("sg2-32")
    G = Generator(g_cfg)
    path = tmp_path / "net.safetensors"
    for pad in range(256):
        Network(G_ema=G, extra={"pad": "x" * pad}).save(path)
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length starting with 0x80")
    assert load_network(path).G_ema is not None


@pytest.mark.parametrize("where, code", [("fsync", errno.ENOSPC), ("mkstemp", errno.EROFS)])
def test_write_errors_name_the_file_not_the_temporary(tmp_path, monkeypatch, where, code):
    path = tmp_path / "seed0001.png"
    atomic_write_bytes(path, b"old")

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / ".seed0001.png.abcd1234.tmp"))

    monkeypatch.setattr(os if where == "fsync" else tempfile, where, fail)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(path, b"new")
    assert (e.value.errno, e.value.strerror, e.value.filename) == (code, os.strerror(code), str(path))
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["seed0001.png"]


def test_damaged_checkpoints_fail_their_checksum(tmp_path):
    net = _tiny_network()
    path = tmp_path / "net.safetensors"
    net.save(path)
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    damaged = {
        "tensor byte": data[:-100] + bytes([data[-100] ^ 1]) + data[-99:],
        "metadata digit": data.replace(b'\\"img_resolution\\": 32', b'\\"img_resolution\\": 33', 1),
    }
    assert damaged["metadata digit"] != data and damaged["metadata digit"][:header_end] != data[:header_end]
    for what, content in damaged.items():
        bad = tmp_path / f"{what}.safetensors"
        bad.write_bytes(content)
        with pytest.raises(NetworkLoadError, match="does not match its checksum"):
            load_network(bad)

    nets, extra = read_checkpoint(path)  # written before checksums: still read (nothing to check)
    meta = {"format": "stylegan", "format_version": "1", "networks": json.dumps({k: v[0] for k, v in nets.items()}), "extra": "{}"}
    old = tmp_path / "old.safetensors"
    old.write_bytes(safetensors_bytes({f"{k}.{n}": t for k, (_, s) in nets.items() for n, t in s.items()}, metadata=meta))
    assert load_network(old).G_ema is not None
