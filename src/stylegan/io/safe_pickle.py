"""Allow-list unpickler for NVIDIA network pickles: reads them without running anything they carry.

Official pickles store every network class with its whole module source (`torch_utils.persistence`);
loading them the usual way executes that source. Here each such object becomes an inert
`PersistentObject` holding the source as text, TensorFlow networks become `TFNetwork` records, plain
`torch.nn` modules of an allow-listed set (`Embedding`, `Linear`, `Conv2d`, ...) become `TorchModule`
records of their state, tensors and numpy arrays are rebuilt by a fixed set of functions, dill's
`_load_type` yields a few builtin data types, and every other global resolves to an inert placeholder
class: calling it builds a record of the call, never the real thing (so `os.system`, `eval`,
`subprocess.Popen`, dill's function and code builders ... do nothing).

The allow-listed types cannot be instantiated by the pickle itself (NEWOBJ): tensors and arrays come only from the
rebuild functions, which check what they make; our persistent, EasyDict and OrderedDict records refuse state set
on them from outside (`__setstate__` gadgets); dtypes holding Python objects are refused; a name is looked up
without touching any module attribute; and any failure while unpickling (a length field larger than memory allows,
nesting deeper than the interpreter allows, a malformed call) is one `UnpicklingError`.
"""

from __future__ import annotations

import collections
import io
import pickle
import reprlib
from typing import IO, Any

import numpy as np
import torch

try:
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _np_multiarray


class EasyDict(dict):
    """dict with attribute access, standing in for `dnnlib.EasyDict`."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # pickle asks for __setstate__ & co.: items never stand in for them
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setstate__(self, state: Any) -> None:
        if state:  # a pickled EasyDict carries its items, never instance state
            raise pickle.UnpicklingError("EasyDict with instance state")

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class ModuleRecord:
    """A pickled `torch.nn.Module` as data: its `state` dict (`_parameters`, `_buffers`, `_modules`, attributes)."""

    state: dict[str, Any]

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers of this module tree, as `torch.nn.Module.state_dict` names them."""
        out: dict[str, torch.Tensor] = {}
        non_persistent = set(self.state.get("_non_persistent_buffers_set") or ())
        for name, p in (self.state.get("_parameters") or {}).items():
            if p is not None:
                out[prefix + name] = _as_tensor(p)
        for name, b in (self.state.get("_buffers") or {}).items():
            if b is not None and name not in non_persistent:
                out[prefix + name] = _as_tensor(b)
        for name, m in self.submodules().items():
            out.update(m.state_dict(f"{prefix}{name}."))
        return out

    def submodules(self) -> dict[str, ModuleRecord]:
        """The non-None entries of `_modules`; anything but a module record is an error."""
        out = {}
        for name, m in (self.state.get("_modules") or {}).items():
            if isinstance(m, ModuleRecord):
                out[name] = m
            elif m is not None:
                raise pickle.UnpicklingError(f"submodule {name} is a {type(m).__name__}, not a persistent or torch.nn module")
        return out


class PersistentObject(ModuleRecord):
    """An object saved by `torch_utils.persistence` (meta dict: type, version, module_src, class_name, state)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise pickle.UnpicklingError(f"unsupported persistent object meta: {type(meta).__name__} {reprlib.repr(meta)}")
        self.version = meta.get("version")
        self.class_name = str(meta.get("class_name"))
        self.module_src = str(meta.get("module_src", ""))
        self.state = meta.get("state") or {}

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("persistent object with state set from outside its meta")

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name})"


class TorchModule(ModuleRecord):
    """A plain `torch.nn` module of an allow-listed class, as data: unpickling creates this record (`qualified_name`
    says which class) and stores the pickled `__dict__`; no torch.nn constructor runs."""

    qualified_name = "torch.nn.modules.module.Module"

    def __new__(cls, *args: Any, **kwargs: Any) -> TorchModule:
        obj = super().__new__(cls)
        obj.state = {}
        return obj

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.qualified_name}: expected a state dict, found {type(state).__name__}")
        self.state = state

    @property
    def class_name(self) -> str:
        return self.qualified_name.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return f"TorchModule({self.qualified_name})"


class TFNetwork:
    """A `dnnlib.tflib.network.Network` of NVlabs/stylegan2 (TensorFlow), as plain data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.name = ""
        self.static_kwargs: dict[str, Any] = {}
        self.components: dict[str, TFNetwork] = {}
        self.variables: list[tuple[str, np.ndarray]] = []
        self.build_func_name = ""

    def __setstate__(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "variables" not in state:
            raise pickle.UnpicklingError("TensorFlow network state has no 'variables'")
        self.name = str(state.get("name", ""))
        self.static_kwargs = dict(state.get("static_kwargs") or {})
        self.components = dict(state.get("components") or {})
        self.variables = [(str(k), np.asarray(v)) for k, v in state["variables"]]
        self.build_func_name = str(state.get("build_func_name", ""))

    def __repr__(self) -> str:
        return f"TFNetwork({self.name})"


class Inert:
    """Placeholder for a global outside the allow-list; instances only record how they were built."""

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Inert:
        obj = super().__new__(cls)
        obj.__dict__["args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __repr__(self) -> str:
        return f"<inert {self.qualified_name}>"


def _as_tensor(x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise pickle.UnpicklingError(f"expected a tensor, found {type(x).__name__}")
    return x.detach()


def _load_storage_from_bytes(b: bytes) -> Any:
    """Storages pickled outside torch.save carry a nested torch.save stream: read it weights-only."""
    return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)


def _no_hooks(hooks: Any) -> None:
    if hooks:
        raise pickle.UnpicklingError("tensor carries backward hooks; refusing to rebuild it")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    _no_hooks(backward_hooks)
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"a tensor's storage is a {type(storage).__name__}")
    if len(size) != len(stride) or any(int(n) < 0 for n in size) or any(int(s) < 0 for s in stride) or int(storage_offset) < 0:
        raise pickle.UnpicklingError(f"tensor layout {tuple(size)} / {tuple(stride)} + {storage_offset} is not valid")
    extent = 0 if 0 in size else int(storage_offset) + sum((int(n) - 1) * int(s) for n, s in zip(size, stride)) + 1
    if extent > storage._size():  # torch would grow the storage: the tensor would hold memory the file never filled
        raise pickle.UnpicklingError(f"a tensor of size {tuple(size)} does not fit its storage of {storage._size()} elements")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, collections.OrderedDict())


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    _no_hooks(backward_hooks)
    return torch.nn.Parameter(data, requires_grad)


class TypeName:
    """An allow-listed type as a pickle names it: an argument the rebuild functions accept, not a class the pickle
    can instantiate or call."""

    def __init__(self, real: type) -> None:
        self.real = real

    def __repr__(self) -> str:
        return f"<type {self.real.__name__}>"


_TENSOR, _PARAMETER, _NDARRAY = TypeName(torch.Tensor), TypeName(torch.nn.Parameter), TypeName(np.ndarray)


def _rebuild_from_type_v2(func, new_type, args, state):
    if new_type not in (_TENSOR, _PARAMETER) or func not in _TENSOR_REBUILDERS:
        raise pickle.UnpicklingError(f"refusing to rebuild a tensor of type {new_type!r}")
    return func(*args)


def _reconstruct_array(subtype, shape, dtype):
    """numpy's `_reconstruct` for plain arrays only (their data follows in the array's own, checked state)."""
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError(f"refusing to rebuild an array of type {subtype!r}")
    return _np_multiarray._reconstruct(np.ndarray, shape, _dtype(dtype))


def _dtype(obj, align=False, copy=False):
    """numpy dtypes of plain data: one holding Python objects would make the array hold unpickled objects."""
    dt = np.dtype(obj, align, copy)
    if dt.hasobject:
        raise pickle.UnpicklingError(f"refusing numpy dtype {dt} (Python objects)")
    return dt


def _persistent_object(meta):
    return PersistentObject(meta)


class _OrderedDict(collections.OrderedDict):
    """`collections.OrderedDict` whose instances take no state from the pickle (attributes such as `get` or `keys`
    would shadow the mapping's methods); a pickled OrderedDict carries only its items."""

    def __setstate__(self, state: Any) -> None:
        if state:
            raise pickle.UnpicklingError("OrderedDict with instance state")


_TENSOR_REBUILDERS = (_rebuild_tensor_v2, _rebuild_parameter)
_TORCH_DTYPES = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch", "Tensor"): _TENSOR,
    ("torch.nn.parameter", "Parameter"): _PARAMETER,
    ("torch", "device"): torch.device,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): _OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("dnnlib", "EasyDict"): EasyDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
}
for _np_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_np_core, "scalar")] = _np_multiarray.scalar
    _ALLOWED[(_np_core, "_reconstruct")] = _reconstruct_array

# Plain torch.nn modules read as `TorchModule` records (StyleGAN-XL keeps its class embedding in a torch.nn.Embedding).
_TORCH_MODULES = {
    "module": ("Module",),
    "sparse": ("Embedding",),
    "linear": ("Linear", "Identity"),
    "conv": ("Conv1d", "Conv2d", "ConvTranspose2d"),
    "batchnorm": ("BatchNorm1d", "BatchNorm2d"),
    "normalization": ("GroupNorm", "LayerNorm"),
    "activation": ("ReLU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh"),
    "container": ("Sequential", "ModuleList", "ModuleDict"),
    "dropout": ("Dropout",),
    "pooling": ("AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d"),
    "flatten": ("Flatten",),
}
for _sub, _names in _TORCH_MODULES.items():
    for _name in _names:
        _qualified = f"torch.nn.modules.{_sub}.{_name}"
        _ALLOWED[(f"torch.nn.modules.{_sub}", _name)] = type(_name, (TorchModule,), {"qualified_name": _qualified})

# dill pickles builtin types as `_load_type(name)`; only these plain data types resolve to the real type.
_DILL_TYPES: dict[str, type] = {t.__name__: t for t in (set, frozenset, list, tuple, dict, str, int, float, complex, bool)}
_DILL_TYPES["NoneType"] = type(None)


class SafeUnpickler(pickle.Unpickler):
    """Resolves globals only through the allow-list; everything else becomes an `Inert` subclass."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.inert_globals: list[str] = []
        self._inert_classes: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        if (module, name) == ("dill._dill", "_load_type"):
            return self._dill_load_type
        return self._inert(f"{module}.{name}", name)

    def _inert(self, qualified: str, name: str) -> type:
        self.inert_globals.append(qualified)
        if qualified not in self._inert_classes:  # one placeholder class per name, however often the pickle names it
            self._inert_classes[qualified] = type(name, (Inert,), {"qualified_name": qualified, "__module__": "stylegan.io.safe_pickle.inert"})
        return self._inert_classes[qualified]

    def _dill_load_type(self, name: Any) -> type:
        """dill's `_load_type(name)`: a builtin data type from `_DILL_TYPES`, else (code, function, module, cell
        types, ...) an inert placeholder."""
        if isinstance(name, str) and name in _DILL_TYPES:
            return _DILL_TYPES[name]
        return self._inert(f"dill._dill._load_type({name!r})", str(name))

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not used by network pickles")


def safe_load(file: IO[bytes]) -> tuple[Any, list[str]]:
    """Unpickle `file` through the allow-list. Returns (object, names of globals made inert); anything that goes
    wrong on the way is a `pickle.UnpicklingError`."""
    unpickler = SafeUnpickler(file)
    try:
        obj = unpickler.load()
    except (pickle.UnpicklingError, EOFError):
        raise
    except MemoryError:
        raise pickle.UnpicklingError("a length in the file is larger than memory allows (a damaged or forged pickle)") from None
    except Exception as e:  # a forged call of an allow-listed function, nesting deeper than the interpreter allows, ...
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise pickle.UnpicklingError(f"{type(e).__name__}: {first}") from None
    return obj, unpickler.inert_globals
