"""Test images made with Pillow: every kind `stylegan dataset` converts, and every kind it rejects."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 16


def pattern(channels: int = 3, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 image, HxW (channels=1) or HxWx3."""
    rnd = np.random.RandomState(seed)
    shape = (size, size) if channels == 1 else (size, size, channels)
    return rnd.randint(0, 256, shape).astype(np.uint8)


def png16_rgb(path: Path, rgb: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    h, w, _ = rgb.shape
    rows = b"".join(b"\0" + rgb[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def exif_jpeg(path: Path, orientation: int, size: tuple[int, int] = (SIZE, SIZE)) -> None:
    """Blue JPEG with a red 4x4 block at the stored top-left corner and an EXIF orientation tag."""
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 4, 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", quality=100, exif=exif.tobytes())


def good_files(root: Path) -> dict[str, str]:
    """Write one usable image of each kind; returns {relative path: what the tool does with it}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    Image.fromarray(pattern(3, seed=1)).save(root / "rgb.png")
    Image.fromarray(pattern(1, seed=2)).save(root / "gray.png")
    Image.fromarray(pattern(3, seed=3)).save(root / "photo.jpg", quality=95)
    Image.fromarray(pattern(3, seed=4)).save(root / "image.webp", lossless=True)
    Image.fromarray(pattern(3, seed=5)).save(root / "image.bmp")
    Image.fromarray(pattern(3, seed=6)).save(root / "image.tiff")
    Image.fromarray(pattern(3, seed=7)).save(root / "sub" / "nested.png")
    exif_jpeg(root / "exif_rotated.jpg", 6)
    Image.fromarray(pattern(3, seed=8)).quantize(16).save(root / "palette.png")
    pal = Image.fromarray(pattern(3, seed=9)).quantize(16)
    pal.save(root / "palette_alpha.png", transparency=0)
    rgba = np.dstack([pattern(3, seed=10), np.full((SIZE, SIZE), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    la = np.dstack([pattern(1, seed=11), np.tile(np.arange(SIZE, dtype=np.uint8) * 16, (SIZE, 1))])
    Image.fromarray(la, "LA").save(root / "gray_alpha.png")
    Image.new("CMYK", (SIZE, SIZE), (0, 255, 255, 0)).save(root / "cmyk.jpg", quality=100)
    Image.new("CMYK", (SIZE, SIZE), (255, 0, 255, 0)).save(root / "cmyk.tif")
    Image.fromarray(pattern(1, seed=12).astype(np.uint16) * 257 + 100).save(root / "gray16.png")
    png16_rgb(root / "rgb16.png", pattern(3, seed=13).astype(np.uint16) * 256 + 255)
    return {
        "cmyk.jpg": "CMYK", "cmyk.tif": "CMYK", "exif_rotated.jpg": "EXIF", "gray.png": "gray", "gray16.png": "16-bit",
        "gray_alpha.png": "alpha", "image.bmp": "bmp", "image.tiff": "tiff", "image.webp": "webp",
        "palette.png": "palette", "palette_alpha.png": "palette+alpha", "photo.jpg": "jpeg", "rgb.png": "rgb",
        "rgb16.png": "16-bit rgb", "rgba.png": "alpha", "sub/nested.png": "nested",
    }


# name -> (writer, words the error must contain)
BAD_CASES = {
    "truncated.png": "truncated or corrupt",
    "corrupt.jpg": "not an image Pillow can read",
    "empty.png": "empty file",
    "float.tif": "unsupported pixel format F",
    "wrong_size.png": "24x24",
}


def write_bad(root: Path, name: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if name == "truncated.png":
        buf = io.BytesIO()
        Image.fromarray(pattern(3, seed=20)).save(buf, "png")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif name == "corrupt.jpg":
        path.write_bytes(b"\xff\xd8\xff" + bytes(np.random.RandomState(0).randint(0, 256, 300).astype(np.uint8)))
    elif name == "empty.png":
        path.write_bytes(b"")
    elif name == "float.tif":
        Image.fromarray(np.random.RandomState(0).rand(SIZE, SIZE).astype(np.float32)).save(path)
    elif name == "wrong_size.png":
        Image.fromarray(pattern(3, size=24, seed=21)).save(path)
    else:
        raise KeyError(name)


def mixed_folder(root: Path, with_labels: bool = True) -> tuple[dict[str, str], list[str]]:
    """All good and bad files, plus ignored ones and (optionally) dataset.json with a label for a missing file."""
    good = good_files(root)
    for name in BAD_CASES:
        write_bad(root, name)
    (root / "notes.txt").write_text("not an image")
    Image.fromarray(pattern(3, seed=30)).save(root / ".hidden.png")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._rgb.png").write_bytes(b"\0\5\26\7 resource fork")
    if with_labels:
        names = sorted(good) + sorted(BAD_CASES) + ["missing.png"]
        (root / "dataset.json").write_text(json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    return good, sorted(BAD_CASES)


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_cifar(path: Path, per_batch: int = 2, evil: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python tarball in the real layout, with 5 batches of `per_batch` images."""
    rnd = np.random.RandomState(0)
    images = rnd.randint(0, 256, (5 * per_batch, 3, 32, 32)).astype(np.uint8)
    labels = rnd.randint(0, 10, 5 * per_batch)
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, obj: object) -> None:
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for b in range(5):
            sl = slice(b * per_batch, (b + 1) * per_batch)
            batch: dict[str, object] = {"data": images[sl].reshape(per_batch, -1), "labels": [int(x) for x in labels[sl]],
                                        "batch_label": f"training batch {b + 1} of 5"}
            if evil and b == 0:
                batch["payload"] = _Evil()
            add(f"data_batch_{b + 1}", batch)
        add("batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072})
    return images.transpose(0, 2, 3, 1), labels


def write_cifar100(path: Path, count: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-100 python tarball in the real layout (train + meta), with `count` images."""
    rnd = np.random.RandomState(1)
    images = rnd.randint(0, 256, (count, 3, 32, 32)).astype(np.uint8)
    fine = rnd.randint(0, 100, count)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in (("train", {"data": images.reshape(count, -1), "fine_labels": [int(x) for x in fine],
                                     "coarse_labels": [0] * count}),
                          ("meta", {"fine_label_names": [f"fine{i}" for i in range(100)]})):
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return images.transpose(0, 2, 3, 1), fine


class _Evil:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("echo pwned",))
