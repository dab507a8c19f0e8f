"""What `stylegan dataset` reads: image folders and zips, IDX files, CIFAR tarballs, bundled Fashion-MNIST."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import pickle
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .common import (
    LABELS_FILE,
    BadImage,
    DatasetError,
    is_image_name,
    list_folder,
    list_zip,
    parse_labels_json,
)

try:
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]

LABEL_MODES = ("auto", "folders", "none")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
# Where Debian's `dataset-fashion-mnist` package puts the full dataset (the 60k training split).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
BUILTINS = ("fashion-mnist", "fashion-mnist-test", "fashion-mnist-train")


@dataclass
class Item:
    """One image of a source."""

    name: str  # how messages name it: a path, `archive.zip:member` or `file[index]`
    key: str | int  # relative path, zip member or array index
    label: int | None = None
    problem: str | None = None  # found while listing, e.g. a missing label


@dataclass
class Source:
    """A listed source; `open(item)` returns a lazily decoded PIL image."""

    description: str
    items: list[Item]
    class_names: list[str] | None = None
    labelled: bool = False
    label_problems: list[tuple[str, str]] = field(default_factory=list)  # (label entry, why it is unusable)
    ignored: list[str] = field(default_factory=list)  # files that are not images of a supported type
    notes: list[str] = field(default_factory=list)

    def open(self, item: Item) -> Image.Image:
        raise NotImplementedError

    def close(self) -> None:
        """Release open files."""


class FolderSource(Source):
    def __init__(self, root: Path, labels: str) -> None:
        images, others = list_folder(root)
        json_path = root / LABELS_FILE
        super().__init__(f"{root} (folder, {len(images)} images)", [Item(str(root / rel), rel) for rel in images])
        self.root = root
        self.ignored = [o for o in others if o != LABELS_FILE]
        json_bytes = json_path.read_bytes() if json_path.is_file() else None
        _assign_labels(self, images, labels, json_bytes, str(json_path), str(root))

    def open(self, item: Item) -> Image.Image:
        path = self.root / str(item.key)
        if path.stat().st_size == 0:
            raise BadImage("empty file (0 bytes)")
        return Image.open(path)


class ZipSource(Source):
    def __init__(self, path: Path, labels: str) -> None:
        self.zip = zipfile.ZipFile(path)
        try:
            self._list(path, labels)
        except BaseException:
            self.zip.close()
            raise

    def _list(self, path: Path, labels: str) -> None:
        images, others = list_zip(self.zip)
        # A zip made from a folder usually holds that one folder: then it is the root (for dataset.json
        # and --labels folders), unless dataset.json sits at the top.
        tops = {m.split("/", 1)[0] for m in images}
        root = ""
        if LABELS_FILE not in others and len(tops) == 1 and all("/" in m for m in images):
            root = tops.pop() + "/"
        rels = [m[len(root):] for m in images]
        super().__init__(f"{path} (zip, {len(images)} images)", [Item(f"{path}:{m}", m) for m in images])
        self.ignored = [m for m in others if m != root + LABELS_FILE]
        json_name = root + LABELS_FILE
        json_bytes = self.zip.read(json_name) if json_name in others else None
        _assign_labels(self, rels, labels, json_bytes, f"{path}:{json_name}", str(path))

    def open(self, item: Item) -> Image.Image:
        data = self.zip.read(str(item.key))
        if not data:
            raise BadImage("empty file (0 bytes)")
        return Image.open(io.BytesIO(data))

    def close(self) -> None:
        self.zip.close()


class ArraySource(Source):
    """Images held in one uint8 array, [N, H, W] or [N, H, W, C]."""

    def __init__(self, description: str, name: str, images: np.ndarray, labels: np.ndarray | None,
                 class_names: list[str] | None, label_mode: str) -> None:
        if label_mode == "folders":
            raise DatasetError(f"{name}: --labels folders needs a folder or zip of images")
        use = labels is not None and label_mode != "none"
        items = [Item(f"{name}[{i}]", i, int(labels[i]) if use else None) for i in range(len(images))]
        super().__init__(description, items, class_names if use else None, use)
        self.images = images

    def open(self, item: Item) -> Image.Image:
        return Image.fromarray(self.images[int(item.key)])


def open_source(spec: str, labels: str = "auto") -> Source:
    """Recognise and list a source: `builtin:NAME`, a folder, a zip, an IDX file or a CIFAR tarball."""
    if labels not in LABEL_MODES:
        raise DatasetError(f"labels={labels!r}: expected one of {', '.join(LABEL_MODES)}")
    if spec.startswith("builtin:"):
        return _builtin(spec.removeprefix("builtin:"), labels)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, labels)
    if not path.exists():
        raise DatasetError(f"{spec}: no such file or folder")
    if not path.is_file():
        raise DatasetError(f"{spec}: not a regular file or folder")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (or an empty one)
        try:
            return ZipSource(path, labels)
        except zipfile.BadZipFile as e:
            raise DatasetError(f"{spec}: corrupt zip file ({e})") from None
    if _is_idx(path):
        return _idx_source(path, labels)
    if tarfile.is_tarfile(path):
        return _cifar_source(path, labels)
    if is_image_name(path.name):
        raise DatasetError(f"{spec}: a single image; pass the folder that holds the images")
    raise DatasetError(f"{spec}: not a source this tool reads (a folder or zip of images, an MNIST-style IDX "
                       "file, the CIFAR-10/100 python tarball, or builtin:fashion-mnist)")


def _assign_labels(src: Source, rels: list[str], mode: str, json_bytes: bytes | None, json_where: str, where: str) -> None:
    """Labels of a folder or zip: from dataset.json (auto), the first sub-folder (folders) or none."""
    classes = sorted({rel.split("/", 1)[0] for rel in rels if "/" in rel})
    if mode == "auto" and json_bytes is None and len(classes) > 1:
        src.notes.append(f"no {LABELS_FILE}: writing no labels (--labels folders would make the {len(classes)} "
                         "sub-folders classes)")
    if mode == "none" or (mode == "auto" and json_bytes is None):
        return
    if mode == "folders":
        index = {name: i for i, name in enumerate(classes)}
        for item, rel in zip(src.items, rels):
            if "/" in rel:
                item.label = index[rel.split("/", 1)[0]]
            else:
                item.problem = "not inside a class sub-folder (--labels folders)"
        src.class_names, src.labelled = classes, True
        return
    assert json_bytes is not None
    labels, names = parse_labels_json(json_bytes, json_where)
    if labels is None:
        return
    for rel, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DatasetError(f"{json_where}: the label of {rel!r} is {json.dumps(value)[:40]}; "
                               "labels must be class indices (integers >= 0)")
    if names is not None and labels and max(labels.values()) >= len(names):
        raise DatasetError(f"{json_where}: label {max(labels.values())} is out of range for {len(names)} class_names")
    present = set(rels)
    src.label_problems = [(f"{json_where} entry {rel!r}", f"names a file that is not an image in {where}")
                          for rel in labels if rel not in present]
    for item, rel in zip(src.items, rels):
        if rel in labels:
            item.label = labels[rel]
        else:
            item.problem = f"no label in {json_where}"
    src.class_names, src.labelled = names, True


def _read_maybe_gzip(path: Path | Any, name: str, limit: int | None = None) -> bytes:
    """The bytes of a file that may be gzipped (the first `limit` bytes if given)."""
    with path.open("rb") as f:
        head = f.read(2)
        f.seek(0)
        try:
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read(limit) if limit is not None else g.read()
            return f.read(limit) if limit is not None else f.read()
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"{name}: corrupt gzip data ({e})") from None


def _is_idx(path: Path) -> bool:
    try:
        head = _read_maybe_gzip(path, str(path), 4)
    except DatasetError:
        return path.name.endswith(".gz") and "idx" in path.name
    return len(head) == 4 and head[:2] == b"\0\0" and head[2] in (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E) and 1 <= head[3] <= 4


def read_idx(path: Path | Any, name: str) -> np.ndarray:
    """An IDX file (MNIST format, gzipped or not) of unsigned bytes as an array of its shape."""
    raw = _read_maybe_gzip(path, name)
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DatasetError(f"{name}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DatasetError(f"{name}: IDX element type 0x{raw[2]:02X} is not supported (only unsigned bytes, 0x08)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{name}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = int(np.prod(dims))
    if len(raw) - 4 - 4 * ndim != expected:
        raise DatasetError(f"{name}: IDX header says {'x'.join(map(str, dims))} ({expected} bytes) but "
                           f"{len(raw) - 4 - 4 * ndim} bytes follow (truncated or corrupt)")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _pad_to_power_of_two(images: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Pad square images with black to the next power of two, centred (MNIST's 28x28 -> 32x32)."""
    h, w = images.shape[1:3]
    if h != w or h & (h - 1) == 0:
        return images, None
    side = 1 << (h - 1).bit_length()
    lo = (side - h) // 2
    pad = [(0, 0), (lo, side - h - lo), (lo, side - h - lo)] + [(0, 0)] * (images.ndim - 3)
    return np.pad(images, pad), f"padded {w}x{h} to {side}x{side} with black borders"


def _labels_path(images_path: Path) -> Path | None:
    name = images_path.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if a in name:
            for cand in (name.replace(a, b), name.replace(a, b).removesuffix(".gz"), name.replace(a, b) + ".gz"):
                if (images_path.parent / cand).is_file():
                    return images_path.parent / cand
    return None


def _idx_arrays(images_path: Path | Any, labels_path: Path | Any | None, name: str,
                labels_name: str) -> tuple[np.ndarray, np.ndarray | None]:
    images = read_idx(images_path, name)
    if images.ndim == 1:
        raise DatasetError(f"{name}: an IDX label file; pass the images file (...-images-idx3-ubyte...)")
    if images.ndim == 2 or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise DatasetError(f"{name}: IDX shape {'x'.join(map(str, images.shape))} is not N x H x W or N x H x W x 1|3")
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if labels_path is None:
        return images, None
    labels = read_idx(labels_path, labels_name)
    if labels.shape != images.shape[:1]:
        raise DatasetError(f"{labels_name}: holds {'x'.join(map(str, labels.shape))} labels for {len(images)} images in {name}")
    return images, labels


def _idx_source(path: Path, label_mode: str) -> Source:
    labels_path = _labels_path(path) if label_mode != "none" else None
    images, labels = _idx_arrays(path, labels_path, str(path), str(labels_path))
    images, padded = _pad_to_power_of_two(images)
    src = ArraySource(f"{path} (IDX, {len(images)} images)", str(path), images, labels, None, label_mode)
    if labels_path is None and label_mode == "auto":
        src.notes.append(f"no IDX label file next to {path} (looked for ...-labels-idx1-ubyte...): writing no labels")
    if padded:
        src.notes.append(padded)
    return src


def _builtin(name: str, label_mode: str) -> Source:
    debian = [DEBIAN_FASHION_MNIST / f"train-{k}-ubyte.gz" for k in ("images-idx3", "labels-idx1")]
    have_train = all(p.is_file() for p in debian)
    if name not in BUILTINS:
        raise DatasetError(f"builtin:{name}: unknown; built-in sources are {', '.join('builtin:' + b for b in BUILTINS)}")
    if name == "fashion-mnist-train" and not have_train:
        raise DatasetError(f"builtin:{name}: needs Debian's dataset-fashion-mnist package ({DEBIAN_FASHION_MNIST} "
                           "not found); builtin:fashion-mnist-test is bundled")
    if name == "fashion-mnist-train" or (name == "fashion-mnist" and have_train):
        images, labels = _idx_arrays(debian[0], debian[1], str(debian[0]), str(debian[1]))
        what = f"Fashion-MNIST training split ({len(images):,} images) from {DEBIAN_FASHION_MNIST}"
    else:
        folder = resources.files("stylegan.data") / "builtin" / "fashion_mnist"
        img_file, lbl_file = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
        images, labels = _idx_arrays(img_file, lbl_file, f"builtin:{name}", f"builtin:{name} labels")
        what = f"Fashion-MNIST test split ({len(images):,} images, bundled)"
    images, padded = _pad_to_power_of_two(images)
    src = ArraySource(what, f"builtin:{name}", images, labels, FASHION_MNIST_CLASSES, label_mode)
    if padded:
        src.notes.append(padded)
    return src


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: the CIFAR batches cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): _np_multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): _np_multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes at pickle protocol 2
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)") from None


def _unpickle(tar: tarfile.TarFile, member: str, where: str) -> dict[str, Any]:
    try:
        f = tar.extractfile(member)
    except KeyError:
        raise DatasetError(f"{where}: member {member} is missing") from None
    if f is None:
        raise DatasetError(f"{where}: member {member} is not a file")
    try:
        with f:
            data = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, tarfile.TarError, OSError, zlib.error) as e:
        raise DatasetError(f"{where}: cannot read {member} ({e})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: {member} is not a CIFAR batch (a {type(data).__name__}, expected a dict)")
    return data


def _cifar_source(path: Path, label_mode: str) -> Source:
    """CIFAR-10 (its 5 training batches, 50k images) or CIFAR-100 (train, fine labels), python version."""
    where = str(path)
    try:
        with tarfile.open(path) as tar:
            names = set(tar.getnames())
            if "cifar-10-batches-py/data_batch_1" in names:
                batches = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
                meta, names_key, labels_key, kind = "cifar-10-batches-py/batches.meta", "label_names", "labels", "CIFAR-10"
            elif "cifar-100-python/train" in names:
                batches = ["cifar-100-python/train"]
                meta, names_key, labels_key, kind = "cifar-100-python/meta", "fine_label_names", "fine_labels", "CIFAR-100"
            else:
                raise DatasetError(f"{where}: a tar archive but not the CIFAR-10/100 python version "
                                   "(no cifar-10-batches-py/data_batch_1 or cifar-100-python/train)")
            images, labels = [], []
            for member in batches:
                batch = _unpickle(tar, member, where)
                data, lab = batch.get("data"), batch.get(labels_key)
                if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                    raise DatasetError(f"{where}: {member}: 'data' is not an N x 3072 uint8 array")
                if not isinstance(lab, list) or len(lab) != len(data):
                    raise DatasetError(f"{where}: {member}: '{labels_key}' is not a list of {len(data)} labels")
                images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(np.asarray(lab, np.int64))
            class_names = _unpickle(tar, meta, where).get(names_key) if meta in names else None
    except tarfile.TarError as e:
        raise DatasetError(f"{where}: corrupt tar archive ({e})") from None
    all_images = np.ascontiguousarray(np.concatenate(images))
    all_labels = np.concatenate(labels)
    if len(all_labels) and (all_labels.min() < 0):
        raise DatasetError(f"{where}: negative class labels")
    if not (isinstance(class_names, list) and all(isinstance(n, str) for n in class_names)):
        class_names = None
    return ArraySource(f"{path} ({kind}, {len(all_images):,} images)", where, all_images, all_labels, class_names, label_mode)


