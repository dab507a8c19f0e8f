"""Network pickles are read through an allow-list: nothing they carry is executed or imported."""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import warnings

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


# ----------------------------------------------------------------------------- the extended corpus (issue 15)

def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _system(marker) -> bytes:
    """Opcodes that push os.system("touch MARKER") (a call, when REDUCE runs)."""
    return _global("os", "system") + _str(f"touch {marker}") + b"\x85R"  # TUPLE1, REDUCE


def _corpus(marker) -> dict[str, bytes]:
    """Pickles built opcode by opcode, each trying to run `touch MARKER` or to exhaust memory."""
    P = b"\x80\x02"
    deep = 100_000
    buf = io.BytesIO()
    with warnings.catch_warnings():  # TypedStorage is deprecated, and what official pickles hold
        warnings.simplefilter("ignore")
        torch.save(torch.zeros(1).storage(), buf, _use_new_zipfile_serialization=False)  # as Storage.__reduce__ nests it
    storage = buf.getvalue()
    return {
        # nested reductions: the result of one forged call is the argument of the next, 100,000 deep
        "nested reductions": P + _global("builtins", "eval") * deep + _str(f"open({str(marker)!r}, 'w')") + b"\x85R" * deep + b".",
        "reductions inside containers": P + b"}" + _str("G_ema") + b"(" + _system(marker) + _system(marker) + b"l" + b"s.",
        # __setstate__ gadgets: BUILD on the allow-listed records and mappings
        "EasyDict __setstate__ item": P + _global("dnnlib", "EasyDict") + b")\x81" + _str("__setstate__") + _global("os", "system")
        + b"s" + b"}" + b"b.",  # an item named __setstate__, then BUILD
        "EasyDict BUILD": P + _global("dnnlib", "EasyDict") + b")\x81" + b"}" + _str("get") + _global("os", "system") + b"s" + b"b.",
        "OrderedDict BUILD shadowing get": P + _global("collections", "OrderedDict") + b")R" + b"}" + _str("get")
        + _global("os", "system") + b"s" + b"b.",
        "PersistentObject BUILD": P + _global("torch_utils.persistence", "_reconstruct_persistent_obj") + b"}" + _str("type")
        + _str("class") + b"s" + b"\x85R" + b"}" + _str("state_dict") + _global("os", "system") + b"s" + b"b.",
        "NEWOBJ PersistentObject": P + _global("torch_utils.persistence", "_reconstruct_persistent_obj") + b")\x81.",
        # copyreg: the protocol-0/1 object reconstructor and the extension registry
        "copyreg._reconstructor": P + _global("copyreg", "_reconstructor") + b"(" + _global("subprocess", "Popen")
        + _global("builtins", "object") + b"N" + b"t" + b"R.",
        "copyreg extension code": P + b"\x82\xf0.",  # EXT1 240, registered below as os.system
        # builtins lookups: getattr chains, dotted names, module attributes
        "getattr chain": P + _global("builtins", "getattr") + b"(" + _global("builtins", "getattr") + _global("builtins", "__import__")
        + _str("__self__") + b"\x86R" + _str("eval") + b"t" + b"R.",
        "dotted global": b"\x80\x04" + _str("builtins") + _str("__import__.__self__.eval") + b"\x93" + _str("1") + b"\x85R.",
        "torch attribute chain": b"\x80\x04" + _str("torch") + _str("nn.modules.module.sys.modules") + b"\x93.",
        "torch lazy submodule": P + _global("torch", "_dynamo") + b".",
        "NEWOBJ torch.Tensor": P + _global("torch", "Tensor") + b"\x8a\x05\x00\xe4\x0bT\x02" + b"\x85\x81.",  # 10^10 floats
        "NEWOBJ numpy.ndarray": P + _global("numpy", "ndarray") + b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00" + b"\x85\x81.",
        "object dtype": P + _global("numpy", "dtype") + _str("O8") + b"\x89\x88\x87R.",
        # huge length fields
        "BINBYTES8 2^40": b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc",
        "BINBYTES8 2^62": b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc",
        "BINUNICODE8 2^40": b"\x80\x04\x8d" + struct.pack("<Q", 2**40) + b"abc",
        "BYTEARRAY8 2^40": b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b"abc",
        "LONG4 2^31": P + b"\x8b" + struct.pack("<i", 2**31 - 1) + b"\x01",
        "FRAME 2^60": b"\x80\x04\x95" + struct.pack("<Q", 2**60) + b"N.",
        "array shape 10^12": P + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + b"K\x00\x85"
        + _str("b") + b"\x87R" + b"(K\x01\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85" + _global("numpy", "dtype") + _str("f4") + b"\x89\x88\x87R"
        + b"\x89" + b"C\x04abcd" + b"tb.",
        "tensor size 10^12 on 4 bytes": P + _global("torch._utils", "_rebuild_tensor_v2") + b"(" + _global("torch.storage", "_load_from_bytes")
        + b"B" + struct.pack("<I", len(storage)) + storage + b"\x85R" + b"K\x00" + b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85"
        + b"K\x01\x85" + b"tR.",
    }


_CORPUS_RUNNER = """
import json, os, resource, sys, time, copyreg
from stylegan import load_network
from stylegan.io.load import NetworkLoadError
copyreg.add_extension("os", "system", 240)
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 3 * 2**30, resource.RLIM_INFINITY))  # 3 GiB beyond what is mapped now
import io, torch
buf = io.BytesIO()
torch.save(torch.zeros(1), buf)
torch.load(io.BytesIO(buf.getvalue()), weights_only=True)  # what torch.load imports on first use (nested storages use it)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
modules = set(sys.modules)
out = {}
for path in sys.argv[1:]:
    start = time.time()
    try:
        load_network(path)
        result = "loaded"
    except NetworkLoadError as e:
        result = str(e)
    out[os.path.basename(path)] = [result, time.time() - start]
out["peak_rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
out["modules_imported"] = sorted(set(sys.modules) - modules)
print(json.dumps(out))
"""


def test_malicious_corpus_runs_nothing_and_stays_within_memory(tmp_path):
    """Each forged pickle fails as one line (NetworkLoadError), nothing it names runs or is imported (no module at all is
    imported while they load), and loading all
    of them keeps the peak memory within 200 MB of the start (under a 3 GiB address-space limit)."""
    marker = tmp_path / "PWNED"
    corpus = _corpus(marker)
    paths = []
    for i, payload in enumerate(corpus.values()):
        paths.append(tmp_path / f"{i:02d}.pkl")
        paths[-1].write_bytes(payload)
    r = subprocess.run([sys.executable, "-c", _CORPUS_RUNNER, *map(str, paths)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for (name, _), path in zip(corpus.items(), paths):
        result, seconds = out[path.name]
        assert result != "loaded" and result.startswith(str(path)) and "\n" not in result, (name, result)
        assert seconds < 30, (name, seconds)
    assert not marker.exists()
    assert out["peak_rss_growth_mb"] < 200, out["peak_rss_growth_mb"]
    assert out["modules_imported"] == []


def test_forged_state_and_types_are_refused_at_the_unpickler(tmp_path):
    """The allow-listed types cannot be instantiated by the pickle, and no record takes state from it."""
    marker = tmp_path / "PWNED"
    corpus = _corpus(marker)
    for name, message in (("EasyDict BUILD", "EasyDict with instance state"),
                          ("OrderedDict BUILD shadowing get", "OrderedDict with instance state"),
                          ("PersistentObject BUILD", "persistent object with state set from outside"),
                          ("NEWOBJ PersistentObject", "NEWOBJ class argument"),
                          ("NEWOBJ torch.Tensor", "NEWOBJ class argument"),
                          ("NEWOBJ numpy.ndarray", "NEWOBJ class argument"),
                          ("object dtype", "refusing numpy dtype object"),
                          ("BINBYTES8 2^62", "larger than memory allows"),
                          ("tensor size 10^12 on 4 bytes", r"size \(1000000000000,\) does not fit its storage of 1 elements")):
        with pytest.raises(pickle.UnpicklingError, match=message):
            safe_load(io.BytesIO(corpus[name]))
    obj, inert = safe_load(io.BytesIO(corpus["EasyDict __setstate__ item"]))  # the item is data, never the method
    assert obj == {"__setstate__": obj["__setstate__"]} and issubclass(obj["__setstate__"], Inert)
    obj, inert = safe_load(io.BytesIO(corpus["nested reductions"]))
    assert isinstance(obj, Inert) and inert == ["builtins.eval"] * 100_000
    assert not marker.exists()
