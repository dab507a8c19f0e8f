"""The training dataset: images of a zip or folder in the official layout, read lazily."""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .common import LABELS_FILE, DatasetError, list_folder, list_zip, parse_labels_json


@dataclass(frozen=True)
class DatasetInfo:
    """What a training run records about its data."""

    name: str
    path: str
    resolution: int
    channels: int
    num_images: int  # images in use (after max_size), not counting x-flips
    label_dim: int  # 0 when labels are off or absent
    has_labels: bool
    xflip: bool
    max_size: int | None
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ImageDataset(torch.utils.data.Dataset):
    """Images of a dataset zip or folder as `(uint8 [C, H, W], label)` pairs.

    Labels come from `dataset.json` (`{"labels": [[path, label], ...]}`): integer class indices become
    float32 one-hot vectors of length `label_dim` (max index + 1, or the number of `class_names`), lists of
    numbers are returned as float32 vectors. Without labels (or with `use_labels=False`) the label is an
    empty float32 tensor, which batches to `[N, 0]`.

    `max_size` keeps a random subset (seeded by `seed`, in file order); `xflip` appends a mirrored copy of
    every image, doubling `len()`. The zip is opened lazily and reopened in every process that uses the
    dataset (DataLoader workers), so each worker reads through its own file handle.
    """

    def __init__(self, path: str | os.PathLike, *, resolution: int | None = None, max_size: int | None = None,
                 xflip: bool = False, use_labels: bool = True, seed: int = 0) -> None:
        self.path = Path(path)
        self.xflip = bool(xflip)
        self.max_size = max_size
        self.seed = seed
        self._zipfile: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if self.path.is_dir():
            self._is_zip = False
            names, others = list_folder(self.path)
        elif self.path.is_file():
            self._is_zip = True
            try:
                names, others = list_zip(self._zip())
            except zipfile.BadZipFile as e:
                raise DatasetError(f"{self.path}: not a readable zip ({e})") from None
        else:
            raise DatasetError(f"{self.path}: no such file or folder")
        if not names:
            raise DatasetError(f"{self.path}: holds no images")
        self._names = names
        self._labels, self.class_names = self._read_labels(LABELS_FILE in others) if use_labels else (None, None)

        idx = np.arange(len(names), dtype=np.int64)
        if max_size is not None:
            if max_size < 1:
                raise DatasetError(f"max_size={max_size}: must be at least 1")
            if len(idx) > max_size:
                rnd = np.random.RandomState(seed)
                rnd.shuffle(idx)
                idx = np.sort(idx[:max_size])
        self._raw_idx = idx

        first = self._decode(int(idx[0]))
        self.image_shape = tuple(first.shape)  # [C, H, W]
        _, h, w = self.image_shape
        if h != w:
            raise DatasetError(f"{self.path}: images must be square; {names[idx[0]]} is {w}x{h}")
        if resolution is not None and resolution != h:
            raise DatasetError(f"{self.path}: images are {h}x{h}, not the requested {resolution}x{resolution}")
        self.close()

    @property
    def name(self) -> str:
        return self.path.stem if self._is_zip else self.path.name

    @property
    def resolution(self) -> int:
        return self.image_shape[1]

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    @property
    def label_dim(self) -> int:
        return 0 if self._labels is None else self._labels.shape[1]

    @property
    def label_shape(self) -> list[int]:
        return [self.label_dim]

    def __len__(self) -> int:
        return len(self._raw_idx) * (2 if self.xflip else 1)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self._raw_idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} items")
        idx %= len(self)
        raw = int(self._raw_idx[idx % n])
        image = self._decode(raw)
        if tuple(image.shape) != self.image_shape:
            raise DatasetError(f"{self._where(raw)}: image is {'x'.join(map(str, image.shape))} (CxHxW) but the "
                               f"dataset's first image is {'x'.join(map(str, self.image_shape))}")
        if idx >= n:
            image = image[:, :, ::-1]
        return torch.from_numpy(np.require(image, requirements="CW")), self.get_label(idx)

    def get_label(self, idx: int) -> torch.Tensor:
        if self._labels is None:
            return torch.zeros(0, dtype=torch.float32)
        return torch.from_numpy(self._labels[int(self._raw_idx[idx % len(self._raw_idx)])].copy())

    def describe(self) -> DatasetInfo:
        return DatasetInfo(self.name, str(self.path), self.resolution, self.num_channels, len(self._raw_idx),
                           self.label_dim, self.has_labels, self.xflip, self.max_size, self.seed)

    def close(self) -> None:
        if self._zipfile is not None and self._zip_pid == os.getpid():
            self._zipfile.close()
        self._zipfile = self._zip_pid = None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _zipfile=None, _zip_pid=None)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _zip(self) -> zipfile.ZipFile:
        # A handle inherited through fork shares its file offset with the parent: open our own.
        if self._zipfile is None or self._zip_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zipfile

    def _where(self, raw: int) -> str:
        return f"{self.path}:{self._names[raw]}" if self._is_zip else str(self.path / self._names[raw])

    def _read(self, name: str) -> bytes:
        return self._zip().read(name) if self._is_zip else (self.path / name).read_bytes()

    def _decode(self, raw: int) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(self._read(self._names[raw]))) as img:
                img.load()
                mode = img.mode
                arr = np.asarray(img)
        except Exception as e:  # Pillow and zipfile raise many types for damaged files
            raise DatasetError(f"{self._where(raw)}: cannot read image ({e})") from None
        if mode not in ("L", "RGB"):
            raise DatasetError(f"{self._where(raw)}: pixel format {mode}, expected 8-bit L or RGB "
                               "(convert the images with `stylegan dataset`)")
        return arr[np.newaxis] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def _read_labels(self, present: bool) -> tuple[np.ndarray | None, list[str] | None]:
        if not present:
            return None, None
        where = f"{self.path}:{LABELS_FILE}" if self._is_zip else str(self.path / LABELS_FILE)
        labels, class_names = parse_labels_json(self._read(LABELS_FILE), where)
        if labels is None:
            return None, None
        missing = [n for n in self._names if n not in labels]
        if missing:
            raise DatasetError(f"{where}: no label for {len(missing)} image(s), e.g. {missing[0]}")
        values = [labels[n] for n in self._names]
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            dim = max(len(class_names or ()), max(values) + 1)
            onehot = np.zeros([len(values), dim], np.float32)
            onehot[np.arange(len(values)), values] = 1
            return onehot, class_names
        try:
            vectors = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            vectors = None
        if vectors is None or vectors.ndim != 2:
            raise DatasetError(f"{where}: labels must be class indices (integers >= 0) or equal-length lists of numbers")
        return vectors, class_names
