"""Network pickles are read through an allow-list: nothing they carry is executed or imported."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys

import pytest
import torch
from helpers import official_pickle_bytes, write_fixture_pickle

from stylegan import load_network
from stylegan.io.load import NetworkLoadError
from stylegan.io.safe_pickle import Inert, PersistentObject, safe_load


class _Gadget:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _gadgets(marker) -> dict:
    return {
        "os_system": _Gadget(os.system, f"touch {marker}"),
        "eval": _Gadget(builtins.eval, f"open({str(marker)!r}, 'w')"),
        "exec": _Gadget(builtins.exec, f"open({str(marker)!r}, 'w')"),
        "popen": _Gadget(subprocess.Popen, ["touch", str(marker)]),
        "getattr": _Gadget(getattr, 1, "real"),
        "import": _Gadget(builtins.__import__, "this"),
    }


def test_gadgets_become_inert(tmp_path):
    marker = tmp_path / "PWNED"
    obj, inert = safe_load(io.BytesIO(pickle.dumps(_gadgets(marker))))
    assert not marker.exists()
    assert all(isinstance(v, Inert) for v in obj.values())
    assert {"posix.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "builtins.getattr", "builtins.__import__"} <= set(inert)


def test_unpickler_imports_nothing(tmp_path):
    sys.modules.pop("antigravity", None)
    payload = b"cantigravity\ngeohash\n(tR."  # protocol 0: GLOBAL antigravity.geohash, call it
    obj, inert = safe_load(io.BytesIO(payload))
    assert isinstance(obj, Inert) and inert == ["antigravity.geohash"]
    assert "antigravity" not in sys.modules


def test_malicious_top_level_pickle_is_rejected(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Gadget(os.system, f"touch {marker}")))
    with pytest.raises(NetworkLoadError, match="evil.pkl: not a network pickle"):
        load_network(path)
    assert not marker.exists()


def test_gadgets_beside_networks_do_not_run(parity_dir, tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "net.pkl"
    write_fixture_pickle(parity_dir / "sg2_32", path, marker, extra={"progress": _gadgets(marker)})
    net = load_network(path)
    assert net.G_ema is not None and net.D is not None
    assert not marker.exists()
    assert "posix.system" in net.extra["inert_globals"]


def test_gadget_in_place_of_a_network_is_an_error(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "net.pkl"
    path.write_bytes(official_pickle_bytes({"G_ema": _Gadget(os.system, f"touch {marker}")}))
    with pytest.raises(NetworkLoadError, match="G_ema is a .*not an official persistent network"):
        load_network(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_nested_storage_pickle_is_loaded_weights_only(tmp_path):
    """`torch.storage._load_from_bytes` carries a nested pickle; a gadget there must not run either."""
    marker = tmp_path / "PWNED"
    nested = pickle.dumps(_Gadget(os.system, f"touch {marker}"))

    class _Storage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (nested,))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Storage()}))
    with pytest.raises(NetworkLoadError):
        load_network(path)
    assert not marker.exists()


def test_persistent_object_keeps_source_as_text(parity_dir, tmp_path):
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "net.pkl"
    write_fixture_pickle(parity_dir / "sg2_32", path, marker)
    with open(path, "rb") as f:
        data, inert = safe_load(f)
    g = data["G_ema"]
    assert isinstance(g, PersistentObject) and g.class_name == "Generator" and g.version == 6
    assert "os.system" in g.module_src and not marker.exists()
    assert inert == []
    assert set(g.state_dict()) == set(load_network(parity_dir / "sg2_32").G_ema.state_dict())


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", b"\x80\x04K\x01."])
def test_corrupt_or_foreign_pickles_give_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(NetworkLoadError) as e:
        load_network(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
